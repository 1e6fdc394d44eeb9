"""Stopping the local host in the middle of a message loses nothing (own module: no other host runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.bus import Entity, StandInReceiver
from shared.adapters.storage_queue_bus import StorageQueueBus
from shared.ports import OutgoingMessage
from tests.e2e.test_local_host import results, wait
from tests.fixtures.azurite import Azurite
from tests.fixtures.local_host import start_host

pytestmark = pytest.mark.e2e


def test_message_survives_host_killed_mid_invocation(azurite: Azurite, tmp_path: Path) -> None:
    log = tmp_path / "host.log"
    env = {"PhotoStorage": azurite.connection_string}
    first = start_host(env=env, log_path=log, app="tests.e2e.probe_app", extra_args=["--lock-seconds", "2", "--no-timers"])
    try:
        bus = StorageQueueBus(connection_string=azurite.connection_string)
        bus.send("probe-queue", [OutgoingMessage(body=json.dumps({"tag": "crash", "action": "sleep", "seconds": 5}).encode(),
                                                 message_id="crash-1")])
        wait(lambda: "started/crash-1" in results(azurite, "started/"))
    finally:
        first.stop(kill=True)  # the host dies with the message locked and unsettled
    assert "sb/crash-1" not in results(azurite, "sb/crash-")
    second = start_host(env=env, log_path=log, app="tests.e2e.probe_app", extra_args=["--lock-seconds", "2", "--no-timers"])
    try:
        rec = wait(lambda: results(azurite, "sb/crash-").get("sb/crash-2"), timeout=30)
        assert rec["deliveryCount"] == 2 and rec["messageId"] == "crash-1"
    finally:
        second.stop()
    leftover = StandInReceiver(bus).peek(Entity(queue="probe-queue"))
    assert all(e.message_id != "crash-1" for e in leftover)
