"""RecordStorePort: FakeRecords and TableRecords (Azurite) answer the same way."""

from __future__ import annotations

import pytest

from shared.errors import RecordConflict, RecordExists
from shared.ports import ANY_ETAG, RecordStorePort


def test_insert_get_and_insert_only(record_store: RecordStorePort) -> None:
    etag = record_store.insert("things", {"PartitionKey": "p", "RowKey": "1", "n": 1, "tags_json": ["a", {"b": 2}],
                                          "gone": None, "flag": True})
    with pytest.raises(RecordExists):
        record_store.insert("things", {"PartitionKey": "p", "RowKey": "1"})
    found = record_store.get("things", "p", "1")
    assert found is not None
    row, current = found
    assert current == etag
    assert row["tags_json"] == ["a", {"b": 2}] and row["n"] == 1 and row["flag"] is True
    assert "gone" not in row  # None columns are not stored
    assert record_store.get("things", "p", "2") is None
    assert record_store.get("nothinghere", "p", "1") is None


def test_update_is_conditional_on_the_etag(record_store: RecordStorePort) -> None:
    first = record_store.insert("things", {"PartitionKey": "p", "RowKey": "1", "n": 1})
    second = record_store.update("things", {"PartitionKey": "p", "RowKey": "1", "n": 2}, etag=first)
    assert second != first
    with pytest.raises(RecordConflict):
        record_store.update("things", {"PartitionKey": "p", "RowKey": "1", "n": 3}, etag=first)  # stale
    found = record_store.get("things", "p", "1")
    assert found is not None and found[0]["n"] == 2 and found[1] == second
    # Replace semantics: a column left out is gone.
    record_store.update("things", {"PartitionKey": "p", "RowKey": "1", "m": 5}, etag=second)
    found = record_store.get("things", "p", "1")
    assert found is not None and "n" not in found[0] and found[0]["m"] == 5
    # A deleted record cannot be updated: the writer lost the race.
    record_store.delete("things", "p", "1")
    with pytest.raises(RecordConflict):
        record_store.update("things", {"PartitionKey": "p", "RowKey": "1", "n": 4}, etag=found[1])


def test_update_with_any_etag_replaces_only_what_exists(record_store: RecordStorePort) -> None:
    """The purge's markers: written whatever the ETag, and never bringing back a deleted record."""
    first = record_store.insert("things", {"PartitionKey": "p", "RowKey": "1", "n": 1})
    second = record_store.update("things", {"PartitionKey": "p", "RowKey": "1", "n": 2}, etag=ANY_ETAG)
    assert second != first
    found = record_store.get("things", "p", "1")
    assert found is not None and found[0]["n"] == 2
    record_store.delete("things", "p", "1")
    with pytest.raises(RecordConflict):
        record_store.update("things", {"PartitionKey": "p", "RowKey": "1", "n": 3}, etag=ANY_ETAG)
    assert record_store.get("things", "p", "1") is None


def test_upsert_and_idempotent_delete(record_store: RecordStorePort) -> None:
    record_store.upsert("things", {"PartitionKey": "p", "RowKey": "1", "n": 1})
    etag = record_store.upsert("things", {"PartitionKey": "p", "RowKey": "1", "m": 2})
    found = record_store.get("things", "p", "1")
    assert found is not None and found[0].get("n") is None and found[0]["m"] == 2 and found[1] == etag
    record_store.delete("things", "p", "1")
    record_store.delete("things", "p", "1")  # missing: not an error
    record_store.delete("nevercreated", "p", "1")
    assert record_store.get("things", "p", "1") is None


def test_partition_and_key_ranges(record_store: RecordStorePort) -> None:
    for pk in ("20260101", "20260102", "20260103"):
        for rk in ("a", "b"):
            record_store.insert("idx", {"PartitionKey": pk, "RowKey": rk, "v": f"{pk}{rk}", "w": 1})
    assert [r["RowKey"] for r in record_store.partition("idx", "20260102")] == ["a", "b"]
    assert record_store.partition("idx", "19990101") == []
    upto = list(record_store.range("idx", pk_to="20260103"))
    assert [(r["PartitionKey"], r["RowKey"]) for r in upto] == [
        ("20260101", "a"), ("20260101", "b"), ("20260102", "a"), ("20260102", "b")]
    since = list(record_store.range("idx", pk_from="20260102", rk_from="b"))
    assert [(r["PartitionKey"], r["RowKey"]) for r in since] == [("20260102", "b"), ("20260103", "b")]
    one = list(record_store.range("idx", pk="20260103", rk_to="b"))
    assert [r["v"] for r in one] == ["20260103a"]
    selected = list(record_store.range("idx", pk="20260101", select=["RowKey", "v"]))
    assert [r["v"] for r in selected] == ["20260101a", "20260101b"]
    assert all("w" not in r for r in selected)
    assert list(record_store.range("nevercreated")) == []


def test_delete_can_be_conditional_on_the_etag(record_store: RecordStorePort) -> None:
    first = record_store.insert("things", {"PartitionKey": "p", "RowKey": "c", "n": 1})
    second = record_store.update("things", {"PartitionKey": "p", "RowKey": "c", "n": 2}, etag=first)
    with pytest.raises(RecordConflict):
        record_store.delete("things", "p", "c", etag=first)  # changed since it was read: not deleted blind
    assert record_store.get("things", "p", "c") is not None
    record_store.delete("things", "p", "c", etag=second)
    assert record_store.get("things", "p", "c") is None
    record_store.delete("things", "p", "c", etag=second)  # gone already: not an error


def test_insert_batch_is_all_or_none_per_transaction(record_store: RecordStorePort) -> None:
    rows = [{"PartitionKey": "b", "RowKey": f"{i:03d}", "n": i, "tags_json": [i]} for i in range(150)]
    etags = record_store.insert_batch("batched", rows)
    assert len(etags) == 150 and all(etags)
    found = record_store.get("batched", "b", "149")
    assert found is not None and found[0]["tags_json"] == [149] and found[1] == etags[149]
    # A transaction with one existing row creates none of its rows.
    with pytest.raises(RecordExists):
        record_store.insert_batch("batched", [{"PartitionKey": "b", "RowKey": "new"}, {"PartitionKey": "b", "RowKey": "000"}])
    assert record_store.get("batched", "b", "new") is None


def test_partitions_reads_many_partitions_in_few_requests(record_store: RecordStorePort) -> None:
    for u in range(40):
        for r in range(2):
            record_store.insert("many", {"PartitionKey": f"u{u:02d}", "RowKey": f"r{r}", "n": u})
    wanted = [f"u{u:02d}" for u in range(0, 40, 2)] + ["u99"]  # 21 keys: two requests of at most 15
    rows = list(record_store.partitions("many", wanted))
    assert sorted((r["PartitionKey"], r["RowKey"]) for r in rows) == sorted(
        (f"u{u:02d}", f"r{r}") for u in range(0, 40, 2) for r in range(2))
    assert list(record_store.partitions("many", [])) == []


def test_a_repository_mutate_creates_once_and_then_updates(record_store: RecordStorePort) -> None:
    """``Repository.mutate(create=...)``: the first call inserts; a writer that loses the race to create
    it re-reads and updates, so no increment is lost."""
    from shared.adapters.repositories import Repositories
    from shared.domain.records import Counter

    repos = Repositories(record_store)

    def bump(counter: Counter) -> None:
        counter.count += 1

    first = repos.counters.mutate(bump, rk="c", create=lambda: Counter(name="c"))
    assert first is not None and first.count == 1
    # Another writer creates the row between this writer's read (nothing) and its insert.
    original_get = repos.counters.get
    raced = {"done": False}

    def get_then_race(pk: str | None = None, rk: str | None = None) -> Counter | None:
        if not raced["done"]:
            raced["done"] = True
            repos.counters.mutate(bump, rk="d", create=lambda: Counter(name="d"))
            return None
        return original_get(pk, rk)

    repos.counters.get = get_then_race  # type: ignore[method-assign]
    second = repos.counters.mutate(bump, rk="d", create=lambda: Counter(name="d"))
    assert second is not None and second.count == 2
    repos.counters.get = original_get  # type: ignore[method-assign]
    assert repos.counters.get(rk="c").count == 1  # type: ignore[union-attr]
    assert repos.counters.mutate(bump, rk="missing") is None  # without create: nothing to change


def test_a_query_ors_groups_of_anded_comparisons_and_a_missing_column_never_matches(record_store: RecordStorePort) -> None:
    from shared.ports import Cond

    rows = [("u1", {"personId": "3a", "keptToken": "e1"}), ("u2", {"personId": "9f", "replaceSession": "s"}),
            ("u3", {"keptToken": "40"}), ("u4", {"personId": "40", "replaceSession": ""}), ("v5", {})]
    for pk, columns in rows:
        record_store.insert("users", {"PartitionKey": pk, "RowKey": "user", **columns})
    found = record_store.query("users", [[Cond("personId", "ge", "3"), Cond("personId", "lt", "4")],
                                         [Cond("keptToken", "ge", "4"), Cond("keptToken", "lt", "5")],
                                         [Cond("replaceSession", "gt", "")],
                                         [Cond("PartitionKey", "ge", "v")]], select=["PartitionKey", "personId"])
    assert sorted(r["PartitionKey"] for r in found) == ["u1", "u2", "u3", "v5"]
    assert [r["PartitionKey"] for r in record_store.query("users", [[Cond("personId", "ne", "9f")]])] == ["u1", "u4"]
    assert list(record_store.query("users", [[Cond("RowKey", "eq", "nope")]])) == []
    with pytest.raises(ValueError):
        list(record_store.query("users", [[Cond("personId", "eq", str(i))] for i in range(16)]))


def test_changed_returns_every_row_written_after_its_watermark(record_store: RecordStorePort) -> None:
    record_store.insert("ledger", {"PartitionKey": "a", "RowKey": "1"})
    first, mark = record_store.changed("ledger", since=None)
    assert [r["PartitionKey"] for r in first] == ["a"] and mark
    found = record_store.get("ledger", "a", "1")
    assert found is not None
    record_store.insert("ledger", {"PartitionKey": "b", "RowKey": "1"})
    record_store.update("ledger", {"PartitionKey": "a", "RowKey": "1", "n": 2}, etag=found[1])
    again, later = record_store.changed("ledger", since=mark)
    assert {r["PartitionKey"] for r in again} >= {"a", "b"}  # a replaced row is a change too
    assert later >= mark
    _, after_nothing = record_store.changed("ledger", since=later)
    assert after_nothing >= later  # never back
