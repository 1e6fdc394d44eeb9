"""What every HTTP entry point shares: who is calling, JSON in and out, errors mapped to statuses."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shared import commands
from shared.domain.principal import Principal, PrincipalError, parse_principal, require_mfa, usable_key
from shared.errors import (
    Conflict,
    ConsentRequired,
    DomainError,
    FaceTransientError,
    Forbidden,
    Invalid,
    NotFound,
    QuotaExceeded,
    RecordConflict,
    RequestRejected,
    TransientFailure,
)
from shared.settings import Settings

log = logging.getLogger("shared.http")

PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"

#: The one table from domain errors to HTTP statuses (the most specific class first).
STATUS_FOR: tuple[tuple[type[DomainError], int], ...] = (
    (Invalid, 400),
    (Forbidden, 403),
    (ConsentRequired, 403),
    (NotFound, 404),
    (Conflict, 409),
)


def status_for(exc: DomainError) -> int:
    return next((status for cls, status in STATUS_FOR if isinstance(exc, cls)), 400)


class AuthenticationNotConfigured(Exception):
    """``PRINCIPAL_SOURCE=appservice`` but App Service Authentication is off: nothing vouches for the
    principal header, so the app refuses every request instead of trusting what anyone could forge."""


_not_configured_logged = False


def _trusted_source(settings: Settings) -> None:
    """Fails closed: the header is trusted only where something we control put it there."""
    global _not_configured_logged
    if settings.principal_source == "local" or settings.website_auth_enabled:
        return
    if not _not_configured_logged:  # one error per instance says why; every request still gets its 503
        _not_configured_logged = True
        log.error("App Service Authentication is not enabled on this app (WEBSITE_AUTH_ENABLED is not True) and "
                  "PRINCIPAL_SOURCE=appservice: every request except /api/health is refused with 503. "
                  "Deploy infra/ (it configures authsettingsV2) or enable Authentication on the app.")
    raise AuthenticationNotConfigured()


class Reply:
    def __init__(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def json_bytes(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode()


def principal_from(headers: Mapping[str, str], settings: Settings, *, mfa: bool = False,
                   admin: str | None = None) -> Principal:
    """Who is calling, checked before anything else about the request (body included) is looked at.

    ``admin`` names the action for the 403 message and requires the admin role *and* a multi-factor
    sign-in; ``mfa`` requires the latter alone.
    """
    _trusted_source(settings)
    value = next((v for k, v in headers.items() if k.lower() == PRINCIPAL_HEADER.lower()), None)
    p = parse_principal(value, user_key_claim=settings.user_key_claim, hr_key_claim=settings.hr_key_claim,
                        admin_role=settings.admin_role, tenant_id=settings.auth_tenant_id,
                        mfa_amr_values=settings.mfa_amr_values)
    if admin is not None:
        require_admin(p, admin)
        require_mfa(p)
    elif mfa:
        require_mfa(p)
    return p


def route_key(params: Mapping[str, str], name: str) -> str:
    """A route parameter that names a stored record (a user key, a receipt or run id). One that no
    record could have (``/``, ``#``, control characters, over-long) is refused here, as a 400 for a
    user key and a 404 for an id, instead of reaching Table storage and failing there as a 500."""
    value = params.get(name, "")
    if usable_key(value):
        return value
    if name == "userKey":
        raise Invalid("userKey is not a user key this service could hold: it is empty, too long, or "
                      "contains / \\ # ? or a control character.")
    raise NotFound(f"No such {name[:-2] if name.endswith('Id') else name}.")


def json_body(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw or b"{}")
    except ValueError as exc:
        raise Invalid("The request body is not valid JSON.") from exc
    except RecursionError as exc:  # "[[[[...": too deep to parse is a bad request, not a 500
        raise Invalid("The request body is nested too deeply.") from exc
    if not isinstance(doc, dict):
        raise Invalid("The request body must be a JSON object.")
    return doc


def handle(action: Callable[[], Reply]) -> Reply:
    """Runs one request; a known failure becomes its status with a reason, anything else a 500 with an id."""
    try:
        return action()
    except AuthenticationNotConfigured:
        return Reply(503, {"error": {"code": "AuthenticationNotConfigured",
                                     "message": "Sign-in is not configured for this service, so it refuses every "
                                                "request. An operator must enable App Service Authentication."}})
    except PrincipalError as exc:
        return Reply(exc.status, {"error": {"code": "Unauthorized" if exc.status == 401 else "Forbidden",
                                            "message": exc.reason}})
    except QuotaExceeded as exc:
        return Reply(429, {"error": {"code": exc.code, "message": exc.reason}}, {"Retry-After": str(exc.retry_after)})
    except DomainError as exc:
        error: dict[str, Any] = {"code": exc.code, "message": exc.reason}
        error.update(exc.details)
        return Reply(status_for(exc), {"error": error})
    except RequestRejected as exc:
        rejected: dict[str, Any] = {"code": exc.code, "message": exc.reason}
        rejected.update(exc.details)
        return Reply(exc.status, {"error": rejected})
    except (TransientFailure, FaceTransientError, RecordConflict):
        return Reply(503, {"error": {"code": "TryAgain", "message": "The service is busy; try again in a moment."}},
                     {"Retry-After": "2"})
    except Exception as exc:  # anything unforeseen still answers in the documented shape, with no details
        error_id = uuid.uuid4().hex
        # The class only: an SDK's message can quote a URL with a user key in it.
        log.error("request failed: %s (error %s)", exc.__class__.__name__, error_id)
        return Reply(500, {"error": {"code": "InternalError", "message": "Something went wrong.", "errorId": error_id}})


def require_admin(principal: Principal, action: str) -> None:
    if not principal.is_admin:
        raise Forbidden(f"Only administrators can {action}.")


# --- request bodies to commands (validated here; the services trust their commands) ---------------------
def grant_consent(principal: Principal, body: Mapping[str, Any], *, client: str) -> commands.GrantConsent:
    version = body.get("termsVersion")
    if not isinstance(version, str) or not version:
        raise Invalid("termsVersion is required.")
    if body.get("accepted") is not True:
        raise Invalid("accepted must be true to consent; to withdraw, use DELETE /api/enrollment.")
    store = body.get("storePhotos")
    if not isinstance(store, bool):
        raise Invalid("storePhotos must be true or false.")
    return commands.GrantConsent(principal, version, store, client)


def create_uploads(principal: Principal, body: Mapping[str, Any]) -> commands.CreateUploads:
    count = body.get("count")
    # JSON Schema's integer includes 3.0, and so does this API (docs/openapi.json says so).
    if isinstance(count, float) and count.is_integer():
        count = int(count)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 5:
        raise Invalid("count must be a whole number from 1 to 5.")
    return commands.CreateUploads(principal, count)


def grant_override(admin: Principal, user_key: str, body: Mapping[str, Any]) -> commands.GrantOverride:
    """``admin`` was authorised by principal_from(admin=...)."""
    reason = body.get("reason")
    hours = body.get("expiresInHours")
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("reason is required: say why the quality checks may be skipped.")
    if not isinstance(hours, (int, float)) or isinstance(hours, bool) or not 0 < hours <= 168:
        raise Invalid("expiresInHours must be a number greater than 0 and at most 168.")
    return commands.GrantOverride(admin, user_key, reason[:500], float(hours))


def start_reenrollment(admin: Principal, body: Mapping[str, Any], *, supported: Sequence[str]) -> commands.StartReenrollment:
    """Only a model the Face service supports (FACE_RECOGNITION_MODELS): any other could never start,
    and would hold the re-enrollment lock until someone cancelled it."""
    model = body.get("recognitionModel")
    if not isinstance(model, str) or model not in supported:
        raise Invalid(f"recognitionModel must be one of {', '.join(supported)}.")
    return commands.StartReenrollment(model, admin.user_key)


def run_purge(body: Mapping[str, Any]) -> commands.RunPurge:
    # A missing dryRun is a dry run; anything but a boolean is refused rather than guessed at.
    dry_run = body.get("dryRun", True)
    if not isinstance(dry_run, bool):
        raise Invalid("dryRun must be true or false.")
    return commands.RunPurge(dry_run=dry_run, trigger="admin")
