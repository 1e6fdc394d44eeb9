"""The erasure plan's pure rules: index keys that make due work a key-range query, and the verdicts
purge_timer takes on what it reads (standard library only; time is an argument).

Two index tables let purge_timer read only what is due instead of every user:

- ``consentbyday``: PartitionKey = UTC day of a consent grant (``YYYYMMDD``), RowKey = userKey.
  Written at each grant (the grant before it loses its row). Keyed by the grant day, not by the
  expiry day, so a change of ``CONSENT_RETENTION_DAYS`` applies to existing consents too.
- ``uploadsbyminute``: PartitionKey = UTC minute an upload slot was created (``YYYYMMDDHHMM``),
  RowKey = uploadId. Written when the slot is handed out, deleted when the photo is processed or erased.

The sweep reads PartitionKeys up to the cutoff's bucket; rows of the cutoff bucket itself are
checked against their exact time. Index rows are hints: the ledger and the upload records decide.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from shared.domain.enrollment import latest_entry, latest_grant, parse_iso
from shared.domain.records import ConsentDue, LedgerEntry, SupersededGroup, Upload, UploadDue, User

__all__ = ["latest_entry", "latest_grant"]

#: Request ids and receipt ids are uuid5 in this namespace, so a replay computes the same ids.
RECEIPT_NAMESPACE = uuid.UUID("6f1c3e1a-8d52-4b0e-9a55-1d7f0c2b9e41")

ERASE, STALE, NOT_DUE = "erase", "stale", "notDue"

MISSING_PERSON_MESSAGE = ("Your enrollment was lost by the face service. Please enroll again: upload new photos "
                          "(POST /api/enrollment/uploads).")


def day_key(at: datetime) -> str:
    return at.strftime("%Y%m%d")


def minute_key(at: datetime) -> str:
    return at.strftime("%Y%m%d%H%M")


def days_through(at: datetime) -> str:
    """Exclusive upper bound of the ``consentbyday`` PartitionKeys up to and including ``at``'s day."""
    return day_key(at + timedelta(days=1))


def minutes_through(at: datetime) -> str:
    """Exclusive upper bound of the ``uploadsbyminute`` PartitionKeys up to and including ``at``'s minute."""
    return minute_key(at + timedelta(minutes=1))


def revocation_request_id(user_key: str, grant_entry_id: str) -> str:
    """One consent, one erasure: a user's, an admin's and the retention purge's revocation of the same
    grant share this id, so duplicate detection drops repeats and there is one receipt."""
    return uuid.uuid5(RECEIPT_NAMESPACE, f"{user_key}|{grant_entry_id}").hex


def hr_request_id(source: str, event_id: str, user_key: str) -> str:
    """One termination may name several accounts (a shared employee id): one request, one receipt, each."""
    return uuid.uuid5(RECEIPT_NAMESPACE, f"hr|{source}|{event_id}|{user_key}").hex


def receipt_id_for(request_id: str) -> str:
    return uuid.uuid5(RECEIPT_NAMESPACE, f"receipt|{request_id}").hex


def consent_verdict(index_day: str, ledger: Sequence[LedgerEntry], *, now: datetime,
                    retention: timedelta) -> str:
    """What a ``consentbyday`` row (PartitionKey ``index_day``) means now.

    ``erase``: the latest ledger entry is a grant of that day, and it is older than the retention.
    ``stale``: the row indexes nothing current (the consent was renewed on another day, revoked, or
    the grant never landed): drop the row. ``notDue``: the grant is of that day but not old enough yet.
    """
    latest = latest_entry(ledger)
    if latest is None or latest.kind != "consent" or not latest.accepted:
        return STALE
    granted = parse_iso(latest.at)
    if granted is None or day_key(granted) != index_day:
        return STALE
    return ERASE if granted <= now - retention else NOT_DUE


def trusts_consent_row(row: ConsentDue, *, erasing: set[str]) -> bool:
    """Whether purge may act on a ``consentbyday`` row without reading the user's ledger.

    A settled row names the user's latest grant: every grant marks the row it supersedes unsettled
    before it writes anything (ConsentService.grant), and settles its own row only once it is in the
    ledger. A revocation appends its tombstone after its ``erasurespending`` row and deletes these rows
    before that row goes, so a user with an erasure pending (``erasing``) is left to that erasure.
    """
    return row.settled is True and bool(row.grant_entry_id) and row.user_key not in erasing


def settled_consent_verdict(row: ConsentDue, *, now: datetime, retention: timedelta) -> str:
    """``erase`` or ``notDue`` for a row purge trusts: the grant's time is on the row."""
    granted = parse_iso(row.at)
    return ERASE if granted is not None and granted <= now - retention else NOT_DUE


def trusts_upload_row(row: UploadDue) -> bool:
    """Whether purge may act on an ``uploadsbyminute`` row without reading the upload record: a settled
    row's upload is unused or unfinished (a final status unsettles the row before it is written, and the
    row goes right after), which past its age is exactly what ``upload_is_stale`` removes."""
    return row.settled is True and bool(row.session_id) and bool(row.user_key)


def is_due(created_at: str | None, *, now: datetime, max_age: timedelta) -> bool:
    created = parse_iso(created_at)
    return created is not None and created <= now - max_age


def upload_is_stale(upload: Upload | None, *, now: datetime, max_age: timedelta) -> bool:
    """An upload still waiting for its photo (or stuck processing) for longer than ``max_age``."""
    if upload is None or upload.status not in ("awaitingUpload", "processing"):
        return False
    return is_due(upload.created_at, now=now, max_age=max_age)


def known_persons(users: Iterable[User]) -> tuple[set[str], set[str]]:
    """PersonIds the records hold, and the attempt ids of person creations in flight.

    A person is created after its attempt id is recorded (``personAttempt``; re-enrollment's
    ``newPersonAttempt``), so a person whose userData is such an id is not an orphan yet.
    Abandoned attempts (``abandonedAttempts_json``) are not in flight: their persons are orphans.
    """
    persons: set[str] = set()
    in_flight: set[str] = set()
    for user in users:
        persons.update(p for p in (user.person_id, user.new_person_id) if p)
        in_flight.update(a for a in (user.person_attempt, user.new_person_attempt) if a)
    return persons, in_flight


def is_orphan_person(person_id: str, user_data: str | None, *, persons: set[str], in_flight: set[str]) -> bool:
    return person_id not in persons and (user_data is None or user_data not in in_flight)


def kept_token(blob_name: str) -> str:
    """Kept photos are named ``<keptToken>/<uploadId>.jpg``."""
    return blob_name.partition("/")[0]


def group_is_due(row: SupersededGroup, *, now: datetime, grace: timedelta) -> bool:
    superseded = parse_iso(row.superseded_at)
    return superseded is not None and superseded + grace <= now


# --- the orphan scan, one key range a night -----------------------------------------------------------
HEX_DIGITS = "0123456789abcdef"


def scan_range(day: date, days: int) -> tuple[str | None, str | None]:
    """Night ``day``'s key range ``[low, high)`` of a scan spread over ``days`` nights (None: open end).

    The key space is cut at two-hex-digit prefixes into ``days`` contiguous ranges of about 256 / days
    prefixes each, the first open below and the last open above, so every key, hex or not, falls in exactly
    one of them: a cycle of ``days`` consecutive nights covers each key once. PersonIds (GUIDs), kept
    tokens (uuid4 hex) and the identity provider's object ids are hex, so the ranges are about even.
    """
    if days <= 1:
        return None, None
    night = day.toordinal() % days
    low = None if night == 0 else f"{256 * night // days:02x}"
    high = None if night == days - 1 else f"{256 * (night + 1) // days:02x}"
    return low, high


def in_range(key: str | None, low: str | None, high: str | None) -> bool:
    return key is not None and (low is None or key >= low) and (high is None or key < high)


def listing_start(low: str | None) -> str | None:
    """Face lists persons with a personId greater than ``start``: a GUID just below every id from ``low`` on."""
    if low is None or int(low, 16) == 0:
        return None
    return f"{int(low, 16) - 1:02x}ffffff-ffff-ffff-ffff-ffffffffffff"


def range_conditions(field: str, low: str | None, high: str | None) -> list[tuple[str, str, str]]:
    """The comparisons that select ``field`` in ``[low, high)`` (none at all: the whole range)."""
    return [*([(field, "ge", low)] if low is not None else []), *([(field, "lt", high)] if high is not None else [])]


def kept_prefixes(low: str | None, high: str | None) -> list[str]:
    """The blob-name prefixes (one hex digit each) whose listings hold the kept photos of a range ("": all).
    Kept tokens are uuid4 hex; a listing may hold names of the neighbouring ranges, which are left to theirs."""
    if low is None and high is None:
        return [""]
    return [d for i, d in enumerate(HEX_DIGITS)
            if (high is None or d + "0" < high) and (low is None or i == 15 or HEX_DIGITS[i + 1] > low)]
