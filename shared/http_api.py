"""What every HTTP entry point shares: who is calling, JSON in and out, errors mapped to statuses."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from shared.domain.principal import Principal, PrincipalError, parse_principal, require_mfa
from shared.errors import FaceEnrollmentError, FaceTransientError, RecordConflict, RequestRejected, TransientFailure
from shared.settings import Settings

log = logging.getLogger("shared.http")

PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
# The API's bodies are a few hundred bytes (consent, an upload count, admin options); photos never come
# through it. Both limits bound what parsing one request may cost (docs/security.md).
MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_NESTING = re.compile(rb"[\[\]{}]")


class Reply:
    def __init__(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def json_bytes(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode()


def principal_from(headers: Mapping[str, str], settings: Settings, *, mfa: bool = False) -> Principal:
    value = next((v for k, v in headers.items() if k.lower() == PRINCIPAL_HEADER.lower()), None)
    p = parse_principal(value, user_key_claim=settings.user_key_claim, hr_key_claim=settings.hr_key_claim,
                        admin_role=settings.admin_role)
    if mfa:
        require_mfa(p)
    return p


def _depth(raw: bytes) -> int:
    """Deepest nesting of arrays/objects, brackets inside strings not counted; linear, no recursion."""
    depth = deepest = 0
    for bracket in _JSON_NESTING.findall(_JSON_STRING.sub(b"", raw)):
        depth += 1 if bracket in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def json_body(raw: bytes, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    if len(raw or b"") > max_bytes:
        raise RequestRejected(f"The request body is larger than {max_bytes} bytes.", status=413, code="PayloadTooLarge")
    if _depth(raw or b"") > max_depth:  # before json.loads, which recurses once per level
        raise RequestRejected(f"The request body is nested too deeply (more than {max_depth} levels).", status=400)
    try:
        doc = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:
        raise RequestRejected("The request body is not valid JSON.", status=400) from exc
    if not isinstance(doc, dict):
        raise RequestRejected("The request body must be a JSON object.", status=400)
    return doc


def handle(action: Callable[[], Reply]) -> Reply:
    """Runs one request; a known failure becomes its status with a reason, anything else a 500 with an id."""
    try:
        return action()
    except PrincipalError as exc:
        return Reply(exc.status, {"error": {"code": "Unauthorized" if exc.status == 401 else "Forbidden",
                                            "message": exc.reason}})
    except RequestRejected as exc:
        error: dict[str, Any] = {"code": exc.code, "message": exc.reason}
        error.update(exc.details)
        return Reply(exc.status, {"error": error})
    except (TransientFailure, FaceTransientError, RecordConflict):
        return Reply(503, {"error": {"code": "TryAgain", "message": "The service is busy; try again in a moment."}},
                     {"Retry-After": "2"})
    except FaceEnrollmentError as exc:
        error_id = uuid.uuid4().hex
        log.error("request failed: %s (error %s)", exc.__class__.__name__, error_id)
        return Reply(500, {"error": {"code": "InternalError", "message": "Something went wrong.", "errorId": error_id}})


def require_admin(principal: Principal, action: str) -> None:
    if not principal.is_admin:
        raise RequestRejected(f"Only administrators can {action}.", status=403, code="Forbidden")
