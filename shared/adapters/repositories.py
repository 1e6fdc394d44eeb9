"""Repositories: the one place that knows table names, key layouts and column names.

Each record type of shared/domain/records.py is stored by a ``Layout``: its table, which fields
(or constants) are the PartitionKey and RowKey, and its columns. A column is the field's name in
camelCase; list and dict fields are JSON columns (``<name>_json``, stored as JSON text by the
record store). ``Repository`` reads and writes typed records over any ``RecordStorePort`` (Table
storage, or the in-memory fake in tests) and carries the ETag on the record, so every update is
conditional. ``Repository.mutate`` is the one optimistic read-modify-write loop of the app.

To add a table: a dataclass in shared/domain/records.py, a ``Layout`` and a field in
``Repositories`` below.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Generic, TypeVar

from shared.domain import records as rec
from shared.errors import RecordConflict, RecordExists, TransientFailure
from shared.ports import ANY_ETAG, Cond, RecordStorePort

R = TypeVar("R", bound=rec.Record)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


@dataclass(frozen=True)
class Layout(Generic[R]):
    """Where a record type lives. ``pk``/``rk`` name a field, or ``pk_const``/``rk_const`` fix the key."""

    table: str
    record: type[R]
    pk: str | None = None
    rk: str | None = None
    pk_const: str | None = None
    rk_const: str | None = None
    renamed: Mapping[str, str] = dataclasses.field(default_factory=dict)  # field -> column, when not camelCase
    key_columns: bool = False  # also store the key fields as columns (older rows and readers expect them)

    @cached_property
    def _columns(self) -> dict[str, str]:
        hints = typing.get_type_hints(self.record)
        out: dict[str, str] = {}
        for f in dataclasses.fields(self.record):
            if f.name == "etag" or (f.name in (self.pk, self.rk) and not self.key_columns):
                continue
            origin = typing.get_origin(hints[f.name]) or hints[f.name]
            suffix = "_json" if origin in (list, dict) else ""
            out[f.name] = self.renamed.get(f.name) or _camel(f.name) + suffix
        return out

    def keys(self, *, pk: str | None = None, rk: str | None = None) -> tuple[str, str]:
        pk_value = self.pk_const if self.pk_const is not None else pk
        rk_value = self.rk_const if self.rk_const is not None else rk
        if pk_value is None or rk_value is None:
            raise ValueError(f"{self.table}: both keys are needed")
        return pk_value, rk_value

    def to_entity(self, record: R) -> dict[str, Any]:
        pk = self.pk_const if self.pk_const is not None else getattr(record, str(self.pk))
        rk = self.rk_const if self.rk_const is not None else getattr(record, str(self.rk))
        entity: dict[str, Any] = {"PartitionKey": pk, "RowKey": rk}
        for name, column in self._columns.items():
            entity[column] = getattr(record, name)
        return entity

    def from_entity(self, entity: Mapping[str, Any], etag: str = "") -> R:
        values: dict[str, Any] = {}
        if self.pk:
            values[self.pk] = str(entity["PartitionKey"])
        if self.rk:
            values[self.rk] = str(entity["RowKey"])
        for name, column in self._columns.items():
            if name not in values and entity.get(column) is not None:
                values[name] = entity[column]
        return self.record(etag=etag, **values)

    def column(self, name: str) -> str:
        """The column that holds field ``name`` (a key field: PartitionKey or RowKey)."""
        if name == self.pk:
            return "PartitionKey"
        if name == self.rk:
            return "RowKey"
        return self._columns[name]

    def columns(self, names: list[str]) -> list[str]:
        return ["PartitionKey", "RowKey", *(self._columns[n] for n in names if n in self._columns)]


class Repository(Generic[R]):
    def __init__(self, store: RecordStorePort, layout: Layout[R]) -> None:
        self._store = store
        self.layout = layout

    @property
    def table(self) -> str:
        """The table's name without the app's prefix (receipts name the stores they erased)."""
        return self.layout.table

    def get(self, pk: str | None = None, rk: str | None = None) -> R | None:
        found = self._store.get(self.layout.table, *self.layout.keys(pk=pk, rk=rk))
        return self.layout.from_entity(*found) if found else None

    def insert(self, record: R) -> R:
        """Creates the record; ``RecordExists`` if it is there already."""
        record.etag = self._store.insert(self.layout.table, self.layout.to_entity(record))
        return record

    def insert_all(self, records: list[R]) -> None:
        """Creates records of one partition in batch transactions (one request per 100); those that
        exist already (a redelivered fan-out) are left as they are, and the others are still created."""
        if not records:
            return
        try:
            etags = self._store.insert_batch(self.layout.table, [self.layout.to_entity(r) for r in records])
        except RecordExists:
            for record in records:
                try:
                    self.insert(record)
                except RecordExists:
                    pass
            return
        for record, etag in zip(records, etags, strict=True):
            record.etag = etag

    def update(self, record: R) -> R:
        """Replaces the record if it still has ``record.etag``; ``RecordConflict`` otherwise (or if it is gone)."""
        record.etag = self._store.update(self.layout.table, self.layout.to_entity(record), etag=record.etag)
        return record

    def replace_if_present(self, record: R) -> bool:
        """Replaces the record whatever its ETag, but never creates it (one request; False if it is gone):
        for a marker that must not bring back a row another writer deleted."""
        try:
            record.etag = self._store.update(self.layout.table, self.layout.to_entity(record), etag=ANY_ETAG)
        except RecordConflict:
            return False
        return True

    def upsert(self, record: R) -> R:
        record.etag = self._store.upsert(self.layout.table, self.layout.to_entity(record))
        return record

    def delete(self, pk: str | None = None, rk: str | None = None) -> None:
        """Idempotent: a missing record is not an error."""
        self._store.delete(self.layout.table, *self.layout.keys(pk=pk, rk=rk))

    def delete_record(self, record: R) -> None:
        """Deletes ``record`` only if it still has ``record.etag`` (``RecordConflict`` if it changed); gone is fine."""
        entity = self.layout.to_entity(record)
        self._store.delete(self.layout.table, entity["PartitionKey"], entity["RowKey"], etag=record.etag or None)

    def mutate(self, change: Callable[[R], object], pk: str | None = None, rk: str | None = None, *,
               attempts: int = 5, create: Callable[[], R] | None = None) -> R | None:
        """Applies ``change`` (which mutates the record in place) and writes it if nobody changed it meanwhile.

        Re-reads and re-applies on a lost race. Returns the written record, or None when there is none
        (erased, for instance) and no ``create``, which otherwise makes the first one (``change`` applied
        to it; a lost race to create it is retried as an update). ``change`` may raise to abort.
        ``TransientFailure`` when it keeps changing.
        """
        for _ in range(attempts):
            found = self.get(pk, rk)
            if found is None:
                if create is None:
                    return None
                fresh = create()
                change(fresh)
                try:
                    return self.insert(fresh)
                except RecordExists:
                    continue
            change(found)
            try:
                return self.update(found)
            except RecordConflict:
                continue
        raise TransientFailure(f"{self.layout.table} record kept changing")

    def partition(self, pk: str | None = None) -> list[R]:
        key = self.layout.pk_const if self.layout.pk_const is not None else pk
        if key is None:
            raise ValueError(f"{self.layout.table}: a partition key is needed")
        return [self.layout.from_entity(e) for e in self._store.partition(self.layout.table, key)]

    def partitions(self, pks: list[str]) -> dict[str, list[R]]:
        """The records of several partitions by key, one request per 15 keys."""
        out: dict[str, list[R]] = {pk: [] for pk in pks}
        for e in self._store.partitions(self.layout.table, pks):
            record = self.layout.from_entity(e)
            out.setdefault(str(e["PartitionKey"]), []).append(record)
        return out

    def range(self, *, pk_from: str | None = None, pk_to: str | None = None, pk: str | None = None,
              only: list[str] | None = None) -> Iterator[R]:
        """A key-range query; ``only`` reads just those fields (the others keep their defaults)."""
        select = self.layout.columns(only) if only is not None else None
        for e in self._store.range(self.layout.table, pk_from=pk_from, pk_to=pk_to, pk=pk, select=select):
            yield self.layout.from_entity(e)

    def where(self, *any_of: Sequence[tuple[str, str, str]], only: list[str] | None = None) -> Iterator[R]:
        """The records that match any group of ``(field, op, value)`` comparisons, all of a group at once
        (filtered by the store: a request returns up to 1,000 matches however many rows it passed over).
        Key fields compare as keys; a record without the field never matches."""
        select = self.layout.columns(only) if only is not None else None
        groups = [[Cond(self.layout.column(name), op, value) for name, op, value in group] for group in any_of]
        for e in self._store.query(self.layout.table, groups, select=select):
            yield self.layout.from_entity(e)


# --- the tables --------------------------------------------------------------------------------------
TABLE_USERS, TABLE_UPLOADS, TABLE_UPLOAD_INDEX = "users", "uploads", "uploadindex"
TABLE_CONSENT, TABLE_STATE, TABLE_AUDIT, TABLE_OVERRIDES, TABLE_RECEIPTS = "consent", "state", "audit", "overrides", "receipts"
TABLE_HR_INDEX, TABLE_RUNS, TABLE_ITEMS = "hrindex", "reenrollruns", "reenrollitems"
TABLE_CONSENT_BY_DAY, TABLE_UPLOADS_BY_MINUTE = "consentbyday", "uploadsbyminute"
TABLE_ATTEMPTS, TABLE_PENDING_ERASURES, TABLE_COUNTERS = "personattempts", "erasurespending", "counters"
TABLE_OUTBOX = "outbox"
TABLE_SCHEDULED = "scheduledmessages"

USERS = Layout(TABLE_USERS, rec.User, pk="user_key", rk_const="user")
UPLOADS = Layout(TABLE_UPLOADS, rec.Upload, pk="user_key", rk="upload_id")
UPLOAD_INDEX = Layout(TABLE_UPLOAD_INDEX, rec.UploadIndex, pk="upload_id", rk_const="u")
LEDGER = Layout(TABLE_CONSENT, rec.LedgerEntry, pk="user_key", rk="entry_id")
# RowKey = userKey (one row per account); rows written before that have RowKey "u" and a userKey column.
HR_INDEX = Layout(TABLE_HR_INDEX, rec.HrIndexEntry, pk="employee_id", rk="user_key")
ATTEMPTS = Layout(TABLE_ATTEMPTS, rec.PersonAttempt, pk="user_key", rk="attempt_id")
PENDING_ERASURES = Layout(TABLE_PENDING_ERASURES, rec.PendingErasure, pk_const="pending", rk="user_key")
SCHEDULED = Layout(TABLE_SCHEDULED, rec.ScheduledMessage, pk="user_key", rk="message_id")
GROUP = Layout(TABLE_STATE, rec.GroupState, pk_const="group", rk_const="active")
REENROLL_LOCK = Layout(TABLE_STATE, rec.ReenrollLock, pk_const="reenroll", rk_const="current")
COUNTERS = Layout(TABLE_COUNTERS, rec.Counter, pk_const="counters", rk="name")
PURGE_STATS = Layout(TABLE_STATE, rec.PurgeStats, pk_const="purge", rk_const="stats")
SUPERSEDED = Layout(TABLE_STATE, rec.SupersededGroup, pk_const="supersededgroup", rk="group_id")
HEARTBEATS = Layout(TABLE_STATE, rec.Heartbeat, pk_const="heartbeat", rk="name")
OVERRIDES = Layout(TABLE_OVERRIDES, rec.Override, pk="user_key", rk_const="override")
RECEIPTS = Layout(TABLE_RECEIPTS, rec.Receipt, pk="receipt_id", rk_const="receipt", key_columns=True)
RUNS = Layout(TABLE_RUNS, rec.ReenrollRun, pk="run_id", rk_const="run", key_columns=True)
ITEMS = Layout(TABLE_ITEMS, rec.WorkItem, pk="run_id", rk="user_key")
CONSENT_DUE = Layout(TABLE_CONSENT_BY_DAY, rec.ConsentDue, pk="day", rk="user_key",
                     renamed={"grant_entry_id": "grantRowKey"})
UPLOADS_DUE = Layout(TABLE_UPLOADS_BY_MINUTE, rec.UploadDue, pk="minute", rk="upload_id")
AUDIT = Layout(TABLE_AUDIT, rec.AuditEntry, pk="day", rk="entry_id")
OUTBOX = Layout(TABLE_OUTBOX, rec.OutboxEvent, pk="event_id", rk_const="event")
OUTBOX_PENDING = Layout(TABLE_OUTBOX, rec.OutboxPending, pk_const="pending", rk="event_id")


TABLE_QUOTAS = "quotas"
QUOTAS = Layout(TABLE_QUOTAS, rec.QuotaWindow, pk="subject", rk="window")

#: Every table the app uses (without the prefix): readiness checks each one.
ALL_TABLES: tuple[str, ...] = (
    TABLE_USERS, TABLE_UPLOADS, TABLE_UPLOAD_INDEX, TABLE_CONSENT, TABLE_STATE, TABLE_AUDIT, TABLE_OVERRIDES,
    TABLE_RECEIPTS, TABLE_HR_INDEX, TABLE_RUNS, TABLE_ITEMS, TABLE_CONSENT_BY_DAY, TABLE_UPLOADS_BY_MINUTE,
    TABLE_ATTEMPTS, TABLE_PENDING_ERASURES, TABLE_COUNTERS, TABLE_QUOTAS, TABLE_SCHEDULED,
)


@dataclass(frozen=True)
class StoredLedgerEntry:
    """One ledger entry as Table storage holds it: the typed entry, and the entity itself, every column
    as stored, which the hash chain covers (shared/domain/ledger_chain.py hashes what is stored, so an
    edit of any column, one the code does not know included, breaks the chain)."""

    entry: rec.LedgerEntry
    stored: Mapping[str, Any]


class LedgerRows:
    """The consent ledger read for its hash chain: each user's entries in ``entry_id`` order."""

    def __init__(self, store: RecordStorePort) -> None:
        self._store = store

    def _stored(self, entity: Mapping[str, Any]) -> StoredLedgerEntry:
        return StoredLedgerEntry(LEDGER.from_entity(entity), entity)

    def of(self, user_key: str) -> list[StoredLedgerEntry]:
        rows = [self._stored(e) for e in self._store.partition(LEDGER.table, user_key)]
        return sorted(rows, key=lambda r: r.entry.entry_id)

    def changed(self, since: str | None) -> tuple[dict[str, list[StoredLedgerEntry]], str]:
        """The entries written since the watermark ``since`` (all, when None), by user in ``entry_id``
        order, and the next watermark: the daily anchor reads what changed, not the whole ledger."""
        entities, watermark = self._store.changed(LEDGER.table, since=since)
        return self._by_user(entities), watermark

    def by_user(self) -> dict[str, list[StoredLedgerEntry]]:
        """Every user's chain: one scan of the ledger table."""
        return self._by_user(self._store.range(LEDGER.table))

    def _by_user(self, entities: Iterable[Mapping[str, Any]]) -> dict[str, list[StoredLedgerEntry]]:
        out: dict[str, list[StoredLedgerEntry]] = {}
        for entity in entities:
            row = self._stored(entity)
            out.setdefault(row.entry.user_key, []).append(row)
        for rows in out.values():
            rows.sort(key=lambda r: r.entry.entry_id)
        return out


class Repositories:
    """Every repository, over one record store (built once in shared/bootstrap.py)."""

    def __init__(self, store: RecordStorePort) -> None:
        self.store = store
        self.users = Repository(store, USERS)
        self.uploads = Repository(store, UPLOADS)
        self.upload_index = Repository(store, UPLOAD_INDEX)
        self.ledger = Repository(store, LEDGER)
        self.ledger_rows = LedgerRows(store)
        self.hr_index = Repository(store, HR_INDEX)
        self.group = Repository(store, GROUP)
        self.reenroll_lock = Repository(store, REENROLL_LOCK)
        self.superseded = Repository(store, SUPERSEDED)
        self.heartbeats = Repository(store, HEARTBEATS)
        self.purge_stats = Repository(store, PURGE_STATS)
        self.counters = Repository(store, COUNTERS)
        self.overrides = Repository(store, OVERRIDES)
        self.receipts = Repository(store, RECEIPTS)
        self.runs = Repository(store, RUNS)
        self.items = Repository(store, ITEMS)
        self.consent_due = Repository(store, CONSENT_DUE)
        self.uploads_due = Repository(store, UPLOADS_DUE)
        self.outbox = Repository(store, OUTBOX)
        self.outbox_pending = Repository(store, OUTBOX_PENDING)
        self.audit = Repository(store, AUDIT)
        self.attempts = Repository(store, ATTEMPTS)
        self.pending_erasures = Repository(store, PENDING_ERASURES)
        self.scheduled = Repository(store, SCHEDULED)
        self.quotas = Repository(store, QUOTAS)
