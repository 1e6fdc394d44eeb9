"""The erasure plan's pure rules: index keys and the verdicts purge_timer takes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.domain import erasure as plan
from shared.domain.records import LedgerEntry, SupersededGroup, Upload, User

pytestmark = pytest.mark.unit

NOW = datetime(2025, 6, 15, 3, 0, tzinfo=timezone.utc)
YEAR = timedelta(days=365)


def grant(at: datetime, n: int = 0) -> LedgerEntry:
    return LedgerEntry(user_key="u", entry_id=f"{at.isoformat()}_{n}", kind="consent", accepted=True, at=at.isoformat())


def test_keys_sort_by_time_and_bounds_include_the_cutoff_bucket() -> None:
    assert plan.day_key(NOW) == "20250615" and plan.minute_key(NOW) == "202506150300"
    assert plan.days_through(NOW) == "20250616" and plan.minutes_through(NOW) == "202506150301"
    assert plan.day_key(NOW - timedelta(days=40)) < plan.day_key(NOW)


def test_consent_verdicts() -> None:
    old = NOW - YEAR - timedelta(hours=1)
    assert plan.consent_verdict(plan.day_key(old), [grant(old)], now=NOW, retention=YEAR) == plan.ERASE
    # Same day as the cutoff but a few hours younger than the retention: not yet.
    young = NOW - YEAR + timedelta(hours=1)
    assert plan.consent_verdict(plan.day_key(young), [grant(young)], now=NOW, retention=YEAR) == plan.NOT_DUE
    # Renewed since: the old day's row is stale.
    renewed = [grant(old), grant(NOW - timedelta(days=3), 1)]
    assert plan.consent_verdict(plan.day_key(old), renewed, now=NOW, retention=YEAR) == plan.STALE
    # Revoked since, or no ledger at all: stale.
    revoked = [grant(old), LedgerEntry(user_key="u", entry_id=f"{NOW.isoformat()}_r", kind="revocation")]
    assert plan.consent_verdict(plan.day_key(old), revoked, now=NOW, retention=YEAR) == plan.STALE
    assert plan.consent_verdict(plan.day_key(old), [], now=NOW, retention=YEAR) == plan.STALE


def test_stale_uploads_and_groups() -> None:
    age = timedelta(minutes=60)
    created = (NOW - timedelta(minutes=61)).isoformat()
    def upload(status: str, created_at: str) -> Upload:
        return Upload(user_key="u", upload_id="x", status=status, created_at=created_at)

    assert plan.upload_is_stale(upload("awaitingUpload", created), now=NOW, max_age=age)
    assert plan.upload_is_stale(upload("processing", created), now=NOW, max_age=age)
    assert not plan.upload_is_stale(upload("accepted", created), now=NOW, max_age=age)
    assert not plan.upload_is_stale(upload("awaitingUpload", NOW.isoformat()), now=NOW, max_age=age)
    assert not plan.upload_is_stale(None, now=NOW, max_age=age)
    grace = timedelta(days=7)
    assert plan.group_is_due(SupersededGroup(group_id="g", superseded_at=(NOW - timedelta(days=8)).isoformat()),
                             now=NOW, grace=grace)
    assert not plan.group_is_due(SupersededGroup(group_id="g", superseded_at=(NOW - timedelta(days=6)).isoformat()),
                                 now=NOW, grace=grace)
    assert not plan.group_is_due(SupersededGroup(group_id="g"), now=NOW, grace=grace)


def test_orphan_persons() -> None:
    users = [User(user_key="1", person_id="p1"), User(user_key="2", person_attempt="a2", abandoned_attempts=["a0"]),
             User(user_key="3", person_id="p3", new_person_id="p3new", new_person_attempt="a4")]
    persons, in_flight = plan.known_persons(users)
    assert persons == {"p1", "p3", "p3new"} and in_flight == {"a2", "a4"}
    assert not plan.is_orphan_person("p1", "a1", persons=persons, in_flight=in_flight)
    assert not plan.is_orphan_person("p2", "a2", persons=persons, in_flight=in_flight)  # being created
    assert plan.is_orphan_person("p0", "a0", persons=persons, in_flight=in_flight)  # abandoned attempt
    assert plan.is_orphan_person("px", None, persons=persons, in_flight=in_flight)  # unknown
    assert plan.kept_token("tok/upload.jpg") == "tok"
