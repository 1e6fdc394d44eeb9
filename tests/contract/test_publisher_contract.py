"""MessagePublisherPort's scheduled messages, on the fake and on the stand-in bus (Azurite queues): a
message withdrawn before its time is never delivered, and withdrawing what is gone finds nothing.
(Service Bus itself is not reachable here; tests/unit/test_servicebus_publisher_batch.py pins the SDK
calls its adapter makes.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.storage_queue_bus import Envelope, StorageQueueBus
from shared.ports import MessagePublisherPort, OutgoingMessage
from tests.fakes import FakePublisher

pytestmark = pytest.mark.contract

AHEAD = 1.0  # seconds a message is scheduled ahead (the stand-in's visibility has whole seconds)


@dataclass
class PublisherUnderTest:
    publisher: MessagePublisherPort
    destination: str
    #: Waits ``seconds`` (the fake's clock just moves) and takes what was delivered: message ids.
    delivered_after: Callable[[float], list[str]]


@pytest.fixture(params=["fake", "azurite"])
def bus(request: pytest.FixtureRequest) -> PublisherUnderTest:
    destination = "q" + uuid.uuid4().hex[:10]
    if request.param == "fake":
        fake = FakePublisher()
        start = datetime.now(UTC)

        def taken_fake(seconds: float) -> list[str]:
            return [s.message.message_id for s in fake.due(start + timedelta(seconds=seconds), destination)]

        return PublisherUnderTest(fake, destination, taken_fake)
    azurite = request.getfixturevalue("azurite")
    stand_in = StorageQueueBus(connection_string=azurite.connection_string)

    def taken(seconds: float) -> list[str]:
        time.sleep(seconds)
        client = stand_in.queue_client(stand_in.targets(destination)[0])
        out = []
        for raw in client.receive_messages(max_messages=32, visibility_timeout=30):
            out.append(Envelope.from_text(raw.content).message_id)
            client.delete_message(raw.id, raw.pop_receipt)
        return out

    return PublisherUnderTest(stand_in, destination, taken)


def _scheduled(message_id: str) -> OutgoingMessage:
    return OutgoingMessage(body=b'{"userKey": "u"}', message_id=message_id,
                           scheduled_enqueue_time=datetime.now(UTC) + timedelta(seconds=AHEAD))


def test_a_withdrawn_scheduled_message_is_never_delivered(bus: PublisherUnderTest) -> None:
    kept = bus.publisher.schedule(bus.destination, _scheduled("kept"))
    withdrawn = bus.publisher.schedule(bus.destination, _scheduled("withdrawn"))
    assert kept and withdrawn and kept != withdrawn
    assert bus.publisher.cancel(bus.destination, withdrawn) is True
    assert bus.delivered_after(AHEAD + 1.5) == ["kept"]
    assert bus.delivered_after(0.0) == []


def test_withdrawing_what_is_gone_finds_nothing(bus: PublisherUnderTest) -> None:
    token = bus.publisher.schedule(bus.destination, _scheduled("once"))
    assert bus.publisher.cancel(bus.destination, token) is True
    assert bus.publisher.cancel(bus.destination, token) is False  # withdrawn already
    delivered = bus.publisher.schedule(bus.destination, _scheduled("delivered"))
    assert bus.delivered_after(AHEAD + 1.5) == ["delivered"]
    assert bus.publisher.cancel(bus.destination, delivered) is False  # delivered already
    assert bus.publisher.cancel(bus.destination, "no such token") is False
