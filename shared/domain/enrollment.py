"""Enrollment states and the rules that derive them (pure: standard library only, time as an argument)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.domain.records import LedgerEntry, Upload, User

# Overall statuses shown to the user (GET /api/enrollment).
NONE, PENDING, ENROLLED, FAILED, REENROLL_REQUIRED, REVOKED, DECLINED = (
    "none", "pending", "enrolled", "failed", "reenrollRequired", "revoked", "declined")

# Photo statuses.
AWAITING, PROCESSING, ACCEPTED, REJECTED, DISCARDED = "awaitingUpload", "processing", "accepted", "rejected", "discarded"
#: An accepted photo whose face was removed because the user replaced their photos (and the new ones were trained).
REPLACED = "replaced"
FINAL_PHOTO_STATUSES = frozenset({ACCEPTED, REJECTED, DISCARDED, REPLACED})
#: Ledger entries after which no consent is in force and nothing may be created for the user.
REFUSALS = frozenset({"revocation", "decline"})

PHOTO_IN_FLIGHT = frozenset({AWAITING, PROCESSING})


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class ConsentState:
    terms_version: str
    granted_at: str
    store_photos: bool


def latest_entry(ledger: Sequence[LedgerEntry]) -> LedgerEntry | None:
    return max(ledger, key=lambda e: e.entry_id) if ledger else None


def latest_grant(ledger: Sequence[LedgerEntry]) -> LedgerEntry | None:
    return latest_entry([e for e in ledger if e.kind == "consent"])


def current_consent(ledger: Sequence[LedgerEntry], *, current_terms_version: str) -> ConsentState | None:
    """The consent in force: the latest ledger entry, if it grants consent to the current terms.

    A revocation (or a refusal) later than every grant means there is none; a grant to older terms
    is not current either (the user must accept the new version).
    """
    latest = latest_entry(ledger)
    if latest is None or latest.kind != "consent" or not latest.accepted:
        return None
    if latest.terms_version != current_terms_version:
        return None
    return ConsentState(str(latest.terms_version), latest.at, latest.store_photos)


def ledger_entry_id(now: datetime, unique: str) -> str:
    # Sortable by time, unique per entry: the ledger is append-only, so ids never collide or move.
    return f"{iso(now)}_{unique}"


def overall_status(user: User | None, photos: Sequence[Upload], *,
                   has_consent: bool, last_trained_through: datetime | None, active_group_id: str | None = None) -> str:
    """Derives the status a person sees from the records (not stored, so it cannot drift).

    ``active_group_id`` makes a model update visible: a person re-enrolled into the now active group
    (``new_group_id``) is enrolled, since the switch happens only after its training succeeded; a
    person left in a superseded group must enroll again.
    """
    if user is None:
        return NONE
    if user.reenroll_required:
        return REENROLL_REQUIRED
    if active_group_id is not None:
        if user.new_group_id == active_group_id and user.new_person_id:
            return ENROLLED
        if user.person_id and user.group_id and user.group_id != active_group_id:
            return REENROLL_REQUIRED
    face_added = parse_iso(user.face_added_at)
    if user.person_id and face_added is not None:
        if last_trained_through is not None and face_added <= last_trained_through:
            return ENROLLED
        return PENDING
    if any(p.status in PHOTO_IN_FLIGHT for p in photos):
        return PENDING
    if any(p.status == REJECTED for p in photos) or user.last_error:
        return FAILED
    return PENDING if has_consent and photos else NONE


def person_label(attempt_id: str) -> str:
    """The name a Face person gets: opaque, no personal data (Face stores names and userData)."""
    return "p-" + hashlib.sha256(attempt_id.encode()).hexdigest()[:16]


def group_id_for(recognition_model: str) -> str:
    """A new LargePersonGroup id: the model it is pinned to, and a random part (no personal data)."""
    return f"faceenroll-{recognition_model.replace('_', '')}-{uuid.uuid4().hex[:12]}"


def blob_name_for(session_id: str, upload_id: str) -> str:
    # Random ids only: a blob name carries no personal data.
    return f"{session_id}/{upload_id}"


def kept_name_for(kept_token: str, upload_id: str) -> str:
    """Kept photos sit under the user's random token, so erasure lists them by prefix."""
    return f"{kept_token}/{upload_id}.jpg"
