"""The consent ledger's hash chain and anchors, on the fakes: every way of altering the ledger is
tried, and verify must name the user and the position each time."""

from __future__ import annotations

import json
from typing import Any

from shared.commands import RequestRevocation, Revoke, RunPurge
from shared.domain import ledger_chain as lc
from shared.domain.enrollment import iso, ledger_entry_id
from shared.domain.records import LedgerEntry
from tests.service.support import Stack, make_stack, principal

TABLE = "consent"


def three_entries(stack: Stack, user: str = "alice") -> list[str]:
    """consent, consent again (a new choice), revocation: a chain of three."""
    stack.consent(user, store_photos=True)
    stack.clock.advance(minutes=1)
    stack.consent(user, store_photos=False)
    stack.clock.advance(minutes=1)
    stack.services.revocation.request(RequestRevocation(principal(user), user, "test"))
    stack.pump()
    return [rk for (pk, rk) in sorted(stack.records.tables[TABLE]) if pk == user]


def rows(stack: Stack, user: str) -> list[tuple[tuple[str, str], dict[str, Any], str]]:
    return [(k, e, t) for k, (e, t) in sorted(stack.records.tables[TABLE].items()) if k[0] == user]


def findings(stack: Stack) -> list[tuple[str, int, str]]:
    report = stack.services.ledger.verify(actor="test")
    return [(f.user_key, f.position, f.problem) for f in report.findings]


def test_entries_form_a_chain_from_genesis_and_survive_erasure() -> None:
    stack = make_stack()
    ids = three_entries(stack)
    assert len(ids) == 3
    entries = [e for _, e, _ in rows(stack, "alice")]
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["prevSha256"] == lc.GENESIS
    assert entries[1]["prevSha256"] == lc.entry_hash({"PartitionKey": "alice", "RowKey": ids[0], **entries[0]})
    # The erasure ran (the tombstone is the third entry) and the ledger is intact: it is retained.
    assert entries[2]["kind"] == "revocation"
    assert stack.user("alice") is None
    report = stack.services.ledger.verify(actor="test")
    assert report.ok and report.chains == 1 and report.entries == 3


def test_an_edited_entry_is_named_by_user_and_position() -> None:
    stack = make_stack()
    three_entries(stack)
    three_entries(stack, "bob")
    (key, entity, etag) = rows(stack, "alice")[0]
    entity["storePhotos"] = False  # rewrite what alice chose, after the fact
    stack.records.tables[TABLE][key] = (entity, etag)
    assert findings(stack) == [("alice", 1, "edited")]


def test_a_deleted_entry_is_named_by_user_and_position() -> None:
    stack = make_stack()
    three_entries(stack)
    key = rows(stack, "alice")[1][0]
    del stack.records.tables[TABLE][key]
    assert findings(stack) == [("alice", 2, "deleted")]


def test_a_deleted_head_is_caught_by_the_anchor_only() -> None:
    stack = make_stack()
    three_entries(stack)
    assert stack.purge()["ledgerAnchor"]["written"] is True
    key = rows(stack, "alice")[2][0]  # the last entry: no later link names it
    del stack.records.tables[TABLE][key]
    assert findings(stack) == [("alice", 3, "deleted")]


def test_a_rewritten_chain_is_caught_by_the_anchor() -> None:
    """The careful forger edits entry 1 and recomputes every later link: the table alone looks fine."""
    stack = make_stack()
    three_entries(stack)
    stack.purge()
    chain = rows(stack, "alice")
    prev = lc.GENESIS
    for i, (key, entity, etag) in enumerate(chain):
        if i == 0:
            entity["termsVersion"] = "forged"
        entity["prevSha256"] = prev
        stack.records.tables[TABLE][key] = (entity, etag)
        prev = lc.entry_hash({"PartitionKey": key[0], "RowKey": key[1], **entity})
    assert not any(f[2] == "edited" and f[1] < 3 for f in findings(stack))
    assert ("alice", 3, "edited") in findings(stack)


def test_a_whole_chain_deleted_after_an_anchor_is_reported() -> None:
    stack = make_stack()
    three_entries(stack)
    three_entries(stack, "bob")
    stack.purge()
    for key, _, _ in rows(stack, "bob"):
        del stack.records.tables[TABLE][key]
    got = findings(stack)
    assert len(got) == 3 and all(p == "deleted" for _, _, p in got)
    assert got[0][0].startswith("(user ") and lc.user_ref("bob").startswith(got[0][0][6:22])


def test_a_moved_entry_is_reported_as_reordered() -> None:
    stack = make_stack()
    three_entries(stack)
    (key, entity, etag) = rows(stack, "alice")[0]
    del stack.records.tables[TABLE][key]
    entity["RowKey"] = "9999-12-31T00:00:00Z_moved"  # now sorts after the revocation
    stack.records.tables[TABLE][(key[0], entity["RowKey"])] = (entity, etag)
    assert findings(stack) == [("alice", 1, "reordered")]


def test_a_damaged_anchor_is_not_trusted() -> None:
    stack = make_stack()
    three_entries(stack)
    stack.purge()
    (name,) = stack.anchors.blobs
    doc = json.loads(stack.anchors.blobs[name])
    doc["heads"][0]["entries"] = 1
    stack.anchors.blobs[name] = json.dumps(doc).encode()
    report = stack.services.ledger.verify(actor="test")
    assert report.damaged_anchors == [name] and not report.ok


def test_one_anchor_a_day_never_overwritten() -> None:
    stack = make_stack()
    three_entries(stack)
    first = stack.purge()["ledgerAnchor"]
    stack.consent("carol")
    second = stack.purge()["ledgerAnchor"]
    assert first["written"] is True and second["written"] is False
    assert len(stack.anchors.blobs) == 1
    stack.clock.advance(days=1)
    assert stack.purge()["ledgerAnchor"]["written"] is True
    assert len(stack.anchors.blobs) == 2
    assert stack.services.ledger.verify(actor="test").ok
    dry = stack.services.purge.run(RunPurge(True, "test"))
    assert dry.ledger_anchor["written"] is False


def test_an_anchor_holds_no_user_key() -> None:
    stack = make_stack()
    three_entries(stack, "alice-secret-key")
    stack.purge()
    (blob,) = stack.anchors.blobs.values()
    assert b"alice-secret-key" not in blob


def test_concurrent_appends_converge_to_one_chain() -> None:
    """Two writers read the same head before either inserts: the second re-links its own entry."""
    stack = make_stack()
    stack.consent("dave")
    ledger = stack.services.ledger
    now = stack.clock()
    a = ledger.prepare(LedgerEntry(user_key="dave", entry_id=ledger_entry_id(now, "a"), kind="consent",
                                   accepted=True, at=iso(now)))
    b = ledger.prepare(LedgerEntry(user_key="dave", entry_id=ledger_entry_id(now, "b"), kind="consent",
                                   accepted=True, at=iso(now)))
    assert a.seq == b.seq == 2
    ledger.append(a, prepared=True)
    ledger.append(b, prepared=True)
    assert [e["seq"] for _, e, _ in rows(stack, "dave")] == [1, 2, 3]
    assert stack.services.ledger.verify(actor="test").ok


def test_an_entry_from_a_slow_clock_is_appended_last() -> None:
    stack = make_stack()
    stack.consent("erin")
    stack.clock.advance(minutes=5)
    stack.consent("erin")
    early = stack.clock.now.replace(year=2020)
    entry = stack.services.ledger.append(LedgerEntry(user_key="erin", entry_id=ledger_entry_id(early, "late"),
                                                     kind="consent", accepted=True, at=iso(early)))
    assert entry.seq == 3 and rows(stack, "erin")[-1][0][1] == entry.entry_id
    assert stack.services.ledger.verify(actor="test").ok


def test_a_redelivered_erasure_writes_one_tombstone() -> None:
    stack = make_stack()
    stack.consent("fay")
    command = Revoke("fay", "req-1")
    stack.services.revocation.erase(command)
    stack.services.revocation.erase(command)
    assert [e["kind"] for _, e, _ in rows(stack, "fay")] == ["consent", "revocation"]
    assert stack.services.ledger.verify(actor="test").ok


def test_a_decline_and_a_photo_replacement_keep_one_intact_chain() -> None:
    """Issue 15's other writers: a recorded decline is a ledger entry like a grant, so it is a link of the
    chain (an edit of it is named); a photo replacement writes no ledger entry and leaves the chain intact."""
    from shared.commands import CreateUploads, DeclineConsent
    from tests.fakes import photo

    stack = make_stack()
    terms = stack.services.consent.terms()
    stack.services.consent.decline(DeclineConsent(principal("gil"), terms.version, "test"))
    stack.clock.advance(minutes=1)
    assert stack.enroll("gil", 17) == "accepted"  # consents (a second entry), enrolls
    created = stack.services.enrollment.create_uploads(CreateUploads(principal("gil"), 1, replace=True))
    name = f"{created.session_id}/{created.uploads[0].upload_id}"
    stack.put(name, photo(17, size=400))
    assert stack.blob_created(name) == "accepted"
    assert stack.services.enrollment.finish_replacement("gil") == "replaced"
    stack.clock.advance(minutes=1)
    stack.services.revocation.request(RequestRevocation(principal("gil"), "gil", "test"))
    stack.pump()
    entries = [e for _, e, _ in rows(stack, "gil")]
    assert [(e["kind"], e["seq"]) for e in entries] == [("decline", 1), ("consent", 2), ("revocation", 3)]
    assert entries[0]["prevSha256"] == lc.GENESIS
    stack.services.purge.run(RunPurge(dry_run=False, trigger="test"))  # anchors the chain
    assert stack.services.ledger.verify(actor="test").ok
    (key, entity, etag) = rows(stack, "gil")[0]
    entity["accepted"] = True  # turn the refusal into a consent, after the fact
    stack.records.tables[TABLE][key] = (entity, etag)
    assert findings(stack) == [("gil", 1, "edited")]
