"""The storage and stand-in bus probes against Azurite: exists, created on first use, missing, denied (a
wrong account key) and unreachable (a dead port), each fast."""

from __future__ import annotations

import time
import uuid

import pytest

from shared import errors
from shared.adapters.readiness_probes import StandInBusProbe, StorageProbe
from shared.adapters.repositories import ALL_TABLES
from shared.adapters.storage_queue_bus import StorageQueueBus
from shared.settings import AZURITE_ACCOUNT, Settings, azurite_connection_string
from tests.fixtures.azurite import Azurite, free_port

WRONG_KEY = "d3Jvbmcta2V5LW5vdC10aGUtYXp1cml0ZS1vbmUtYXQtYWxsLXNvLWF1dGgtZmFpbHMtMTIzNDU2Nzg5MA=="


def settings_for(conn: str) -> Settings:
    return Settings.from_env({"PhotoStorage": conn, "TABLE_PREFIX": "r" + uuid.uuid4().hex[:8]})


def test_tables_and_containers_are_created_once_then_exist(azurite: Azurite) -> None:
    probe = StorageProbe(settings_for(azurite.connection_string), timeout=3)
    assert sorted(probe.ensure_tables(ALL_TABLES)) == sorted(ALL_TABLES)
    assert probe.ensure_tables(ALL_TABLES) == []
    container = "c" + uuid.uuid4().hex[:10]
    assert probe.ensure_container(container) is True
    assert probe.ensure_container(container) is False


def test_a_wrong_key_is_denied(azurite: Azurite) -> None:
    conn = azurite.connection_string.replace(azurite.connection_string.split("AccountKey=")[1].split(";")[0], WRONG_KEY)
    assert AZURITE_ACCOUNT in conn and WRONG_KEY in conn
    probe = StorageProbe(settings_for(conn), timeout=3)
    with pytest.raises(errors.ProbeDenied) as info:
        probe.ensure_tables(ALL_TABLES)
    assert WRONG_KEY not in str(info.value)
    with pytest.raises(errors.ProbeDenied):
        probe.ensure_container("uploads")


def test_a_dead_port_is_unreachable_at_once() -> None:
    dead = free_port()
    conn = azurite_connection_string(blob=dead, queue=dead, table=dead)
    probe = StorageProbe(settings_for(conn), timeout=3)
    bus = StandInBusProbe(connection_string=conn, timeout=3)
    started = time.monotonic()
    for call in (lambda: probe.ensure_tables(ALL_TABLES), lambda: probe.ensure_container("uploads"),
                 lambda: bus.check_queue("revocations"), lambda: bus.check_subscription("hr-events", "face-enrollment")):
        with pytest.raises(errors.ProbeUnreachable):
            call()
    assert time.monotonic() - started < 3, "no retries: a refused connection fails at once"


def test_stand_in_entities_missing_then_present(azurite: Azurite) -> None:
    topic, sub, queue = f"t{uuid.uuid4().hex[:8]}", f"s{uuid.uuid4().hex[:8]}", f"q{uuid.uuid4().hex[:8]}"
    probe = StandInBusProbe(connection_string=azurite.connection_string, timeout=3)
    with pytest.raises(errors.ProbeNotFound):
        probe.check_queue(queue)
    with pytest.raises(errors.ProbeNotFound):
        probe.check_subscription(topic, sub)
    bus = StorageQueueBus(connection_string=azurite.connection_string)
    bus.register_subscription(topic, sub)
    from shared.adapters.storage_queue_bus import queue_storage_name

    bus.queue_client(queue_storage_name(queue))
    probe.check_queue(queue)
    probe.check_subscription(topic, sub)
