"""Pure logic of the Face client: path building, error mapping and scrubbing, Retry-After, retry decision."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from shared import errors
from shared.adapters import face_errors
from shared.adapters.face_errors import map_error, scrub
from shared.adapters.face_rest import FACE, PERSON, build_path
from shared.adapters.face_retry import backoff_seconds, is_retryable, parse_retry_after

PID = "25985303-c537-4467-b41d-bdb45cd95ca1"


def body(code: str | None, message: str, **extra: object) -> bytes:
    err: dict[str, object] = {"message": message, **extra}
    if code is not None:
        err["code"] = code
    return json.dumps({"error": err}).encode()


# --- paths ----------------------------------------------------------------------------------------
def test_build_path_fills_and_quotes_ids() -> None:
    assert build_path(PERSON, groupId="lpg-r4-1", personId=PID) == f"/largepersongroups/lpg-r4-1/persons/{PID}"
    assert build_path(FACE, groupId="g", personId="p", persistedFaceId="f") == (
        "/largepersongroups/g/persons/p/persistedfaces/f"
    )


@pytest.mark.parametrize("bad", ["", "..", "a/b", "a?b", "x" * 129, "é", "a b"])
def test_build_path_refuses_ids_that_would_change_the_resource_without_echoing_them(bad: str) -> None:
    with pytest.raises(ValueError, match="personId is not a valid Face id") as info:
        build_path(PERSON, groupId="g", personId=bad)
    assert bad not in str(info.value) or bad == ""


def test_build_path_missing_id() -> None:
    with pytest.raises(ValueError, match="groupId"):
        build_path(PERSON, personId="p")


# --- scrubbing -------------------------------------------------------------------------------------
def test_scrub_hides_uuid_like_substrings() -> None:
    assert scrub(f"Person {PID} is not found.") == "Person <id> is not found."
    assert scrub(f"x {PID.replace('-', '')} y") == "x <id> y"
    assert scrub(f"{PID.upper()}") == "<id>"
    assert scrub("Large person group lpg-r4-1 is not found.") == "Large person group lpg-r4-1 is not found."
    assert len(scrub("z" * 1000)) == 300
    assert scrub("a" * 40) == "<id>"


# --- error mapping ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (404, "LargePersonGroupNotFound", errors.LargePersonGroupNotFound),
        (400, "LargePersonGroupNotFound", errors.LargePersonGroupNotFound),  # identify answers 400
        (404, "PersonNotFound", errors.PersonNotFound),
        (404, "PersistedFaceNotFound", errors.PersistedFaceNotFound),
        (409, "LargePersonGroupExists", errors.LargePersonGroupExists),
        (404, "LargePersonGroupNotTrained", errors.LargePersonGroupNotTrained),
        (409, "LargePersonGroupTrainingNotFinished", errors.LargePersonGroupTrainingNotFinished),
        (400, "InvalidImage", errors.FaceInvalidImage),
        (400, "InvalidImageSize", errors.FaceInvalidImage),
        (400, "BadArgument", errors.FaceBadRequest),
        (400, "InvalidURL", errors.FaceBadRequest),
        (409, "ConcurrentOperationConflict", errors.FaceConcurrentOperationConflict),
        (403, "QuotaExceeded", errors.FaceQuotaExceeded),
        (401, "Unspecified", errors.FaceAuthError),
        (403, "InvalidRequest", errors.FaceAuthError),
        (429, "RateLimitExceeded", errors.FaceRateLimited),
        (429, "Whatever", errors.FaceRateLimited),
        (503, "ServiceUnavailable", errors.FaceTransientError),
        (500, "InternalServerError", errors.FaceTransientError),
        (404, "SomethingNew", errors.FaceNotFound),
        (409, "SomethingNew", errors.FaceConflict),
        (400, "SomethingNew", errors.FaceBadRequest),
        (418, "SomethingNew", errors.FaceError),
    ],
)
def test_map_error_by_code(status: int, code: str, cls: type[errors.FaceError]) -> None:
    err = map_error(status, body(code, "text"), method="GET", template=PERSON, request_id="rid")
    assert type(err) is cls
    assert (err.code, err.status, err.request_id) == (code, status, "rid")


def test_concurrent_conflict_is_both_a_conflict_and_transient() -> None:
    err = map_error(409, body("ConcurrentOperationConflict", "There is a conflict operation on resource"))
    assert isinstance(err, errors.FaceConflict)
    assert isinstance(err, errors.FaceTransientError)


def test_incompatible_recognition_model() -> None:
    err = map_error(400, body("BadArgument", "'recognitionModel' is incompatible."))
    assert type(err) is errors.FaceIncompatibleModel
    assert isinstance(err, errors.FaceBadRequest)


def test_legacy_429_body_and_bodies_without_json() -> None:
    legacy = json.dumps({"error": {"statusCode": 429, "message": "Rate limit is exceeded. Try again later."}})
    err = map_error(429, legacy)
    assert type(err) is errors.FaceRateLimited
    assert err.code == "429"
    assert "Rate limit is exceeded" in str(err)
    assert type(map_error(503, b"<html>Service Unavailable</html>")) is errors.FaceTransientError
    assert type(map_error(502, None)) is errors.FaceTransientError
    assert str(map_error(401, b"")).startswith("Face 401: HTTP 401")


def test_limited_access_403_keeps_inner_message() -> None:
    raw = body("InvalidRequest", "Invalid request has been sent.",
               innererror={"code": "UnsupportedFeature", "message": "missing approval for Identification"})
    err = map_error(403, raw)
    assert type(err) is errors.FaceAuthError
    assert "UnsupportedFeature" in str(err)
    assert "missing approval" in str(err)


def test_error_message_is_scrubbed_and_names_the_template_not_the_path() -> None:
    err = map_error(404, body("PersonNotFound", f"Person {PID} is not found."),
                    method="DELETE", template=PERSON, request_id="r")
    assert PID not in str(err)
    assert PID not in repr(err)
    assert "Person <id> is not found." in str(err)
    assert "/largepersongroups/{groupId}/persons/{personId}" in str(err)


# --- retry decision --------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    assert is_retryable(status, "")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 412, 413, 415, 501])
def test_not_retryable(status: int) -> None:
    assert not is_retryable(status, "LargePersonGroupExists")


def test_conflict_only_retryable_when_concurrent_operation() -> None:
    assert is_retryable(409, "ConcurrentOperationConflict")
    assert not is_retryable(409, "LargePersonGroupTrainingNotFinished")
    assert not is_retryable(400, "ConcurrentOperationConflict")


# --- Retry-After -----------------------------------------------------------------------------------
def test_parse_retry_after_seconds_and_variants() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after": " 1.5 "}) == 1.5
    assert parse_retry_after({"Retry-After": "-4"}) == 0.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"x-ms-retry-after-ms": "1000", "Retry-After": "9"}) == 1.0
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": ""}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "nan"}) is None
    assert parse_retry_after({"Retry-After": "inf"}) is None


def test_parse_retry_after_http_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    later = format_datetime(datetime(2025, 1, 1, 12, 0, 7, tzinfo=UTC), usegmt=True)
    assert parse_retry_after({"Retry-After": later}, now=lambda: now) == 7.0
    earlier = format_datetime(datetime(2025, 1, 1, 11, 0, 0, tzinfo=UTC), usegmt=True)
    assert parse_retry_after({"Retry-After": earlier}, now=lambda: now) == 0.0


# --- backoff ---------------------------------------------------------------------------------------
def test_backoff_grows_exponentially_with_jitter_and_caps() -> None:
    lo = [backoff_seconds(n, initial=0.5, maximum=4, retry_after=None, max_wait=60, rng=lambda a, b: a)
          for n in range(1, 7)]
    hi = [backoff_seconds(n, initial=0.5, maximum=4, retry_after=None, max_wait=60, rng=lambda a, b: b)
          for n in range(1, 7)]
    assert lo == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert hi == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_backoff_honours_retry_after_as_a_floor_and_max_wait_as_a_ceiling() -> None:
    assert backoff_seconds(1, initial=0.5, maximum=20, retry_after=3, max_wait=60) == 3.0
    assert backoff_seconds(5, initial=0.5, maximum=20, retry_after=1, max_wait=60, rng=lambda a, b: b) == 8.0
    assert backoff_seconds(1, initial=0.5, maximum=20, retry_after=600, max_wait=60) == 60.0


# --- log scrubbing of urllib3's request lines -------------------------------------------------------
def test_urllib3_request_line_logs_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    face_errors.install_log_scrubbing()
    face_errors.install_log_scrubbing()  # idempotent
    log = logging.getLogger("urllib3.connectionpool")
    assert sum(isinstance(f, face_errors._PathScrubFilter) for f in log.filters) == 1
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        log.debug('%s://%s:%s "%s %s %s" %s %s', "http", "127.0.0.1", 7072, "DELETE",
                  f"/face/v1.2/largepersongroups/g/persons/{PID}", "HTTP/1.1", 200, 0)
    assert caplog.records
    assert all(PID not in r.getMessage() for r in caplog.records)
    assert "/persons/<id>" in caplog.records[-1].getMessage()


# --- import cost -----------------------------------------------------------------------------------
def test_import_is_lean() -> None:
    code = (
        "import sys, shared.adapters.face_rest as m;"
        "heavy = [n for n in ('requests', 'tenacity', 'azure.identity', 'urllib3') if n in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.stdout.strip() == ""
