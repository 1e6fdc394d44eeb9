"""What leaves the Face client: service errors mapped to the typed exceptions of ``shared.errors``, and
messages and log records scrubbed of anything that looks like an id (a personId is a secret)."""

from __future__ import annotations

import json
import logging
import re
import threading

from shared import errors
from shared.adapters.face_retry import RETRYABLE_STATUSES

# Anything that looks like a UUID (with or without dashes) or a long hex run is an id to hide.
_ID_LIKE_RE = re.compile(
    r"[0-9a-fA-F]{24,}|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_MAX_MESSAGE = 300


def scrub(text: str) -> str:
    """``text`` with every UUID-looking substring replaced by ``<id>``, cut to a sane length."""
    cleaned = _ID_LIKE_RE.sub("<id>", text)
    return cleaned if len(cleaned) <= _MAX_MESSAGE else cleaned[: _MAX_MESSAGE - 3] + "..."


def _error_fields(body: bytes | str | None) -> tuple[str, str]:
    """(code, message) from ``{"error":{"code","message"}}``, the legacy ``{"error":{"statusCode",
    "message"}}`` or a bare ``{"code","message"}``; ("", "") when the body says nothing useful."""
    if not body:
        return "", ""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    err = data.get("error", data)
    if not isinstance(err, dict):
        return "", str(err) if isinstance(err, str) else ""
    code = err.get("code")
    message = err.get("message")
    inner = err.get("innererror")
    if isinstance(inner, dict) and isinstance(inner.get("message"), str) and inner.get("message"):
        # e.g. 403 InvalidRequest / UnsupportedFeature (Limited Access not granted)
        message = f"{message or ''} ({inner.get('code') or 'innererror'}: {inner['message']})".strip()
    return (code if isinstance(code, str) else ""), (message if isinstance(message, str) else "")


_CODE_TO_ERROR: dict[str, type[errors.FaceError]] = {
    "LargePersonGroupNotFound": errors.LargePersonGroupNotFound,
    "PersonNotFound": errors.PersonNotFound,
    "PersistedFaceNotFound": errors.PersistedFaceNotFound,
    "LargePersonGroupExists": errors.LargePersonGroupExists,
    "LargePersonGroupNotTrained": errors.LargePersonGroupNotTrained,
    "LargePersonGroupTrainingNotFinished": errors.LargePersonGroupTrainingNotFinished,
    "InvalidImage": errors.FaceInvalidImage,
    "InvalidImageSize": errors.FaceInvalidImage,
    "BadArgument": errors.FaceBadRequest,
    "InvalidURL": errors.FaceBadRequest,
    "InvalidRequest": errors.FaceBadRequest,
    "ConcurrentOperationConflict": errors.FaceConcurrentOperationConflict,
    "QuotaExceeded": errors.FaceQuotaExceeded,
    "RateLimitExceeded": errors.FaceRateLimited,
    "Unauthorized": errors.FaceAuthError,
    "PermissionDenied": errors.FaceAuthError,
}


def _class_for(status: int, code: str, message: str) -> type[errors.FaceError]:
    if status == 429:
        return errors.FaceRateLimited
    if status in (401, 403) and code != "QuotaExceeded":
        return errors.FaceAuthError
    cls = _CODE_TO_ERROR.get(code)
    if cls is errors.FaceBadRequest:
        low = message.lower()
        if "recognitionmodel" in low and "incompatible" in low:
            return errors.FaceIncompatibleModel
    if cls is not None:
        return cls
    if status == 400:
        return errors.FaceBadRequest
    if status == 404:
        return errors.FaceNotFound
    if status == 409:
        return errors.FaceConflict
    if status in RETRYABLE_STATUSES or status >= 500:
        return errors.FaceTransientError
    return errors.FaceError


def map_error(status: int, body: bytes | str | None, *, method: str = "", template: str = "",
              request_id: str = "") -> errors.FaceError:
    """The typed exception for an error response. Its message is the service's, scrubbed of ids."""
    code, message = _error_fields(body)
    cls = _class_for(status, code, message)
    where = f" ({method} {template})" if method else ""
    text = scrub(message) if message else f"HTTP {status}"
    return cls(f"Face {code or status}: {text}{where}", code=code or str(status), status=status,
               request_id=request_id)


class _PathScrubFilter(logging.Filter):
    """urllib3 logs each request line at DEBUG ('"DELETE /face/v1.2/.../persons/<personId> HTTP/1.1"
    200'); this filter, installed on its logger, scrubs ids out of those records."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # a malformed record is not ours to fix
            return True
        if _ID_LIKE_RE.search(text):
            record.msg = _ID_LIKE_RE.sub("<id>", text)
            record.args = None
        return True


_filter_lock = threading.Lock()
_filter_installed = False


def install_log_scrubbing() -> None:
    """Scrub ids from urllib3's request-line logs (idempotent; done when the first session is built)."""
    global _filter_installed
    with _filter_lock:
        if not _filter_installed:
            logging.getLogger("urllib3.connectionpool").addFilter(_PathScrubFilter())
            _filter_installed = True
