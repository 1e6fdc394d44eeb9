"""The audit log: an append-only table, partitioned by day so a period is a key-range query."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.domain.enrollment import TABLE_AUDIT, iso
from shared.ports import RecordStorePort

log = logging.getLogger("shared.audit")


class AuditLog:
    def __init__(self, records: RecordStorePort, *, clock: Callable[[], datetime]) -> None:
        self._records = records
        self._clock = clock

    def write(self, action: str, *, actor: str, subject: str | None = None, **details: Any) -> str:
        """``actor`` and ``subject`` are user keys or system names; ``details`` must hold no biometrics or personIds."""
        now = self._clock()
        entry_id = uuid.uuid4().hex
        self._records.insert(TABLE_AUDIT, {
            "PartitionKey": now.strftime("%Y%m%d"), "RowKey": f"{iso(now)}_{entry_id}",
            "action": action, "actor": actor, "subject": subject, "at": iso(now), "details_json": details,
        })
        # The log line names the action and the entry, never the people involved.
        log.info("audit %s entry=%s", action, entry_id)
        return entry_id

    def entries(self, day: datetime) -> list[dict[str, Any]]:
        return self._records.partition(TABLE_AUDIT, day.strftime("%Y%m%d"))
