"""purge_timer spread over the week (``ORPHAN_SCAN_DAYS``): each night reads one range of personIds, kept tokens
and user keys, filtered by the store, and a cycle of nights finds every orphan once; and the daily ledger anchor
holds the chains written since the last one. On the fakes, with the clock moved a day at a time."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import pytest

from shared.domain import erasure as plan
from shared.domain.enrollment import iso
from shared.domain.records import User
from tests.fakes import photo
from tests.service.support import Stack, hooked, make_stack

NIGHTS = 7


def _week(stack: Stack) -> list[dict[str, object]]:
    """A purge each night for a whole cycle."""
    reports = []
    for _ in range(NIGHTS):
        reports.append(stack.purge())
        stack.clock.advance(days=1)
    return reports


def _active_group(stack: Stack) -> str:
    state = stack.services.groups.state()
    assert state is not None and state.group_id
    return state.group_id


# --- the ranges ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("days", range(1, 17))
def test_each_key_falls_in_exactly_one_range_of_a_cycle(days: int) -> None:
    keys = [str(uuid.uuid4()), uuid.uuid4().hex, "0", "ffff", "u-1", "A1", "", "~", "-x", "9fffffff-ffff"]
    start = date(2026, 3, 2)
    ranges = [plan.scan_range(start + timedelta(days=n), days) for n in range(days)]
    assert len(set(ranges)) == days  # a different range each night of the cycle
    for key in keys:
        assert sum(plan.in_range(key, low, high) for low, high in ranges) == 1, (days, key, ranges)
    assert plan.scan_range(start + timedelta(days=days), days) == ranges[0]  # and the cycle repeats


def test_face_is_listed_from_just_below_the_range() -> None:
    assert plan.listing_start(None) is None and plan.listing_start("00") is None
    start = plan.listing_start("a0")
    assert start is not None and start < "a0" and start >= "9fffffff-ffff-ffff-ffff-fffffffffffe"
    assert plan.kept_prefixes(None, None) == [""]
    assert plan.kept_prefixes("24", "49") == ["2", "3", "4"] and plan.kept_prefixes(None, "20") == ["0", "1"]
    assert plan.kept_prefixes("db", None) == ["d", "e", "f"]
    # Every kept name of a range is under one of its prefixes.
    for n in range(7):
        low, high = plan.scan_range(date(2026, 3, 2) + timedelta(days=n), 7)
        for token in (uuid.uuid4().hex for _ in range(200)):
            if plan.in_range(token, low, high):
                assert token[0] in plan.kept_prefixes(low, high)


# --- orphans over a cycle -----------------------------------------------------------------------------
def test_a_cycle_of_nights_finds_every_orphan_once_and_touches_no_enrolled_person() -> None:
    stack = make_stack(ORPHAN_SCAN_DAYS=str(NIGHTS))
    users = [uuid.uuid4().hex for _ in range(6)]
    for i, user in enumerate(users):
        assert stack.enroll(user, 10 + i) == "accepted"
    group = _active_group(stack)
    orphans = {stack.face.create_person(group, name="x", user_data=uuid.uuid4().hex) for _ in range(20)}
    stray_kept = {f"{uuid.uuid4().hex}/{uuid.uuid4().hex}.jpg" for _ in range(10)}
    for name in stray_kept:
        stack.photos.keep(name, photo(3))
    enrolled = {stack.user(u).person_id for u in users}

    reports = _week(stack)
    assert sum(int(r["orphanPersons"]) for r in reports) == len(orphans)  # type: ignore[call-overload]
    assert sum(int(r["orphanKeptPhotos"]) for r in reports) == len(stray_kept)  # type: ignore[call-overload]
    assert {p for _g, p, _n in stack.persons()} == enrolled
    assert [stack.status(u) for u in users] == ["enrolled"] * len(users)
    assert not stray_kept & set(stack.photos.list_kept(""))
    ranges = [(r["orphanScanRange"]["from"], r["orphanScanRange"]["to"]) for r in reports]  # type: ignore[index]
    assert len(set(ranges)) == NIGHTS
    # Each night found only the orphans of its own range.
    for report in reports:
        low, high = report["orphanScanRange"]["from"] or None, report["orphanScanRange"]["to"] or None  # type: ignore[index]
        assert report["orphanPersons"] == sum(plan.in_range(p, low, high) for p in orphans)


def test_a_night_reads_a_share_of_the_user_records_not_all_of_them() -> None:
    stack = make_stack(ORPHAN_SCAN_DAYS=str(NIGHTS))
    users = [uuid.uuid4().hex for _ in range(40)]
    for i, user in enumerate(users):
        assert stack.enroll(user, 10 + i % 20) == "accepted"
    calls: list[str] = []
    with hooked(stack, calls.append):
        reports = _week(stack)
    read = [int(r["orphanScan"]["userRowsRead"]) for r in reports]  # type: ignore[index]
    # A night asks for the users whose personId or kept token is in its range: about 1 - (6/7)^2 of them.
    assert max(read) < len(users) and sum(read) >= len(users)
    assert "records.range:users" not in calls  # never the whole table (step 6 reuses the night's query)


@pytest.mark.parametrize("recorded_between_the_queries", [False, True])
def test_a_person_in_flight_when_its_range_is_scanned_is_not_an_orphan(recorded_between_the_queries: bool) -> None:
    """The person factory records an attempt id, creates the person (userData: the attempt id), then records
    the personId. The night's range query may see the record before that last write and the confirming
    query after it: either way the person is named, and it stays."""
    stack = make_stack(ORPHAN_SCAN_DAYS="2")
    assert stack.enroll(uuid.uuid4().hex, 11) == "accepted"  # the active group
    group = _active_group(stack)
    attempt = uuid.uuid4().hex
    person = stack.face.create_person(group, name="x", user_data=attempt)
    nights = [plan.scan_range(stack.clock().date() + timedelta(days=n), 2) for n in range(2)]
    night = next(n for n, (low, high) in enumerate(nights) if plan.in_range(person, low, high))
    # The user's key and kept token lie in the other range: the night's query does not return the record.
    other = "0" if person >= "80" else "f"
    user = other + uuid.uuid4().hex[1:]
    stack.consent(user)
    record = stack.user(user)
    record.person_attempt, record.group_id, record.kept_token = attempt, group, other + uuid.uuid4().hex[1:]
    stack.services.repos.users.update(record)
    stack.clock.advance(days=night)
    queries: list[str] = []

    def recorded(name: str) -> None:
        if name == "records.query:users":
            queries.append(name)
            if recorded_between_the_queries and len(queries) == 2:  # the confirmation, before it reads
                found = stack.user(user)
                found.person_id, found.person_attempt = person, None
                stack.services.repos.users.update(found)

    with hooked(stack, recorded):
        report = stack.purge()
    assert report["orphanPersons"] == 0 and len(queries) >= 2
    assert person in {p for _g, p, _n in stack.persons()}


def test_a_missing_person_is_marked_on_the_night_of_its_range() -> None:
    stack = make_stack(ORPHAN_SCAN_DAYS=str(NIGHTS))
    user = uuid.uuid4().hex
    assert stack.enroll(user, 12) == "accepted"
    person = stack.user(user).person_id
    stack.face.delete_person(_active_group(stack), person)
    reports = _week(stack)
    marked = [r for r in reports if r["missingPersons"]]
    assert len(marked) == 1
    low, high = marked[0]["orphanScanRange"]["from"] or None, marked[0]["orphanScanRange"]["to"] or None  # type: ignore[index]
    assert plan.in_range(person, low, high)
    assert stack.user(user).person_id is None and stack.user(user).last_error == plan.MISSING_PERSON_MESSAGE


def test_a_revocation_without_a_pending_row_is_repaired_within_a_cycle() -> None:
    from shared.errors import FaceTransientError

    stack = make_stack(ORPHAN_SCAN_DAYS=str(NIGHTS))
    user = uuid.uuid4().hex
    assert stack.enroll(user, 13) == "accepted"

    def face_down(name: str) -> None:
        if name == "face.delete_person":
            raise FaceTransientError("Service unavailable", code="ServiceUnavailable", status=503)

    stack.revoke(user)
    with hooked(stack, face_down):
        stack.pump()  # dead-lettered
    stack.services.repos.pending_erasures.delete(rk=user)
    reports = _week(stack)
    repaired = [r for r in reports if r["repairedErasures"]]
    assert len(repaired) == 1  # on the night its record or its attempt row was read; once
    assert stack.services.footprint.of(user).is_empty()


def test_replacements_nobody_polled_for_are_finished_whatever_the_night() -> None:
    stack = make_stack(ORPHAN_SCAN_DAYS=str(NIGHTS))
    users = [uuid.uuid4().hex for _ in range(8)]
    for user in users:
        stack.services.repos.users.insert(User(user_key=user, created_at=iso(stack.clock()),
                                               replace_session=uuid.uuid4().hex))
    seen: list[str] = []
    stack.services.purge._finish_replacement = lambda user_key: seen.append(user_key) or "pending"
    stack.purge()
    assert sorted(seen) == sorted(users)  # every one of them, on any night


# --- the ledger anchor ----------------------------------------------------------------------------------
def _anchor(stack: Stack, day: date) -> dict[str, object]:
    doc: dict[str, object] = json.loads(stack.anchors.blobs[f"{day:%Y/%m/%d}.json"])
    return doc


def test_the_daily_anchor_holds_the_chains_written_since_the_last_one() -> None:
    stack = make_stack()
    first = [uuid.uuid4().hex for _ in range(5)]
    for user in first:
        stack.consent(user)
    day1 = stack.clock().date()
    assert stack.purge()["ledgerAnchor"]["scope"] == "all"  # type: ignore[index]
    assert _anchor(stack, day1)["chains"] == 5
    stack.clock.advance(days=1)
    newcomer = uuid.uuid4().hex
    stack.consent(newcomer)
    report = stack.purge()["ledgerAnchor"]
    assert report["scope"] == "changed" and report["chains"] == 1  # type: ignore[index]
    day2 = stack.clock().date()
    assert _anchor(stack, day2)["chains"] == 1
    stack.clock.advance(days=1)
    assert stack.purge()["ledgerAnchor"]["chains"] == 0  # type: ignore[index]  # nothing written: an empty anchor
    # An unchanged chain is still held by the anchor that last saw it change: an edit of its head is found.
    entry = stack.services.repos.ledger.partition(first[0])[-1]
    entry.terms_version = "edited"
    stack.services.repos.ledger.upsert(entry)
    verify = stack.services.ledger.verify(actor="test")
    assert not verify.ok and any(f.problem == "edited" for f in verify.findings)


def test_a_dry_run_or_a_second_anchor_the_same_day_leaves_the_watermark() -> None:
    from shared.commands import RunPurge

    stack = make_stack()
    stack.consent(uuid.uuid4().hex)
    stack.services.purge.run(RunPurge(dry_run=True, trigger="test"))
    assert (stack.services.repos.purge_stats.get() or type("S", (), {"anchored_through": ""})).anchored_through == ""
    stack.purge()
    mark = stack.services.repos.purge_stats.get().anchored_through  # type: ignore[union-attr]
    assert mark
    stack.consent(uuid.uuid4().hex)
    assert stack.purge()["ledgerAnchor"]["written"] is False  # type: ignore[index]
    assert stack.services.repos.purge_stats.get().anchored_through == mark  # type: ignore[union-attr]
    stack.clock.advance(days=1)
    assert stack.purge()["ledgerAnchor"]["chains"] == 1  # type: ignore[index]  # the consent of the day before
