"""Events for the systems that open doors, published from an outbox.

A change that a door system must learn of (an enrollment, an erasure, a re-enrollment request, a
group switch) writes its event in the same step as the change, before that step's completion
marker (the accepted upload, the receipt, the switched run). The step is retried until the marker
is written, so an event whose change happened always reaches the outbox: no change is lost.

Event ids are deterministic (SHA-256 of the kind and what identifies the change), and the outbox
row is insert-only, so a retried step, a redelivered message or a second photo of the same
enrollment finds the row and adds nothing: a change is announced once. The sender
(functions/events, a timer) publishes the pending rows and marks them sent; if it dies between
the publish and the mark, the next run publishes the same events again with the same ids, which
CloudEvents consumers de-duplicate by ``source`` + ``id`` (the spec's uniqueness rule).

Events carry the user key, never a Face personId (docs/door-events.schema.json).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime

from shared.adapters.repositories import Repositories
from shared.domain.enrollment import iso, parse_iso
from shared.domain.records import OutboxEvent, OutboxPending
from shared.errors import RecordExists
from shared.ports import EventPublisherPort, OutgoingEvent

log = logging.getLogger("shared.events")

PREFIX = "faceenrollment"
USER_ENROLLED = f"{PREFIX}.user.enrolled"
USER_ERASED = f"{PREFIX}.user.erased"
USER_REENROLL_REQUIRED = f"{PREFIX}.user.reenrollRequired"
GROUP_SWITCHED = f"{PREFIX}.group.switched"
TYPES = (USER_ENROLLED, USER_ERASED, USER_REENROLL_REQUIRED, GROUP_SWITCHED)
#: At most this many events per Event Grid publish call (its documented batch limit is 1 MB, our events are small).
BATCH = 50


def event_id(kind: str, *parts: str) -> str:
    return hashlib.sha256(":".join((kind, *parts)).encode()).hexdigest()[:32]


class EventOutbox:
    def __init__(self, repos: Repositories, publisher: EventPublisherPort, *, clock: Callable[[], datetime]) -> None:
        self._repos = repos
        self._publisher = publisher
        self._clock = clock

    # --- writing (in the step that makes the change) -------------------------------------------------
    def emit(self, type_: str, *, key: tuple[str, ...], subject: str, data: dict[str, object]) -> str:
        """Queues one event; idempotent for the same ``type_`` and ``key``. Returns its id."""
        eid = event_id(type_, *key)
        now = iso(self._clock())
        try:
            self._repos.outbox.insert(OutboxEvent(event_id=eid, type=type_, subject=subject, time=now, data=data))
        except RecordExists:
            found = self._repos.outbox.get(eid)
            if found is not None and found.status == "sent":
                return eid  # announced already: a retried step must not announce it again
            now = found.time if found is not None else now
        # The work list row after the event row: a crash in between is retried by the step itself.
        self._repos.outbox_pending.upsert(OutboxPending(event_id=eid, time=now))
        return eid

    def user_enrolled(self, user_key: str, *, attempt: str) -> str:
        return self.emit(USER_ENROLLED, key=(user_key, attempt), subject=f"users/{user_key}",
                         data={"userKey": user_key})

    def user_replaced(self, user_key: str, *, session_id: str) -> str:
        """A photo replacement completed: the user is enrolled with the new faces only (the old ones are
        deleted, the group is trained with the new ones). The same type as an enrollment, as a door system
        sees the same thing (this user is recognised, from now on by their new photos), with its own id per
        replacement session, so it is announced once and is not mistaken for the first enrollment's event."""
        return self.emit(USER_ENROLLED, key=(user_key, "replacement", session_id), subject=f"users/{user_key}",
                         data={"userKey": user_key})

    def user_erased(self, user_key: str, *, receipt_id: str, reason: str) -> str:
        return self.emit(USER_ERASED, key=(receipt_id,), subject=f"users/{user_key}",
                         data={"userKey": user_key, "receiptId": receipt_id, "reason": reason[:200]})

    def user_reenroll_required(self, user_key: str, *, run_id: str) -> str:
        return self.emit(USER_REENROLL_REQUIRED, key=(user_key, run_id), subject=f"users/{user_key}",
                         data={"userKey": user_key, "runId": run_id})

    def group_switched(self, *, run_id: str, group_id: str, recognition_model: str) -> str:
        return self.emit(GROUP_SWITCHED, key=(run_id, group_id), subject=f"groups/{group_id}",
                         data={"groupId": group_id, "recognitionModel": recognition_model, "runId": run_id})

    # --- sending (functions/events) ----------------------------------------------------------------------
    def send(self, *, limit: int = 500) -> dict[str, int]:
        """Publishes pending events, oldest first, and marks them sent. Raises if the publish fails
        (the timer's next run retries; nothing is marked)."""
        if getattr(self._publisher, "holds", False):
            return {"pending": 0, "sent": 0, "alreadySent": 0, "held": 1}  # no topic configured: keep them
        pending = sorted(self._repos.outbox_pending.partition(), key=lambda p: (p.time, p.event_id))[:limit]
        report = {"pending": len(pending), "sent": 0, "alreadySent": 0}
        batch: list[OutboxEvent] = []
        for row in pending:
            event = self._repos.outbox.get(row.event_id)
            if event is None or event.status == "sent":
                self._repos.outbox_pending.delete(rk=row.event_id)
                report["alreadySent"] += 1
                continue
            batch.append(event)
        for start in range(0, len(batch), BATCH):
            chunk = batch[start:start + BATCH]
            self._publisher.publish([OutgoingEvent(id=e.event_id, type=e.type, subject=e.subject,
                                                   time=parse_iso(e.time) or self._clock(), data=e.data)
                                     for e in chunk])
            mark = _marker(iso(self._clock()))
            for e in chunk:
                self._repos.outbox.mutate(mark, e.event_id)
                self._repos.outbox_pending.delete(rk=e.event_id)
                report["sent"] += 1
        if report["sent"]:
            log.info("door events sent: %s", report["sent"])
        return report


def _marker(sent_at: str) -> Callable[[OutboxEvent], None]:
    def mark(rec: OutboxEvent) -> None:
        rec.status, rec.sent_at = "sent", sent_at

    return mark
