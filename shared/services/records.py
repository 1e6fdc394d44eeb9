"""Optimistic updates of one record: re-read and re-apply until the conditional (ETag) write wins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.errors import RecordConflict, TransientFailure
from shared.ports import RecordStorePort


def update_record(records: RecordStorePort, table: str, pk: str, rk: str, change: Callable[[dict[str, Any]], Any],
                  *, attempts: int = 5) -> dict[str, Any] | None:
    """Applies ``change`` (which mutates the row in place) and writes it if nobody changed it meanwhile.

    Returns the written row, or None when the record does not exist (nothing to update: erased, for
    instance). ``change`` may raise to abort. TransientFailure when the record keeps changing.
    """
    for _ in range(attempts):
        found = records.get(table, pk, rk)
        if found is None:
            return None
        row, etag = found
        change(row)
        try:
            records.update(table, row, etag=etag)
        except RecordConflict:
            continue
        return row
    raise TransientFailure(f"{table} record kept changing")
