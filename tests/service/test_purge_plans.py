"""purge_timer's two read plans for index rows it must confirm (rows not settled: a crash's leftovers, rows
from before ``settled``) give the same verdicts, and the cheaper one is chosen from the index count: a few
due users are confirmed in batches of 15 partitions per request, many by one scan of the ledger and the
uploads."""

from __future__ import annotations

from shared.commands import RunPurge
from tests.service.support import Stack, make_stack


def _as_before_settled(stack: Stack) -> None:
    """Index rows as they were written before ``settled`` (or left unsettled by a crash): what the two
    plans confirm. Settled rows need no confirming read (tests/service/test_purge_settled.py)."""
    repos = stack.services.repos
    for due in list(repos.consent_due.range()):
        due.settled = None
        repos.consent_due.upsert(due)
    for upload in list(repos.uploads_due.range()):
        upload.settled = None
        repos.uploads_due.upsert(upload)


def test_batched_and_scan_plans_find_the_same_due_items_with_fewer_requests() -> None:
    stack = make_stack(CONSENT_RETENTION_DAYS="30", UPLOAD_MAX_AGE_MINUTES="60")
    due = [f"due-{i:03d}" for i in range(40)]
    for user in due:
        stack.consent(user)
        stack.slots(user, 1)  # an upload slot never used: stale after an hour
    stack.clock.advance(days=20)
    for i in range(20):
        stack.consent(f"kept-{i:03d}")  # granted later: not due at the purge below
    stack.clock.advance(days=11)
    _as_before_settled(stack)
    calls: list[str] = []
    stack.set_hook(calls.append)
    first = stack.services.purge.run(RunPurge(dry_run=True, trigger="test")).as_json()
    first_calls = list(calls)
    calls.clear()
    second = stack.services.purge.run(RunPurge(dry_run=True, trigger="test")).as_json()
    stack.clear_hook()
    # No table sizes known yet: batched; then the orphan scan has counted 60 users, and confirming 40
    # users 15 at a time (3 requests a table) costs more than one page of the table: scan.
    assert first["readPlans"] == {"expiredConsents": "batched", "staleUploads": "batched"}, first
    assert second["readPlans"] == {"expiredConsents": "scan", "staleUploads": "scan"}, second
    for key in ("expiredConsents", "staleUploads", "staleSessions", "staleIndexRows"):
        assert first[key] == second[key], key
    assert first["expiredConsents"] == 40 and first["staleUploads"] == 40
    # No point read of a ledger or an upload in either plan.
    for seen in (first_calls, second_calls := calls):
        assert not [c for c in seen if c in ("records.partition:consent", "records.get:uploads")], seen
    assert first_calls.count("records.partitions:consent") == 3  # 40 users, 15 per request
    # One scan of the ledger by the scan plan; the batched plan reads partitions. Step 7's anchor reads
    # what changed since the last anchor (the first time: every entry), never a range of its own.
    assert second_calls.count("records.range:consent") == 1
    assert first_calls.count("records.range:consent") == 0
    assert first_calls.count("records.changed:consent") == second_calls.count("records.changed:consent") == 1
