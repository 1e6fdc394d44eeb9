"""Each port's fake (tests/fakes.py) and its real adapter, as one parametrised fixture per port:
every contract case runs against both, so the fakes the service tier relies on cannot drift."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from shared.adapters.azure_storage import StorageClients
from shared.adapters.blob_photos import BlobPhotoStore
from shared.adapters.face_rest import FaceRestClient
from shared.adapters.table_records import TableRecords
from shared.ports import FacePort, PhotoStorePort, RecordStorePort
from shared.settings import Settings
from tests.fakes import FakeFace, FakePhotos, FakeRecords, photo
from tests.fixtures.paths import face_bytes


@pytest.fixture(params=["fake", "azurite"])
def record_store(request: pytest.FixtureRequest) -> RecordStorePort:
    if request.param == "fake":
        return FakeRecords()
    azurite = request.getfixturevalue("azurite")
    clients = StorageClients(Settings.from_env({"PhotoStorage": azurite.connection_string}))
    return TableRecords(clients, prefix="c" + uuid.uuid4().hex[:8])


@dataclass
class PhotoStoreUnderTest:
    store: PhotoStorePort
    put: Any  # (blob name, bytes) -> None: what the front end's PUT to the SAS URL does


@pytest.fixture(params=["fake", "azurite"])
def photo_store(request: pytest.FixtureRequest) -> PhotoStoreUnderTest:
    if request.param == "fake":
        fake = FakePhotos()
        return PhotoStoreUnderTest(fake, fake.put_upload)
    azurite = request.getfixturevalue("azurite")
    settings = Settings.from_env({"PhotoStorage": azurite.connection_string})
    clients = StorageClients(settings)
    uploads = "cu" + uuid.uuid4().hex[:8]
    store = BlobPhotoStore(clients, uploads_container=uploads, kept_container="ck" + uuid.uuid4().hex[:8])

    def put(name: str, data: bytes) -> None:
        clients.container(uploads).upload_blob(name, data)

    return PhotoStoreUnderTest(store, put)


@dataclass
class FaceUnderTest:
    face: FacePort
    alice: tuple[bytes, bytes]  # two photos of one person
    bob: bytes
    nobody: bytes  # a photo without a face
    finish_training: Any  # waits until a started training is final


@pytest.fixture(params=["fake", "emulator"])
def face_port(request: pytest.FixtureRequest) -> Iterator[FaceUnderTest]:
    if request.param == "fake":
        fake = FakeFace(train_polls=1)

        def poll(group_id: str) -> str:
            return fake.training_status(group_id).status

        yield FaceUnderTest(fake, (photo(17), photo(17, size=520)), photo(42), photo(0), poll)
        return
    emulator = request.getfixturevalue("face_emulator")
    client = FaceRestClient(endpoint=emulator.endpoint, key="local-emulator-key", timeout=30.0, max_retries=2)

    def wait(group_id: str) -> str:
        import time

        deadline = time.monotonic() + 120
        while True:
            status = client.training_status(group_id).status
            if status in ("succeeded", "failed") or time.monotonic() > deadline:
                return status
            time.sleep(0.1)

    yield FaceUnderTest(client, (face_bytes("family1-dad/1.jpg"), face_bytes("family1-dad/2.jpg")),
                        face_bytes("family2-lady/1.jpg"), face_bytes("nonfaces/1.jpg"), wait)
    client.close()
