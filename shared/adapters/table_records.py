"""Records in Azure Table storage (Azurite locally). Implements ``RecordStorePort``.

Entities are plain dicts with ``PartitionKey`` and ``RowKey``; the ETag travels beside them so
services can update optimistically. Complex values (lists, dicts) are stored as JSON strings in
properties whose names end with ``_json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.adapters.azure_storage import StorageClients
from shared.errors import RecordConflict, RecordExists
from shared.ports import ANY_ETAG, QUERY_OPS, Cond

Entity = dict[str, Any]
MAX_COMPARISONS = 15
#: ``changed`` reads again this far back before its watermark: Table storage stamps an entity with its
#: server's clock when the write commits, and the watermark is this host's clock when the last read began.
CHANGE_OVERLAP = timedelta(minutes=2)


def _to_storage(entity: Mapping[str, Any]) -> Entity:
    out: Entity = {}
    for k, v in entity.items():
        if k.endswith("_json"):
            out[k] = json.dumps(v, separators=(",", ":"))
        elif v is None:
            continue
        else:
            out[k] = v
    return out


def _from_storage(entity: Mapping[str, Any]) -> Entity:
    out: Entity = {}
    for k, v in entity.items():
        out[k] = json.loads(v) if k.endswith("_json") and isinstance(v, str) else v
    return out


class TableRecords:
    def __init__(self, clients: StorageClients, *, prefix: str) -> None:
        self._clients = clients
        self._prefix = prefix

    def _table(self, name: str) -> Any:
        return self._clients.table(f"{self._prefix}{name}")

    def get(self, table: str, pk: str, rk: str) -> tuple[Entity, str] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            e = self._table(table).get_entity(pk, rk)
        except ResourceNotFoundError:
            return None
        return _from_storage(e), str(e.metadata["etag"])

    def insert(self, table: str, entity: Mapping[str, Any]) -> str:
        from azure.core.exceptions import ResourceExistsError

        try:
            meta = self._table(table).create_entity(_to_storage(entity))
        except ResourceExistsError as exc:
            raise RecordExists(f"{table} record exists") from exc
        return str(meta.get("etag", ""))

    def insert_batch(self, table: str, entities: Sequence[Mapping[str, Any]]) -> list[str]:
        """Entity group transactions: one request per 100 entities of a partition, instead of one each."""
        from azure.data.tables import TableTransactionError

        etags: list[str] = []
        client = self._table(table)
        for start in range(0, len(entities), 100):
            chunk = [_to_storage(e) for e in entities[start:start + 100]]
            try:
                results = client.submit_transaction([("create", e) for e in chunk])
            except TableTransactionError as exc:
                if getattr(exc, "error_code", None) == "EntityAlreadyExists":
                    raise RecordExists(f"{table} record exists") from exc
                raise
            etags.extend(str(r.get("etag", "")) for r in results)
        return etags

    def update(self, table: str, entity: Mapping[str, Any], *, etag: str) -> str:
        """Replaces the entity if it still has ``etag`` (``"*"``: if it exists); RecordConflict otherwise."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            if etag == ANY_ETAG:
                # The SDK's "Unconditionally" update sends If-Match: *, which Table storage answers with
                # 404 for a missing entity: an update, never an insert.
                meta = self._table(table).update_entity(_to_storage(entity), mode=UpdateMode.REPLACE,
                                                        match_condition=MatchConditions.Unconditionally)
            else:
                meta = self._table(table).update_entity(_to_storage(entity), mode=UpdateMode.REPLACE, etag=etag,
                                                        match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise RecordConflict(f"{table} record changed concurrently") from exc
        return str(meta.get("etag", ""))

    def upsert(self, table: str, entity: Mapping[str, Any]) -> str:
        from azure.data.tables import UpdateMode

        meta = self._table(table).upsert_entity(_to_storage(entity), mode=UpdateMode.REPLACE)
        return str(meta.get("etag", ""))

    def delete(self, table: str, pk: str, rk: str, *, etag: str | None = None) -> None:
        """Idempotent: a missing entity is not an error. With ``etag``, only if unchanged (RecordConflict)."""
        if etag is None:
            self._table(table).delete_entity(pk, rk)
            return
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        try:
            self._table(table).delete_entity(pk, rk, etag=etag, match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError as exc:
            raise RecordConflict(f"{table} record changed concurrently") from exc

    def partition(self, table: str, pk: str) -> list[Entity]:
        rows = self._table(table).query_entities("PartitionKey eq @pk", parameters={"pk": pk})
        return [_from_storage(r) for r in rows]

    def partitions(self, table: str, pks: Sequence[str], *, select: list[str] | None = None) -> Iterator[Entity]:
        """One query per MAX_COMPARISONS partition keys, or-ed: Table storage allows at most 15 discrete
        comparisons in a filter (https://learn.microsoft.com/en-us/rest/api/storageservices/querying-tables-and-entities)."""
        keys = sorted(set(pks))
        client = self._table(table)
        for start in range(0, len(keys), MAX_COMPARISONS):
            chunk = keys[start:start + MAX_COMPARISONS]
            params = {f"p{i}": k for i, k in enumerate(chunk)}
            query = " or ".join(f"PartitionKey eq @p{i}" for i in range(len(chunk)))
            for r in client.query_entities(query, parameters=params, select=select):
                yield _from_storage(r)

    def range(self, table: str, *, pk_from: str | None = None, pk_to: str | None = None,
              rk_from: str | None = None, rk_to: str | None = None, pk: str | None = None,
              select: list[str] | None = None) -> Iterator[Entity]:
        """Key-range query: the cost follows the rows in range, not the table's size."""
        clauses, params = [], {}
        if pk is not None:
            clauses.append("PartitionKey eq @pk")
            params["pk"] = pk
        if pk_from is not None:
            clauses.append("PartitionKey ge @pkf")
            params["pkf"] = pk_from
        if pk_to is not None:
            clauses.append("PartitionKey lt @pkt")
            params["pkt"] = pk_to
        if rk_from is not None:
            clauses.append("RowKey ge @rkf")
            params["rkf"] = rk_from
        if rk_to is not None:
            clauses.append("RowKey lt @rkt")
            params["rkt"] = rk_to
        client = self._table(table)
        rows = (client.query_entities(" and ".join(clauses), parameters=params, select=select) if clauses
                else client.list_entities(select=select))
        for r in rows:
            yield _from_storage(r)

    def query(self, table: str, any_of: Sequence[Sequence[Cond]], *,
              select: list[str] | None = None) -> Iterator[Entity]:
        """One OData filter, the groups or-ed and each group's comparisons and-ed, values as parameters."""
        if sum(len(group) for group in any_of) > MAX_COMPARISONS:
            raise ValueError(f"a query may make at most {MAX_COMPARISONS} comparisons")
        groups: list[str] = []
        params: dict[str, str] = {}
        for group in any_of:
            parts = []
            for cond in group:
                if cond.op not in QUERY_OPS or not cond.column.replace("_", "").isalnum():
                    raise ValueError(f"not a query comparison: {cond.column} {cond.op}")
                name = f"q{len(params)}"
                params[name] = cond.value
                parts.append(f"{cond.column} {cond.op} @{name}")
            # The SDK substitutes a parameter only when a space follows it: "( a eq @q0 )", not "(a eq @q0)".
            groups.append("( " + " and ".join(parts) + " )")
        if not groups:
            return
        for r in self._table(table).query_entities(" or ".join(groups), parameters=params, select=select):
            yield _from_storage(r)

    def changed(self, table: str, *, since: str | None,
                select: list[str] | None = None) -> tuple[list[Entity], str]:
        """By the Timestamp Table storage keeps on every entity. The watermark is this host's clock when the
        read began: a write that commits later is read next time, and ``CHANGE_OVERLAP`` covers the
        difference between the two clocks and a write in flight as the read began."""
        began = datetime.now(timezone.utc)
        client = self._table(table)
        if since:
            start = datetime.fromisoformat(since) - CHANGE_OVERLAP
            rows = client.query_entities("Timestamp ge @since", parameters={"since": start}, select=select)
        else:
            rows = client.list_entities(select=select)
        return [_from_storage(r) for r in rows], began.isoformat()
