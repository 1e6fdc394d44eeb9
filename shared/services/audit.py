"""The audit log: an append-only table, partitioned by day so a period is a key-range query."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime

from shared.adapters.repositories import Repositories
from shared.domain.enrollment import iso
from shared.domain.erasure import day_key
from shared.domain.records import AuditEntry

log = logging.getLogger("shared.audit")


class AuditLog:
    def __init__(self, repos: Repositories, *, clock: Callable[[], datetime]) -> None:
        self._entries = repos.audit
        self._clock = clock

    def write(self, action: str, *, actor: str, subject: str | None = None, **details: object) -> str:
        """``actor`` and ``subject`` are user keys or system names; ``details`` must hold no biometrics or personIds."""
        return self.record(action, actor=actor, subject=subject, details=details)

    def record(self, action: str, *, actor: str, subject: str | None = None, details: Mapping[str, object]) -> str:
        now = self._clock()
        entry_id = uuid.uuid4().hex
        self._entries.insert(AuditEntry(day=day_key(now), entry_id=f"{iso(now)}_{entry_id}", action=action, actor=actor,
                                        subject=subject, at=iso(now), details=dict(details)))
        # The log line names the action and the entry, never the people involved.
        log.info("audit %s entry=%s", action, entry_id)
        return entry_id

    def entries(self, day: datetime) -> list[AuditEntry]:
        return self._entries.partition(day_key(day))
