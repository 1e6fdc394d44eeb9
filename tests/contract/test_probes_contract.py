"""The readiness probes' fakes and their adapters on the same cases: storage (Azurite) creates what is
missing once and then finds it; the stand-in bus reports a missing entity as ProbeNotFound and a present
one as fine. (Denied and unreachable are the adapters' own: tests/integration/test_readiness_probes.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from shared import errors
from shared.adapters.readiness_probes import StandInBusProbe, StorageProbe
from shared.adapters.storage_queue_bus import StorageQueueBus, queue_storage_name
from shared.ports import BusProbePort, StorageProbePort
from shared.settings import Settings
from tests.fakes import FakeBusProbe, FakeStorageProbe

pytestmark = pytest.mark.contract


@pytest.fixture(params=["fake", "azurite"])
def storage_probe(request: pytest.FixtureRequest) -> StorageProbePort:
    if request.param == "fake":
        return FakeStorageProbe()
    azurite = request.getfixturevalue("azurite")
    settings = Settings.from_env({"PhotoStorage": azurite.connection_string, "TABLE_PREFIX": "p" + uuid.uuid4().hex[:8]})
    return StorageProbe(settings, timeout=3)


@dataclass
class BusUnderTest:
    probe: BusProbePort
    create_queue: Callable[[str], None]
    create_subscription: Callable[[str, str], None]


@pytest.fixture(params=["fake", "azurite"])
def bus_probe(request: pytest.FixtureRequest) -> BusUnderTest:
    if request.param == "fake":
        fake = FakeBusProbe()
        return BusUnderTest(fake, fake.entities.add, lambda topic, sub: fake.entities.add(f"{topic}/{sub}"))
    azurite = request.getfixturevalue("azurite")
    bus = StorageQueueBus(connection_string=azurite.connection_string)
    return BusUnderTest(StandInBusProbe(connection_string=azurite.connection_string, timeout=3),
                        lambda queue: bus.queue_client(queue_storage_name(queue)) and None,
                        bus.register_subscription)


def test_storage_creates_what_is_missing_once(storage_probe: StorageProbePort) -> None:
    tables = ["users", "consent"]
    assert sorted(storage_probe.ensure_tables(tables)) == sorted(tables)
    assert storage_probe.ensure_tables(tables) == []
    assert storage_probe.ensure_tables([*tables, "audit"]) == ["audit"]
    container = "c" + uuid.uuid4().hex[:10]
    assert storage_probe.ensure_container(container) is True
    assert storage_probe.ensure_container(container) is False


def test_bus_entities_are_missing_until_they_exist(bus_probe: BusUnderTest) -> None:
    topic, sub, queue = f"t{uuid.uuid4().hex[:8]}", f"s{uuid.uuid4().hex[:8]}", f"q{uuid.uuid4().hex[:8]}"
    with pytest.raises(errors.ProbeNotFound):
        bus_probe.probe.check_queue(queue)
    with pytest.raises(errors.ProbeNotFound):
        bus_probe.probe.check_subscription(topic, sub)
    bus_probe.create_queue(queue)
    bus_probe.create_subscription(topic, sub)
    bus_probe.probe.check_queue(queue)
    bus_probe.probe.check_subscription(topic, sub)
