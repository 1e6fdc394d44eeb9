"""purge_timer acts on settled index rows as they are, with no read of the ledger or the upload records,
and a crash at any call of the writes that make a row untrue (a renewal, a photo's final status) never
lets it act on a row that no longer says what is true (shared/domain/erasure.trusts_*_row)."""

from __future__ import annotations

import pytest

from shared.commands import Revoke, RunPurge
from shared.domain.enrollment import FINAL_PHOTO_STATUSES, latest_grant
from tests.service.support import CallCounter, Crash, Stack, hooked, make_stack, new_user

CONFIRMING_READS = ("records.partitions:consent", "records.partition:consent", "records.partitions:uploads",
                    "records.partition:uploads", "records.get:uploads")


def test_settled_rows_are_acted_on_without_reading_the_ledger_or_the_uploads() -> None:
    stack = make_stack(CONSENT_RETENTION_DAYS="30", UPLOAD_MAX_AGE_MINUTES="60")
    due = [new_user() for _ in range(40)]
    for user in due:
        stack.consent(user)
    stack.clock.advance(days=20)
    kept = [new_user() for _ in range(40)]
    for user in kept:
        stack.consent(user)  # granted later: not due at the purge below
        stack.slots(user, 1)  # an upload slot never used: stale after an hour
    stack.clock.advance(days=11)
    calls: list[str] = []
    with hooked(stack, calls.append):
        dry = stack.services.purge.run(RunPurge(dry_run=True, trigger="test")).as_json()
    assert dry["expiredConsents"] == 40 and dry["staleUploads"] == 40 and dry["staleSessions"] == 40
    assert dry["readPlans"] == {"expiredConsents": "none", "staleUploads": "none"}, dry["readPlans"]
    assert not [c for c in calls if c in CONFIRMING_READS], sorted(set(calls))
    # The real run does what the dry run reported, with the request id of a revocation of that grant.
    report = stack.purge()
    assert report["expiredConsents"] == 40 and report["staleUploads"] == 40
    assert all(stack.status(u) == "revoked" for u in due)
    assert all(stack.status(u) != "revoked" for u in kept)
    assert all(stack.services.repos.uploads.partition(u) == [] for u in kept)
    assert list(stack.services.repos.uploads_due.range()) == []


def _renewal_calls() -> list[str]:
    stack = make_stack(CONSENT_RETENTION_DAYS="30")
    user = new_user()
    stack.consent(user)
    stack.clock.advance(days=10)
    calls: list[str] = []
    with hooked(stack, calls.append):
        stack.consent(user)
    return calls


RENEWAL = _renewal_calls()


@pytest.mark.parametrize("crash_at", range(len(RENEWAL)), ids=[f"{i}-{c}" for i, c in enumerate(RENEWAL)])
def test_a_renewal_crashed_anywhere_never_lets_the_old_row_erase_the_renewed_consent(crash_at: int) -> None:
    stack = make_stack(CONSENT_RETENTION_DAYS="30")
    user = new_user()
    stack.consent(user)
    first = latest_grant(stack.services.consent.ledger(user))
    stack.clock.advance(days=10)
    with hooked(stack, CallCounter(crash_at)), pytest.raises(Crash):
        stack.consent(user)  # a renewal on another day, cut short at call crash_at
    grant = latest_grant(stack.services.consent.ledger(user))
    renewed = grant is not None and first is not None and grant.entry_id != first.entry_id
    stack.clock.advance(days=21)  # the first grant's retention is over, the renewal's is not
    stack.purge()
    assert (stack.status(user) == "revoked") is not renewed, f"renewed={renewed}"
    if renewed:
        # And the renewal itself is found when its own retention is over (every grant has its row).
        stack.clock.advance(days=10)
        stack.purge()
        assert stack.status(user) == "revoked"


def _processing_calls() -> list[str]:
    stack = make_stack()
    name = stack.uploaded(new_user(), 17)
    calls: list[str] = []
    with hooked(stack, calls.append):
        assert stack.blob_created(name) == "accepted"
    return calls


PROCESSING = _processing_calls()


@pytest.mark.parametrize("crash_at", range(len(PROCESSING)), ids=[f"{i}-{c}" for i, c in enumerate(PROCESSING)])
def test_a_photo_crashed_anywhere_in_processing_is_purged_only_if_unfinished(crash_at: int) -> None:
    stack = make_stack(UPLOAD_MAX_AGE_MINUTES="60")
    user = new_user()
    name = stack.uploaded(user, 17)
    upload_id = name.split("/")[1]
    with hooked(stack, CallCounter(crash_at)), pytest.raises(Crash):
        stack.blob_created(name)  # and no redelivery: the worst case, a dead-lettered event
    before = stack.services.repos.uploads.get(user, upload_id)
    assert before is not None
    stack.clock.advance(minutes=61)
    report = stack.purge()
    after = stack.services.repos.uploads.get(user, upload_id)
    if before.status in FINAL_PHOTO_STATUSES:
        # A photo whose outcome was written keeps its record (what the user sees); its row is gone.
        assert after is not None and after.status == before.status
        assert report["staleUploads"] == 0
    else:
        # Unfinished past its age: the slot, its record and its blob go.
        assert after is None and name not in stack.photos.uploads
        assert report["staleUploads"] == 1
    assert list(stack.services.repos.uploads_due.range()) == []


def _hr_erasure(stack: Stack, user: str) -> None:
    stack.services.revocation.erase(Revoke(user, "hr-request", reason="terminated", requested_by="hr"))


def _enrolled_past_retention() -> tuple[Stack, str]:
    stack = make_stack(CONSENT_RETENTION_DAYS="30")
    user = new_user()
    assert stack.enroll(user, 17) == "accepted"
    stack.clock.advance(days=31)  # the consent is past its retention too
    return stack, user


def _face_down(name: str) -> None:
    raise ConnectionError(f"Face unreachable at {name}")


def test_a_due_row_of_a_user_being_erased_is_left_to_that_erasure() -> None:
    """An HR erasure (its own request id) crashed after its tombstone and before deleting the index
    rows, and Face is down, so step 0 cannot finish it either: step 1 must not start a second erasure
    of the same user with another request id (a second tombstone, a second receipt)."""
    probe, probe_user = _enrolled_past_retention()
    calls: list[str] = []
    with hooked(probe, calls.append):
        _hr_erasure(probe, probe_user)
    before_index_delete = calls.index("records.delete:consentbyday")
    stack, user = _enrolled_past_retention()
    with hooked(stack, CallCounter(before_index_delete)), pytest.raises(Crash):
        _hr_erasure(stack, user)
    assert [r.user_key for r in stack.services.repos.consent_due.range()] == [user]  # still there, settled
    stack.face.hook = _face_down
    report = stack.purge()
    stack.face.hook = lambda name: None
    assert report["expiredConsents"] == 0
    assert [e.request_id for e in stack.services.consent.ledger(user) if e.kind == "revocation"] == ["hr-request"]
    stack.purge()  # Face is back: step 0 finishes the HR erasure, with its own request id and receipt
    assert stack.status(user) == "revoked"
    assert [e.request_id for e in stack.services.consent.ledger(user) if e.kind == "revocation"] == ["hr-request"]
    assert list(stack.services.repos.consent_due.range()) == []


def test_a_purge_scans_the_user_records_once() -> None:
    """The orphan step's scan also finds the replacements nobody polled for (step 6 made a second one)."""
    stack = make_stack()
    for identity in (17, 23):
        assert stack.enroll(new_user(), identity) == "accepted"
    calls: list[str] = []
    with hooked(stack, calls.append):
        stack.purge()
    assert calls.count("records.range:users") == 1, sorted(set(calls))
