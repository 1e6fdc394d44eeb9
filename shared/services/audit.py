"""The audit log: an append-only table, partitioned by day so a period is a key-range query.

Audit rows name users by a keyed hash (HMAC-SHA256 under ``AUDIT_HASH_KEY``, a secret app setting), not
by their key: history need not be rewritten when a user is erased, and an admin who knows the user key
(and the app, which knows the secret) can still find the user's rows (``subject_of``). Rows older than
``AUDIT_RETENTION_DAYS`` are deleted by purge_timer.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime

from shared.adapters.repositories import Repositories
from shared.domain.enrollment import iso
from shared.domain.erasure import day_key
from shared.domain.records import AuditEntry

log = logging.getLogger("shared.audit")

HASH_PREFIX = "h:"


def keyed_name(user_key: str, key: str) -> str:
    """How audit rows name ``user_key``: ``h:`` and the first 32 hex digits of HMAC-SHA256(key, userKey)."""
    return HASH_PREFIX + hmac.new(key.encode(), user_key.encode(), hashlib.sha256).hexdigest()[:32]


#: Actors that are the app itself, not people: written as they are.
SYSTEM_ACTORS = frozenset({"system", "hr", "purge", "admin"})


class AuditLog:
    def __init__(self, repos: Repositories, *, clock: Callable[[], datetime],
                 hash_key: str = "local-development-audit-key") -> None:
        self._entries = repos.audit
        self._clock = clock
        self._key = hash_key

    def subject_of(self, user_key: str) -> str:
        return keyed_name(user_key, self._key)

    def _name(self, who: str) -> str:
        if who in SYSTEM_ACTORS or who.startswith(("purge:", HASH_PREFIX)):
            return who
        return self.subject_of(who)

    def write(self, action: str, *, actor: str, subject: str | None = None, **details: object) -> str:
        """``actor`` and ``subject`` are user keys (stored as their keyed hash) or system names; ``details``
        must hold no user keys, biometrics or personIds."""
        return self.record(action, actor=actor, subject=subject, details=details)

    def record(self, action: str, *, actor: str, subject: str | None = None, details: Mapping[str, object]) -> str:
        now = self._clock()
        entry_id = uuid.uuid4().hex
        self._entries.insert(AuditEntry(day=day_key(now), entry_id=f"{iso(now)}_{entry_id}", action=action,
                                        actor=self._name(actor), subject=self._name(subject) if subject else None,
                                        at=iso(now), details=dict(details)))
        # The log line names the action and the entry, never the people involved.
        log.info("audit %s entry=%s", action, entry_id)
        return entry_id

    def entries(self, day: datetime) -> list[AuditEntry]:
        return self._entries.partition(day_key(day))

    def expire(self, *, before: datetime, dry_run: bool = False) -> int:
        """Deletes the rows of the days before ``before`` (a key-range query); returns how many."""
        rows = list(self._entries.range(pk_to=day_key(before), only=[]))
        if not dry_run:
            for row in rows:
                self._entries.delete(row.day, row.entry_id)
        return len(rows)
