"""The exception hierarchy of face-enrollment. Adapters translate SDK and HTTP errors into these."""

from __future__ import annotations


class FaceEnrollmentError(Exception):
    """Base of every error this application raises on purpose."""


# --- Face service -----------------------------------------------------------------------------
class FaceError(FaceEnrollmentError):
    """An error answered by the Face service (or raised on its behalf)."""

    def __init__(self, message: str, *, code: str = "", status: int = 0, request_id: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.request_id = request_id


class FaceTransientError(FaceError):
    """429, 5xx or a network failure that outlived the retries."""


class FaceRateLimited(FaceTransientError):
    """429: the resource's call rate was exceeded."""


class FaceAuthError(FaceError):
    """401/403: the credential was refused (or Limited Access is missing)."""


class FaceBadRequest(FaceError):
    """400 BadArgument and friends: the request itself is wrong."""


class FaceInvalidImage(FaceBadRequest):
    """400 InvalidImage / InvalidImageSize: no face, more than one face, undecodable, too small or large."""


class FaceNotFound(FaceError):
    """404-style errors."""


class LargePersonGroupNotFound(FaceNotFound):
    pass


class PersonNotFound(FaceNotFound):
    pass


class PersistedFaceNotFound(FaceNotFound):
    pass


class LargePersonGroupNotTrained(FaceError):
    pass


class FaceConflict(FaceError):
    """409-style errors."""


class LargePersonGroupExists(FaceConflict):
    pass


class LargePersonGroupTrainingNotFinished(FaceConflict):
    pass


class FaceIncompatibleModel(FaceBadRequest):
    """The faces were detected with a recognition model other than the group's."""


class FaceConcurrentOperationConflict(FaceConflict, FaceTransientError):
    """409 ConcurrentOperationConflict: another operation holds the resource; transient (retried)."""


class FaceQuotaExceeded(FaceError):
    """403 QuotaExceeded: group, person or persisted-face count limit reached (not an auth problem)."""


# --- records (Table storage) --------------------------------------------------------------------
class RecordError(FaceEnrollmentError):
    pass


class RecordConflict(RecordError):
    """An ETag did not match: someone else changed the record first (optimistic concurrency)."""


class RecordExists(RecordError):
    """Insert of a record that already exists."""


# --- photos (Blob storage) ------------------------------------------------------------------------
class PhotoNotFound(FaceEnrollmentError):
    """A kept photo that is not (or no longer) there."""


# --- domain outcomes: raised by services, mapped by the edge ----------------------------------------
class DomainError(FaceEnrollmentError):
    """A request or message the domain refuses. The services raise these; they know nothing of HTTP.

    shared/http_api.py maps each class to an HTTP status (one table), and shared/envelopes.py maps
    each to a message outcome (dead-letter, complete). ``code`` is the stable machine-readable code,
    ``reason`` a sentence the caller can act on, ``details`` extra fields for the error body.
    """

    default_code = "BadRequest"

    def __init__(self, reason: str, *, code: str | None = None, **details: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code or self.default_code
        self.details = details


class Invalid(DomainError):
    """The request or message is malformed or out of range: it will never succeed as it is."""


class Forbidden(DomainError):
    """The caller may not do this (not an administrator, not their own record)."""

    default_code = "Forbidden"


class ConsentRequired(DomainError):
    """The action needs consent in force to the current terms."""

    default_code = "ConsentRequired"


class NotFound(DomainError):
    default_code = "NotFound"


class Conflict(DomainError):
    """The state does not allow it now (stale terms, a run already going, nothing to resume)."""

    default_code = "Conflict"


class QuotaExceeded(DomainError):
    """The caller asked for more than a per-user limit allows; ``retry_after`` seconds until it may again."""

    default_code = "TooManyRequests"

    def __init__(self, reason: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(reason, code=code)
        self.retry_after = max(1, int(retry_after))


# --- edge outcomes ---------------------------------------------------------------------------------
class RequestRejected(FaceEnrollmentError):
    """An HTTP-only refusal raised at the edge (shared/http_api.py), never by a service; ``status`` is the
    HTTP status to answer with. Domain refusals are ``DomainError``s."""

    def __init__(self, reason: str, *, status: int = 400, code: str = "BadRequest", **details: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.code = code
        self.details = details


class MessageRejected(FaceEnrollmentError):
    """A message that can never be processed (malformed, against the contract): dead-letter it with this reason."""

    def __init__(self, reason: str, *, description: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.description = description


class TransientFailure(FaceEnrollmentError):
    """Try again later (the trigger redelivers): a lost race or a dependency that is briefly unavailable."""
