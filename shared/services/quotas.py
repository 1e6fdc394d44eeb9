"""Per-user limits, held in Table storage so they hold across instances (docs/security.md).

Three limits, each a setting: API requests per minute, upload sessions per UTC day, and upload
slots held open at once. Counters are fixed windows (``m:<minute>``, ``d:<day>``) under the user's
pseudonym, incremented with an ETag-conditional write, so two instances never both take the last
unit. When a window is exceeded the caller gets ``QuotaExceeded`` with the seconds until the window
ends (the edge answers 429 with Retry-After). A user's expired windows are deleted when a new one
opens, so a user never has more than one row per kind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

from shared.adapters.repositories import Repositories
from shared.domain import enrollment as dom
from shared.domain.records import QuotaWindow
from shared.errors import QuotaExceeded, RecordExists, TransientFailure
from shared.settings import Settings

#: Upload states that still hold a slot (handed out, not yet processed).
_OPEN_STATES = frozenset({dom.AWAITING, dom.PROCESSING})


def subject_of(user_key: str) -> str:
    """The pseudonym quota rows are keyed by (a user key never appears in this table)."""
    return hashlib.sha256(b"quota:" + user_key.encode()).hexdigest()[:32]


class QuotaService:
    def __init__(self, *, repos: Repositories, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._repos = repos
        self._settings = settings
        self._clock = clock

    # --- the limits ---------------------------------------------------------------------------------
    def charge_request(self, user_key: str) -> None:
        """One API request; QuotaExceeded beyond QUOTA_REQUESTS_PER_MINUTE."""
        limit = self._settings.quota_requests_per_minute
        if limit <= 0:
            return
        now = self._clock()
        start = now.replace(second=0, microsecond=0)
        count = self._increment(user_key, "m:" + start.strftime("%Y%m%d%H%M"))
        if count > limit:
            retry = (start + timedelta(minutes=1) - now).total_seconds()
            raise QuotaExceeded(f"Too many requests: at most {limit} a minute. Try again in {int(retry) + 1} s.",
                                retry_after=int(retry) + 1)

    def charge_upload_session(self, user_key: str, *, open_slots: int, requested: int) -> None:
        """One upload session of ``requested`` slots, with ``open_slots`` already held."""
        limit_open = self._settings.quota_open_upload_slots
        if limit_open > 0 and open_slots + requested > limit_open:
            raise QuotaExceeded(
                f"You already have {open_slots} photo upload(s) waiting. Finish or wait for them (at most "
                f"{limit_open} at a time), then try again.", retry_after=60, code="TooManyOpenUploads")
        limit_day = self._settings.quota_upload_sessions_per_day
        if limit_day <= 0:
            return
        now = self._clock()
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if self._increment(user_key, "d:" + day.strftime("%Y%m%d")) > limit_day:
            retry = (day + timedelta(days=1) - now).total_seconds()
            raise QuotaExceeded(f"At most {limit_day} upload sessions a day. Try again tomorrow (UTC).",
                                retry_after=int(retry) + 1, code="TooManyUploadSessions")

    def open_slots(self, user_key: str) -> int:
        return sum(1 for u in self._repos.uploads.partition(user_key) if u.status in _OPEN_STATES)

    # --- counters -------------------------------------------------------------------------------------
    def _increment(self, user_key: str, window: str) -> int:
        subject = subject_of(user_key)
        for _ in range(5):
            found = self._repos.quotas.get(subject, window)
            if found is None:
                try:
                    self._repos.quotas.insert(QuotaWindow(subject=subject, window=window, count=1))
                except RecordExists:
                    continue  # another instance opened the window first: count on its row
                self._drop_expired(subject, keep=window)
                return 1

            def bump(w: QuotaWindow) -> None:
                w.count += 1

            updated = self._repos.quotas.mutate(bump, subject, window, attempts=10)
            if updated is not None:
                return updated.count
        raise TransientFailure("quota counter contended")

    def _drop_expired(self, subject: str, *, keep: str) -> None:
        kind = keep.split(":", 1)[0]
        for old in self._repos.quotas.partition(subject):
            if old.window.startswith(kind + ":") and old.window < keep:
                self._repos.quotas.delete(subject, old.window)
