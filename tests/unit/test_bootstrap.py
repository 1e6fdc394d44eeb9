"""shared.bootstrap builds real adapters from settings alone, lazily (nothing connects at build time),
and takes fakes for any port it is given."""

from __future__ import annotations

from shared import bootstrap
from shared.adapters.blob_photos import BlobPhotoStore
from shared.adapters.face_rest import FaceRestClient
from shared.adapters.servicebus_publisher import ServiceBusPublisher
from shared.adapters.storage_queue_bus import StorageQueueBus
from shared.adapters.table_records import TableRecords
from shared.settings import Settings, azurite_connection_string
from tests.fakes import FakeFace, FakePublisher


def test_real_adapters_from_settings_without_connecting() -> None:
    local = bootstrap.build(Settings.from_env({"PhotoStorage": azurite_connection_string(blob=1, queue=2, table=3),
                                               "MESSAGING_TRANSPORT": "storage-queues"}))
    assert isinstance(local.records, TableRecords) and isinstance(local.photos, BlobPhotoStore)
    assert isinstance(local.face, FaceRestClient) and isinstance(local.publisher, StorageQueueBus)
    azure = bootstrap.build(Settings.from_env({"ServiceBusConnection__fullyQualifiedNamespace": "sb.example.net",
                                               "PhotoStorage__tableServiceUri": "https://t.example.net"}),
                            credential=object())
    assert isinstance(azure.publisher, ServiceBusPublisher)


def test_given_ports_are_used_as_they_are() -> None:
    face, publisher = FakeFace(), FakePublisher()
    built = bootstrap.build(Settings(), face=face, publisher=publisher)
    assert built.face is face and built.publisher is publisher
    assert built.repos.store is built.records


def test_services_are_built_once_and_reset() -> None:
    bootstrap.reset()
    try:
        first = bootstrap.settings()
        assert bootstrap.settings() is first
    finally:
        bootstrap.reset()
