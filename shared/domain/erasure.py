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

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

TABLE_CONSENT_BY_DAY = "consentbyday"
TABLE_UPLOADS_BY_MINUTE = "uploadsbyminute"

#: State-table rows written by the re-enrollment switch.
SUPERSEDED_GROUP_PK = "supersededgroup"
REENROLL_ROW = ("reenroll", "current")

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


def _at(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def latest_entry(ledger: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return max(ledger, key=lambda e: str(e["RowKey"])) if ledger else None


def latest_grant(ledger: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    grants = [e for e in ledger if e.get("kind") == "consent"]
    return max(grants, key=lambda e: str(e["RowKey"])) if grants else None


def consent_verdict(index_day: str, ledger: Sequence[Mapping[str, Any]], *, now: datetime,
                    retention: timedelta) -> str:
    """What a ``consentbyday`` row (PartitionKey ``index_day``) means now.

    ``erase``: the latest ledger entry is a grant of that day, and it is older than the retention.
    ``stale``: the row indexes nothing current (the consent was renewed on another day, revoked, or
    the grant never landed): drop the row. ``notDue``: the grant is of that day but not old enough yet.
    """
    latest = latest_entry(ledger)
    if latest is None or latest.get("kind") != "consent" or not latest.get("accepted"):
        return STALE
    granted = _at(latest.get("at"))
    if granted is None or day_key(granted) != index_day:
        return STALE
    return ERASE if granted <= now - retention else NOT_DUE


def upload_is_stale(upload: Mapping[str, Any] | None, *, now: datetime, max_age: timedelta) -> bool:
    """An upload still waiting for its photo (or stuck processing) for longer than ``max_age``."""
    if upload is None or upload.get("status") not in ("awaitingUpload", "processing"):
        return False
    created = _at(upload.get("createdAt"))
    return created is not None and created <= now - max_age


def known_persons(users: Iterable[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """PersonIds the records hold, and the attempt ids of person creations in flight.

    A person is created after its attempt id is recorded (``personAttempt``; re-enrollment's
    ``newPersonAttempt``), so a person whose userData is such an id is not an orphan yet.
    Abandoned attempts (``abandonedAttempts_json``) are not in flight: their persons are orphans.
    """
    persons: set[str] = set()
    in_flight: set[str] = set()
    for user in users:
        for key in ("personId", "newPersonId"):
            if user.get(key):
                persons.add(str(user[key]))
        for key in ("personAttempt", "newPersonAttempt"):
            if user.get(key):
                in_flight.add(str(user[key]))
    return persons, in_flight


def is_orphan_person(person_id: str, user_data: str | None, *, persons: set[str], in_flight: set[str]) -> bool:
    return person_id not in persons and (user_data is None or user_data not in in_flight)


def kept_token(blob_name: str) -> str:
    """Kept photos are named ``<keptToken>/<uploadId>.jpg``."""
    return blob_name.partition("/")[0]


def group_is_due(row: Mapping[str, Any], *, now: datetime, grace: timedelta) -> bool:
    superseded = _at(row.get("supersededAt"))
    return superseded is not None and superseded + grace <= now
