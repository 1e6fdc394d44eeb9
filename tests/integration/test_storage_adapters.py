"""The storage adapters against a real Azurite: tables (ETags, ranges), blobs (create-only SAS), the bus stand-in."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from local.bus import Entity, LockLost, StandInReceiver
from shared.adapters.azure_storage import StorageClients
from shared.adapters.blob_photos import BlobPhotoStore
from shared.adapters.storage_queue_bus import StorageQueueBus
from shared.adapters.table_records import TableRecords
from shared.errors import RecordConflict, RecordExists
from shared.ports import OutgoingMessage
from shared.settings import Settings
from tests.fixtures.azurite import Azurite

pytestmark = pytest.mark.integration


@pytest.fixture
def clients(azurite: Azurite) -> StorageClients:
    return StorageClients(Settings.from_env({"PhotoStorage": azurite.connection_string}))


def test_table_records_are_optimistic_and_ranged(clients: StorageClients) -> None:
    records = TableRecords(clients, prefix="t" + uuid.uuid4().hex[:8])
    etag = records.insert("things", {"PartitionKey": "p", "RowKey": "1", "n": 1, "tags_json": ["a", "b"]})
    with pytest.raises(RecordExists):
        records.insert("things", {"PartitionKey": "p", "RowKey": "1"})
    row, current = records.get("things", "p", "1") or ({}, "")
    assert row["tags_json"] == ["a", "b"] and current == etag
    records.update("things", {**row, "n": 2}, etag=current)
    with pytest.raises(RecordConflict):
        records.update("things", {**row, "n": 3}, etag=current)  # stale ETag
    for day in ("20260101", "20260102", "20260103"):
        records.insert("things", {"PartitionKey": day, "RowKey": "x"})
    due = [r["PartitionKey"] for r in records.range("things", pk_from="20260101", pk_to="20260103")]
    assert due == ["20260101", "20260102"]
    records.delete("things", "p", "1")
    records.delete("things", "p", "1")  # idempotent
    assert records.get("things", "p", "1") is None


def test_upload_sas_is_create_only_for_one_blob(clients: StorageClients) -> None:
    photos = BlobPhotoStore(clients, uploads_container="up" + uuid.uuid4().hex[:8], kept_container="kp" + uuid.uuid4().hex[:8])
    url = photos.upload_url("s1/u1", expires_on=datetime.now(timezone.utc) + timedelta(minutes=5))
    headers = {"x-ms-blob-type": "BlockBlob"}
    assert requests.put(url, data=b"x" * 2048, headers=headers, timeout=10).status_code == 201
    assert requests.put(url, data=b"y" * 2048, headers=headers, timeout=10).status_code == 403  # no overwrite
    assert requests.get(url, timeout=10).status_code == 403
    assert photos.list_uploads("s1/") == ["s1/u1"]
    assert photos.delete_upload("s1/u1") is True and photos.delete_upload("s1/u1") is False
    expired = photos.upload_url("s1/u2", expires_on=datetime.now(timezone.utc) - timedelta(seconds=1))
    assert requests.put(expired, data=b"x" * 2048, headers=headers, timeout=10).status_code == 403


def test_bus_stand_in_lock_abandon_dead_letter_and_topics(azurite: Azurite) -> None:
    bus = StorageQueueBus(connection_string=azurite.connection_string)
    receiver = StandInReceiver(bus)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    entity = Entity(queue=queue, max_delivery_count=2, lock_seconds=1)
    bus.send(queue, [OutgoingMessage(body=b'{"a":1}', message_id="m1", application_properties={"k": "v"})])
    bus.send(queue, [OutgoingMessage(body=b'{"a":1}', message_id="m1")])  # duplicate detection
    (first,) = receiver.receive(entity)
    assert first.delivery_count == 1 and first.envelope.application_properties == {"k": "v"}
    assert receiver.receive(entity) == []  # locked (and the duplicate was dropped)
    receiver.abandon(first)
    (second,) = receiver.receive(entity)
    assert second.delivery_count == 2
    time.sleep(1.5)  # the lock expires without settlement
    with pytest.raises(LockLost):
        receiver.complete(second)
    assert receiver.receive(entity) == []  # third delivery > max: dead-lettered on receive
    (letter,) = receiver.peek(entity, deadletter=True)
    assert letter.message_id == "m1" and letter.dead_letter_reason == "MaxDeliveryCountExceeded"
    # A topic send fans out to every subscription.
    topic = f"t-{uuid.uuid4().hex[:8]}"
    bus.register_subscription(topic, "s1")
    bus.register_subscription(topic, "s2")
    bus.send(topic, [OutgoingMessage(body=json.dumps({"e": 1}).encode(), message_id="e1")])
    for sub in ("s1", "s2"):
        (got,) = receiver.receive(Entity(topic=topic, subscription=sub))
        assert json.loads(got.envelope.body) == {"e": 1}
