"""AnchorStorePort and EventPublisherPort: the fakes and the real adapters answer the same way.

Anchors: FakeAnchors and BlobAnchorStore (Azurite) are create-only (a second write of a name is
refused and changes nothing). Events: the HTTP publisher delivers what FakeEvents records, as
CloudEvents 1.0 that match docs/door-events.schema.json, and a refusing subscriber is an error
(so the outbox keeps the events)."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from local.events_sink import Recorder, make_server
from shared.adapters.azure_storage import StorageClients
from shared.adapters.blob_anchors import BlobAnchorStore
from shared.adapters.event_publishers import HttpCloudEventsPublisher
from shared.errors import TransientFailure
from shared.ports import AnchorStorePort, OutgoingEvent
from shared.settings import Settings
from tests.fakes import FakeAnchors, FakeEvents
from tests.fixtures.azurite import free_port


@pytest.fixture(params=["fake", "azurite"])
def anchors(request: pytest.FixtureRequest) -> AnchorStorePort:
    if request.param == "fake":
        return FakeAnchors()
    azurite = request.getfixturevalue("azurite")
    clients = StorageClients(Settings.from_env({"PhotoStorage": azurite.connection_string}))
    return BlobAnchorStore(clients, container="anc" + uuid.uuid4().hex[:8])


def test_anchors_are_write_once(anchors: AnchorStorePort) -> None:
    assert anchors.list_anchors() == []
    assert anchors.write_anchor("2026/03/02.json", b'{"root": "a"}') is True
    assert anchors.write_anchor("2026/03/02.json", b'{"root": "forged"}') is False
    assert anchors.write_anchor("2026/03/03.json", b'{"root": "b"}') is True
    assert anchors.list_anchors() == ["2026/03/02.json", "2026/03/03.json"]
    assert anchors.read_anchor("2026/03/02.json") == b'{"root": "a"}'


EVENT = OutgoingEvent(id="0" * 32, type="faceenrollment.user.erased", subject="users/u1",
                      time=datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc),
                      data={"userKey": "u1", "receiptId": "r1", "reason": "test"})


def test_the_http_publisher_delivers_schema_valid_cloudevents() -> None:
    recorder = Recorder()
    port = free_port()
    server = make_server(port, recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        fake = FakeEvents()
        for publisher in (fake, HttpCloudEventsPublisher(url=f"http://127.0.0.1:{port}/events", source="/faceenrollment")):
            publisher.publish([EVENT])
        got: list[dict[str, Any]] = recorder.events
        assert [(e["id"], e["type"], e["data"]) for e in got] == [(e.id, e.type, dict(e.data)) for e in fake.published]
        assert got[0]["specversion"] == "1.0" and got[0]["source"] == "/faceenrollment"
        bad = OutgoingEvent(id="x", type="faceenrollment.user.erased", subject="users/u1", time=EVENT.time, data={})
        with pytest.raises(TransientFailure):  # the subscriber refuses it (400): not marked sent
            HttpCloudEventsPublisher(url=f"http://127.0.0.1:{port}/events", source="/faceenrollment").publish([bad])
    finally:
        server.shutdown()


def test_an_unreachable_subscriber_is_a_transient_failure() -> None:
    with pytest.raises(TransientFailure):
        HttpCloudEventsPublisher(url=f"http://127.0.0.1:{free_port()}/events", source="/x", timeout=2).publish([EVENT])
