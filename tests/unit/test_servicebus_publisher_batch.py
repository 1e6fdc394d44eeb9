"""ServiceBusPublisher sends a list of messages in as few requests as the batch size allows (the fan-out
sends its work items 25 at a time), each message once, scheduled times kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from azure.servicebus import ServiceBusMessageBatch
from azure.servicebus.exceptions import MessageNotFoundError

from shared.adapters.servicebus_publisher import ServiceBusPublisher
from shared.ports import OutgoingMessage


class FakeSender:
    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.sent: list[list[Any]] = []

    def __enter__(self) -> FakeSender:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def create_message_batch(self) -> ServiceBusMessageBatch:
        return ServiceBusMessageBatch(max_size_in_bytes=self.max_size)

    def send_messages(self, batch: ServiceBusMessageBatch) -> None:
        self.sent.append(list(batch._messages))

    # What the SDK does for scheduled messages: a sequence number each, which cancels it while it waits.
    scheduled: dict[int, Any]

    def schedule_messages(self, message: Any, schedule_time_utc: datetime) -> list[int]:
        self.scheduled = getattr(self, "scheduled", {})
        number = 100 + len(self.scheduled)
        self.scheduled[number] = (message, schedule_time_utc)
        return [number]

    def cancel_scheduled_messages(self, sequence_numbers: int) -> None:
        if sequence_numbers not in getattr(self, "scheduled", {}):
            raise MessageNotFoundError(message="not found")
        del self.scheduled[sequence_numbers]


class FakeClient:
    def __init__(self, sender: FakeSender) -> None:
        self.sender = sender

    def get_queue_sender(self, queue: str) -> FakeSender:
        return self.sender


def test_messages_go_in_batches_each_once_with_their_schedule() -> None:
    sender = FakeSender(max_size=4096)
    publisher = ServiceBusPublisher(fully_qualified_namespace="ns.servicebus.windows.net", credential=object())
    publisher._client = FakeClient(sender)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    messages = [OutgoingMessage(body=b'{"runId":"r","userKey":"u%03d"}' % i, message_id=f"m{i}",
                                scheduled_enqueue_time=at + timedelta(seconds=i)) for i in range(60)]
    publisher.send("reenroll-work", messages)
    assert 1 < len(sender.sent) < 60  # batched, and split when a batch is full
    ids = [str(m.message_id) for batch in sender.sent for m in batch]
    assert ids == [f"m{i}" for i in range(60)]
    first = sender.sent[0][0]
    assert first.scheduled_enqueue_time_utc == at


def test_a_scheduled_message_is_withdrawn_by_the_sequence_number_service_bus_returned() -> None:
    sender = FakeSender(max_size=4096)
    publisher = ServiceBusPublisher(fully_qualified_namespace="ns.servicebus.windows.net", credential=object())
    publisher._client = FakeClient(sender)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    token = publisher.schedule("revocations", OutgoingMessage(body=b"{}", message_id="r1", scheduled_enqueue_time=at))
    (message, when), = sender.scheduled.values()
    assert token == "100" and str(message.message_id) == "r1" and when == at
    assert publisher.cancel("revocations", token) is True and sender.scheduled == {}
    assert publisher.cancel("revocations", token) is False  # gone: Service Bus answers MessageNotFound
    assert publisher.cancel("revocations", "not a number") is False
