"""Service Bus stand-in on Azurite queues: the receiving side (peek-lock) and an operator CLI.

The sending side and the wire format are in ``shared.adapters.storage_queue_bus`` because the app
sends through it too. See that module for how Service Bus semantics map onto storage queues.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.adapters.storage_queue_bus import (
    Envelope,
    StorageQueueBus,
    deadletter_name,
    queue_storage_name,
    subscription_storage_name,
)
from shared.ports import OutgoingMessage

TOPOLOGY_FILE = Path(__file__).with_name("topology.json")


@dataclass
class Entity:
    """A queue or a topic subscription, with the properties infra/ gives it in Azure."""

    queue: str | None = None
    topic: str | None = None
    subscription: str | None = None
    max_delivery_count: int = 10
    lock_seconds: float = 30.0

    @property
    def storage_name(self) -> str:
        if self.queue:
            return queue_storage_name(self.queue)
        assert self.topic and self.subscription
        return subscription_storage_name(self.topic, self.subscription)

    @property
    def label(self) -> str:
        return self.queue or f"{self.topic}/subscriptions/{self.subscription}"


def load_topology(path: Path = TOPOLOGY_FILE) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


@dataclass
class LockedMessage:
    """A message under peek-lock. ``delivery_count`` counts this delivery (1 on the first)."""

    entity: Entity
    envelope: Envelope
    storage_id: str
    pop_receipt: str
    delivery_count: int
    lock_token: str
    locked_until: float = 0.0  # time.monotonic(); settling later than this is a lost lock, as in Service Bus


class LockLost(Exception):
    """The lock expired (or the message was settled elsewhere) before the settlement."""


class StandInReceiver:
    def __init__(self, bus: StorageQueueBus) -> None:
        self.bus = bus

    def receive(self, entity: Entity, *, max_messages: int = 1) -> list[LockedMessage]:
        client = self.bus.queue_client(entity.storage_name)
        out: list[LockedMessage] = []
        for raw in client.receive_messages(messages_per_page=max_messages, max_messages=max_messages,
                                           visibility_timeout=max(1, int(round(entity.lock_seconds)))):
            try:
                envelope = Envelope.from_text(raw.content)
            except (ValueError, KeyError, TypeError) as exc:
                # Not our envelope (someone wrote to the queue by hand): keep it, with the reason.
                envelope = Envelope(message_id=str(raw.id), body=str(raw.content).encode())
                locked = LockedMessage(entity, envelope, raw.id, raw.pop_receipt, int(raw.dequeue_count), raw.pop_receipt)
                self.dead_letter(locked, reason="MalformedEnvelope", description=str(exc))
                continue
            count = int(raw.dequeue_count) + envelope.previous_delivery_count
            locked = LockedMessage(entity, envelope, raw.id, raw.pop_receipt, count, raw.pop_receipt,
                                   time.monotonic() + max(1, int(round(entity.lock_seconds))))
            if count > entity.max_delivery_count:
                self.dead_letter(locked, reason="MaxDeliveryCountExceeded",
                                 description=f"Message could not be consumed after {entity.max_delivery_count} delivery attempts.")
                continue
            out.append(locked)
        return out

    def _settle_error(self, exc: Exception) -> LockLost:
        return LockLost(f"lock lost: {exc.__class__.__name__}")

    def _check_lock(self, message: LockedMessage) -> None:
        # Storage would still accept the pop receipt until someone else receives the message;
        # Service Bus refuses a settlement once the lock has expired, and so does the stand-in.
        if message.locked_until and time.monotonic() > message.locked_until:
            raise LockLost("lock lost: the lock expired before the settlement")

    def complete(self, message: LockedMessage) -> None:
        from azure.core.exceptions import HttpResponseError

        self._check_lock(message)
        try:
            self.bus.queue_client(message.entity.storage_name).delete_message(message.storage_id, message.pop_receipt)
        except HttpResponseError as exc:
            raise self._settle_error(exc) from exc

    def abandon(self, message: LockedMessage) -> None:
        from azure.core.exceptions import HttpResponseError

        self._check_lock(message)
        try:
            self.bus.queue_client(message.entity.storage_name).update_message(
                message.storage_id, message.pop_receipt, visibility_timeout=0)
        except HttpResponseError as exc:
            raise self._settle_error(exc) from exc

    def renew(self, message: LockedMessage) -> None:
        from azure.core.exceptions import HttpResponseError

        self._check_lock(message)
        try:
            updated = self.bus.queue_client(message.entity.storage_name).update_message(
                message.storage_id, message.pop_receipt, visibility_timeout=max(1, int(round(message.entity.lock_seconds))))
        except HttpResponseError as exc:
            raise self._settle_error(exc) from exc
        message.pop_receipt = updated.pop_receipt
        message.locked_until = time.monotonic() + max(1, int(round(message.entity.lock_seconds)))

    def dead_letter(self, message: LockedMessage, *, reason: str, description: str = "") -> None:
        env = message.envelope
        env.dead_letter_reason = reason
        env.dead_letter_error_description = description[:1024]
        env.dead_letter_source = message.entity.label
        env.previous_delivery_count = message.delivery_count
        dlq = self.bus.queue_client(deadletter_name(message.entity.storage_name))
        # Copy first, then delete: a crash in between leaves a duplicate, never a loss.
        dlq.send_message(env.to_text())
        message.locked_until = 0.0  # the copy exists: removing the original must not be refused
        self.complete(message)

    def peek(self, entity: Entity, *, deadletter: bool = False, max_messages: int = 32) -> list[Envelope]:
        name = deadletter_name(entity.storage_name) if deadletter else entity.storage_name
        return [Envelope.from_text(m.content) for m in self.bus.queue_client(name).peek_messages(max_messages=max_messages)]

    def count(self, entity: Entity, *, deadletter: bool = False) -> int:
        name = deadletter_name(entity.storage_name) if deadletter else entity.storage_name
        props = self.bus.queue_client(name).get_queue_properties()
        return int(props.approximate_message_count or 0)


def apply_topology(bus: StorageQueueBus, topology: dict[str, Any] | None = None) -> list[Entity]:
    """Creates the queues and registers the topic subscriptions that infra/ creates in Azure."""
    topology = topology or load_topology()
    entities: list[Entity] = []
    for q in topology.get("queues", []):
        e = Entity(queue=q["name"], max_delivery_count=int(q.get("maxDeliveryCount", 10)),
                   lock_seconds=float(q.get("lockSeconds", 30)))
        bus.queue_client(e.storage_name)
        entities.append(e)
    for t in topology.get("topics", []):
        for s in t.get("subscriptions", []):
            bus.register_subscription(t["name"], s["name"])
            entities.append(Entity(topic=t["name"], subscription=s["name"],
                                   max_delivery_count=int(s.get("maxDeliveryCount", 10)),
                                   lock_seconds=float(s.get("lockSeconds", 30))))
    return entities


__all__ = [
    "Entity", "LockLost", "LockedMessage", "OutgoingMessage", "StandInReceiver", "StorageQueueBus",
    "apply_topology", "load_topology",
]
