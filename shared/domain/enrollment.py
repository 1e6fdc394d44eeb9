"""Enrollment states and the rules that derive them (pure: standard library only, time as an argument)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Overall statuses shown to the user (GET /api/enrollment).
NONE, PENDING, ENROLLED, FAILED, REENROLL_REQUIRED, REVOKED = (
    "none", "pending", "enrolled", "failed", "reenrollRequired", "revoked")

# Photo statuses.
AWAITING, PROCESSING, ACCEPTED, REJECTED, DISCARDED = "awaitingUpload", "processing", "accepted", "rejected", "discarded"
FINAL_PHOTO_STATUSES = frozenset({ACCEPTED, REJECTED, DISCARDED})

TABLE_USERS, TABLE_UPLOADS, TABLE_UPLOAD_INDEX = "users", "uploads", "uploadindex"
TABLE_CONSENT, TABLE_STATE, TABLE_AUDIT, TABLE_OVERRIDES, TABLE_RECEIPTS = "consent", "state", "audit", "overrides", "receipts"
TABLE_HR_INDEX = "hrindex"
USER_ROW = "user"


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


def current_consent(ledger: Sequence[Mapping[str, Any]], *, current_terms_version: str) -> ConsentState | None:
    """The consent in force: the latest ledger entry, if it grants consent to the current terms.

    A revocation (or a refusal) later than every grant means there is none; a grant to older terms
    is not current either (the user must accept the new version).
    """
    if not ledger:
        return None
    latest = max(ledger, key=lambda e: str(e["RowKey"]))
    if latest.get("kind") != "consent" or not latest.get("accepted"):
        return None
    if latest.get("termsVersion") != current_terms_version:
        return None
    return ConsentState(str(latest["termsVersion"]), str(latest["at"]), bool(latest.get("storePhotos")))


def ledger_row_key(now: datetime, unique: str) -> str:
    # Sortable by time, unique per entry: the ledger is append-only, so keys never collide or move.
    return f"{iso(now)}_{unique}"


def overall_status(user: Mapping[str, Any] | None, photos: Sequence[Mapping[str, Any]], *,
                   has_consent: bool, last_trained_through: datetime | None, active_group_id: str | None = None) -> str:
    """Derives the status a person sees from the records (not stored, so it cannot drift).

    ``active_group_id`` makes a model update visible: a person re-enrolled into the now active group
    (``newGroupId``) is enrolled, since the switch happens only after its training succeeded; a
    person left in a superseded group must enroll again.
    """
    if user is None:
        return NONE
    if user.get("reenrollRequired"):
        return REENROLL_REQUIRED
    if active_group_id is not None:
        if user.get("newGroupId") == active_group_id and user.get("newPersonId"):
            return ENROLLED
        if user.get("personId") and user.get("groupId") and user.get("groupId") != active_group_id:
            return REENROLL_REQUIRED
    face_added = parse_iso(user.get("faceAddedAt"))
    if user.get("personId") and face_added is not None:
        if last_trained_through is not None and face_added <= last_trained_through:
            return ENROLLED
        return PENDING
    if any(p.get("status") in (AWAITING, PROCESSING) for p in photos):
        return PENDING
    if any(p.get("status") == REJECTED for p in photos) or user.get("lastError"):
        return FAILED
    return PENDING if has_consent and photos else NONE


def person_label(attempt_id: str) -> str:
    """The name a Face person gets: opaque, no personal data (Face stores names and userData)."""
    return "p-" + hashlib.sha256(attempt_id.encode()).hexdigest()[:16]
