"""The local Service Bus stand-in, on Azure Storage queues (Azurite).

This module holds the wire format and the sending side, because production code sends through
``MessagePublisherPort`` and the stand-in publisher must be chosen by settings alone (it lives
in shared/, which is deployed, but is only selected with ``MESSAGING_TRANSPORT=storage-queues``).
The receiving side (peek-lock, delivery count, dead-lettering) lives in ``local/bus``.

Mapping onto Service Bus semantics:
- a queue ``q`` is the storage queue ``sbq-<q>``; its dead-letter queue is ``sbq-<q>-dlq``;
- a topic ``t`` with subscription ``s`` is the storage queue ``sbt-<t>-s-<s>`` (plus ``-dlq``);
  a send to a topic copies the message to every registered subscription (table ``busstandinsubs``);
- duplicate detection keys on MessageId within a window, in table ``busstandindedup``;
- a scheduled message is sent with an initial visibility timeout;
- the envelope (JSON text) keeps message id, content type, subject, application properties,
  enqueued time, sequence number and, in dead-letter queues, the DeadLetterReason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.http_env import sdk_client_options
from shared.ports import OutgoingMessage

SUBSCRIPTIONS_TABLE = "busstandinsubs"
DEDUP_TABLE = "busstandindedup"
DEFAULT_DEDUP_WINDOW = timedelta(minutes=10)
MAX_VISIBILITY = timedelta(days=7) - timedelta(seconds=1)


def _safe(name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in name.lower())
    while "--" in cleaned:
        cleaned = cleaned.replace("--", "-")
    return cleaned.strip("-")


def _bounded(name: str) -> str:
    # Storage queue names are 3-63 characters; long entity names keep a hash suffix to stay unique.
    if len(name) <= 59:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[:50].rstrip('-')}-{digest}"


def queue_storage_name(queue: str) -> str:
    return _bounded(f"sbq-{_safe(queue)}")


def subscription_storage_name(topic: str, subscription: str) -> str:
    return _bounded(f"sbt-{_safe(topic)}-s-{_safe(subscription)}")


def deadletter_name(storage_name: str) -> str:
    return f"{storage_name}-dlq"


@dataclass
class Envelope:
    """One message as stored in a stand-in queue."""

    message_id: str
    body: bytes
    content_type: str | None = "application/json"
    subject: str | None = None
    application_properties: dict[str, Any] = field(default_factory=dict)
    enqueued_time_utc: str = ""
    sequence_number: int = 0
    scheduled_enqueue_time_utc: str | None = None
    dead_letter_reason: str | None = None
    dead_letter_error_description: str | None = None
    dead_letter_source: str | None = None
    previous_delivery_count: int = 0

    def to_text(self) -> str:
        doc = {
            "v": 1,
            "messageId": self.message_id,
            "body": base64.b64encode(self.body).decode("ascii"),
            "contentType": self.content_type,
            "subject": self.subject,
            "applicationProperties": self.application_properties,
            "enqueuedTimeUtc": self.enqueued_time_utc,
            "sequenceNumber": self.sequence_number,
            "scheduledEnqueueTimeUtc": self.scheduled_enqueue_time_utc,
            "deadLetterReason": self.dead_letter_reason,
            "deadLetterErrorDescription": self.dead_letter_error_description,
            "deadLetterSource": self.dead_letter_source,
            "previousDeliveryCount": self.previous_delivery_count,
        }
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str) -> Envelope:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("v") != 1:
            raise ValueError("not a Service Bus stand-in envelope")
        return cls(
            message_id=str(doc["messageId"]),
            body=base64.b64decode(doc["body"]),
            content_type=doc.get("contentType"),
            subject=doc.get("subject"),
            application_properties=dict(doc.get("applicationProperties") or {}),
            enqueued_time_utc=doc.get("enqueuedTimeUtc") or "",
            sequence_number=int(doc.get("sequenceNumber") or 0),
            scheduled_enqueue_time_utc=doc.get("scheduledEnqueueTimeUtc"),
            dead_letter_reason=doc.get("deadLetterReason"),
            dead_letter_error_description=doc.get("deadLetterErrorDescription"),
            dead_letter_source=doc.get("deadLetterSource"),
            previous_delivery_count=int(doc.get("previousDeliveryCount") or 0),
        )


_seq_lock = threading.Lock()
_last_seq = 0


def next_sequence_number() -> int:
    """Monotonic within a process and roughly ordered across processes (microsecond clock)."""
    global _last_seq
    with _seq_lock:
        _last_seq = max(_last_seq + 1, time.time_ns() // 1000)
        return _last_seq


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


class StorageQueueBus:
    """Sends to stand-in queues and topics. Implements ``MessagePublisherPort``.

    ``destination`` is a queue name or ``topic:<name>`` is not needed: topics are known from the
    subscription registry, so ``send("hr-events", ...)`` fans out when ``hr-events`` has
    subscriptions and goes to the queue of that name otherwise.
    """

    def __init__(self, *, connection_string: str, dedup_window: timedelta = DEFAULT_DEDUP_WINDOW) -> None:
        self._connection_string = connection_string
        self._dedup_window = dedup_window
        self._queue_service: Any = None
        self._table_service: Any = None
        self._created: set[str] = set()

    # --- lazily built SDK clients (cold start stays lean) ---
    def _queues(self) -> Any:
        if self._queue_service is None:
            from azure.storage.queue import QueueServiceClient

            self._queue_service = QueueServiceClient.from_connection_string(self._connection_string, **sdk_client_options())
        return self._queue_service

    def _tables(self) -> Any:
        if self._table_service is None:
            from azure.data.tables import TableServiceClient

            self._table_service = TableServiceClient.from_connection_string(self._connection_string, **sdk_client_options())
        return self._table_service

    def queue_client(self, storage_name: str) -> Any:
        client = self._queues().get_queue_client(storage_name)
        if storage_name not in self._created:
            from azure.core.exceptions import ResourceExistsError

            try:
                client.create_queue()
            except ResourceExistsError:
                pass
            self._created.add(storage_name)
        return client

    def _table(self, name: str) -> Any:
        if name not in self._created:
            self._tables().create_table_if_not_exists(name)
            self._created.add(name)
        return self._tables().get_table_client(name)

    # --- topology ---
    def register_subscription(self, topic: str, subscription: str) -> None:
        self._table(SUBSCRIPTIONS_TABLE).upsert_entity(
            {"PartitionKey": _safe(topic), "RowKey": _safe(subscription), "topic": topic, "subscription": subscription}
        )
        self.queue_client(subscription_storage_name(topic, subscription))

    def subscriptions(self, topic: str) -> list[str]:
        rows = self._table(SUBSCRIPTIONS_TABLE).query_entities("PartitionKey eq @pk", parameters={"pk": _safe(topic)})
        return sorted(str(r["subscription"]) for r in rows)

    def targets(self, destination: str) -> list[str]:
        subs = self.subscriptions(destination)
        if subs:
            return [subscription_storage_name(destination, s) for s in subs]
        return [queue_storage_name(destination)]

    # --- duplicate detection ---
    def _is_duplicate(self, destination: str, message_id: str, now: datetime) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        table = self._table(DEDUP_TABLE)
        key = hashlib.sha256(message_id.encode()).hexdigest()
        entity = {"PartitionKey": _safe(destination), "RowKey": key, "seenAt": _iso(now)}
        try:
            table.create_entity(entity)
            return False
        except ResourceExistsError:
            existing = table.get_entity(_safe(destination), key)
            seen = datetime.fromisoformat(str(existing["seenAt"]).replace("Z", "+00:00"))
            if now - seen < self._dedup_window:
                return True
            try:
                table.update_entity(entity, etag=existing.metadata["etag"], match_condition=MatchConditions.IfNotModified)
            except ResourceModifiedError:
                return True
            return False

    # --- MessagePublisherPort ---
    def send(self, destination: str, messages: Sequence[OutgoingMessage]) -> None:
        targets = self.targets(destination)

        def one(message: OutgoingMessage) -> None:
            now = datetime.now(UTC)
            if not self._is_duplicate(destination, message.message_id, now):
                self.put(targets, message, now=now)

        if len(messages) <= 1:
            for message in messages:
                one(message)
            return
        # Service Bus sends a batch in one request; the stand-in needs two per message (duplicate
        # detection, then the queue), so a batch goes out on a few threads: one after the other, the
        # re-enrollment fan-out released work no faster than the workers consumed it on a busy machine.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(messages))) as pool:
            list(pool.map(one, messages))

    def schedule(self, destination: str, message: OutgoingMessage) -> str:
        """The token names each queue message (id and pop receipt): a message not yet received can be
        deleted with them. One the receiver has taken (its time came) has a new pop receipt: cancel then
        finds nothing, as Service Bus does for a message already enqueued. A message hidden for longer
        than a queue allows (7 days) is put again when it surfaces early, under a new id: cancel then
        finds nothing either, and the message is delivered (its handler must be a no-op by then)."""
        now = datetime.now(UTC)
        if self._is_duplicate(destination, message.message_id, now):
            return ""  # dropped, as Service Bus drops a duplicate: nothing to withdraw
        placed = self.put(self.targets(destination), message, now=now)
        return json.dumps([[name, message_id, receipt] for name, message_id, receipt in placed])

    def cancel(self, destination: str, token: str) -> bool:
        from azure.core.exceptions import HttpResponseError

        try:
            placed = [(str(n), str(i), str(r)) for n, i, r in json.loads(token)]
        except (ValueError, TypeError):
            return False
        cancelled = False
        for name, message_id, receipt in placed:
            try:
                self.queue_client(name).delete_message(message_id, receipt)
                cancelled = True
            except HttpResponseError:  # gone, or received (its pop receipt changed)
                continue
        return cancelled

    def put(self, storage_names: Sequence[str], message: OutgoingMessage, *,
            now: datetime | None = None) -> list[tuple[str, str, str]]:
        """Puts the message on each queue; returns (queue, message id, pop receipt) of each."""
        now = now or datetime.now(UTC)
        delay = 0
        scheduled = message.scheduled_enqueue_time
        if scheduled is not None:
            # Storage visibility has whole seconds: rounded up, the message surfaces up to 1 s late and
            # never early (Service Bus, too, delivers a scheduled message at or after its time). Rounded
            # down, a receiver had to hold it, and a worker thread sat idle for up to a second.
            delay = math.ceil(max(0.0, min((scheduled - now).total_seconds(), MAX_VISIBILITY.total_seconds())))
        envelope = Envelope(
            message_id=message.message_id,
            body=message.body,
            content_type=message.content_type,
            subject=message.subject,
            application_properties=dict(message.application_properties),
            enqueued_time_utc=_iso(scheduled if scheduled and scheduled > now else now),
            sequence_number=next_sequence_number(),
            scheduled_enqueue_time_utc=_iso(scheduled) if scheduled else None,
        )
        text = envelope.to_text()
        placed = []
        for name in storage_names:
            sent = self.queue_client(name).send_message(text, visibility_timeout=delay or None)
            placed.append((name, str(sent.id), str(sent.pop_receipt)))
        return placed
