"""Commands: what a caller or a message asks a service to do, already parsed and validated.

The edge builds them (shared/http_api.py from HTTP bodies, shared/envelopes.py from message bodies)
and the services take them. A service never sees JSON, headers or a message envelope, so a new entry
point (a CLI, a test) builds the same command and gets the same behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.domain.principal import Principal

# --- HTTP requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantConsent:
    principal: Principal
    terms_version: str
    store_photos: bool
    client: str


@dataclass(frozen=True)
class CreateUploads:
    principal: Principal
    count: int


@dataclass(frozen=True)
class GrantOverride:
    admin: Principal
    user_key: str
    reason: str
    expires_in_hours: float


@dataclass(frozen=True)
class RequestRevocation:
    """A user withdrawing their consent, or an administrator revoking someone's enrollment."""

    actor: Principal
    user_key: str
    reason: str


@dataclass(frozen=True)
class ReadReceipt:
    actor: Principal
    receipt_id: str


@dataclass(frozen=True)
class RunPurge:
    dry_run: bool
    trigger: str


@dataclass(frozen=True)
class StartReenrollment:
    recognition_model: str
    requested_by: str


@dataclass(frozen=True)
class ResumeReenrollment:
    actor: Principal
    run_id: str


@dataclass(frozen=True)
class CancelReenrollment:
    actor: Principal
    run_id: str


# --- messages and events -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessUpload:
    """A BlobCreated for ``<sessionId>/<uploadId>`` in the uploads container."""

    blob_name: str
    content: bytes


@dataclass(frozen=True)
class Revoke:
    """The revocations queue's command: erase everything held for ``user_key``."""

    user_key: str
    request_id: str
    reason: str = "revoked"
    requested_by: str = "system"


@dataclass(frozen=True)
class HrTermination:
    """An HR CloudEvent whose type means the employment ended."""

    event_id: str
    source: str
    employee_id: str
    effective: datetime


@dataclass(frozen=True)
class ReenrollFanout:
    run_id: str
    after: str
    slot_at: datetime | None


@dataclass(frozen=True)
class ReenrollCheck:
    run_id: str
    seq: int


@dataclass(frozen=True)
class ReenrollWork:
    run_id: str
    user_key: str


ReenrollControl = StartReenrollment | ReenrollFanout | ReenrollCheck
