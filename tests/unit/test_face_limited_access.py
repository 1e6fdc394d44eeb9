"""Limited Access refused (403 UnsupportedFeature) is its own error type and is never retried.

The two shapes: Microsoft's error-code table lists 403 ``UnsupportedFeature`` as the code
(https://learn.microsoft.com/azure/ai-services/computer-vision/reference-face-error-codes); the service has been
seen answering 403 ``InvalidRequest`` with ``UnsupportedFeature`` as the innererror code
(https://learn.microsoft.com/answers/questions/1326420).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared import errors
from shared.adapters.face_errors import map_error
from shared.adapters.face_retry import is_retryable
from tests.unit.test_face_rest_client import ScriptedSession, client, response

MESSAGE = ("Feature is not supported, missing approval for one or more of the following features: "
           "Identification,Verification. Please apply for access at https://aka.ms/facerecognition")
DOCUMENTED: dict[str, Any] = {"error": {"code": "UnsupportedFeature", "message": MESSAGE}}
OBSERVED: dict[str, Any] = {"error": {"code": "InvalidRequest", "message": "Invalid request has been sent.",
                                      "innererror": {"code": "UnsupportedFeature", "message": MESSAGE}}}


@pytest.mark.parametrize("shape", [DOCUMENTED, OBSERVED], ids=["documented", "observed"])
def test_unsupported_feature_is_limited_access_not_approved(shape: dict[str, Any]) -> None:
    err = map_error(403, json.dumps(shape).encode(), method="GET", template="/largepersongroups")
    assert type(err) is errors.LimitedAccessNotApproved
    assert isinstance(err, errors.FaceAuthError)  # handlers of auth errors still catch it
    assert err.code == "UnsupportedFeature" and err.status == 403
    assert "missing approval" in str(err)


def test_other_403s_are_not_limited_access() -> None:
    assert type(map_error(403, json.dumps({"error": {"code": "PermissionDenied", "message": "m"}}))) \
        is errors.FaceAuthError
    assert type(map_error(403, json.dumps({"error": {"code": "QuotaExceeded", "message": "m"}}))) \
        is errors.FaceQuotaExceeded
    # UnsupportedFeature only means Limited Access on a 403.
    assert not isinstance(map_error(400, json.dumps(DOCUMENTED)), errors.LimitedAccessNotApproved)


def test_unsupported_feature_is_never_retryable_whatever_the_status() -> None:
    assert not is_retryable(403, "UnsupportedFeature")
    assert not is_retryable(503, "UnsupportedFeature")


@pytest.mark.parametrize("shape", [DOCUMENTED, OBSERVED], ids=["documented", "observed"])
def test_the_client_raises_it_after_one_attempt(shape: dict[str, Any]) -> None:
    s = ScriptedSession(response(403, shape), response(200, []))
    c, sleeps = client(s)
    with pytest.raises(errors.LimitedAccessNotApproved) as info:
        c.list_groups(top=1)
    assert len(s.sent) == 1 and sleeps == []
    assert info.value.__cause__ is None and info.value.__context__ is None
