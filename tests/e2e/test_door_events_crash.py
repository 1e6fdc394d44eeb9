"""No door event is lost when the host is killed between the change and the publish, and none is
announced twice: the local host runs without timers (so the sender never runs by itself), the change
is made, the host is killed (SIGKILL, no cleanup), a new host fires events_sender."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from local.events_sink import Recorder, make_server
from tests.fixtures.app_stack import AppStack, app_env
from tests.fixtures.azurite import Azurite, free_port
from tests.fixtures.local_host import start_host
from tests.fixtures.paths import face_bytes

pytestmark = pytest.mark.e2e


def fire_sender(stack: AppStack) -> int:
    import requests

    return requests.post(f"{stack.host.url}/admin/functions/events_sender", json={"input": ""}, timeout=60).status_code


def test_events_survive_a_killed_host_and_are_announced_once(azurite: Azurite, face_emulator: Any,
                                                             tmp_path: Path) -> None:
    recorder = Recorder()
    port = free_port()
    server = make_server(port, recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = app_env(azurite, face_emulator.endpoint)
    env.update({"EVENTS_TRANSPORT": "http", "EVENTS_SINK_URL": f"http://127.0.0.1:{port}/events"})
    log = tmp_path / "host.log"
    args = ["--lock-seconds", "2", "--no-timers"]
    stack = AppStack(start_host(env=env, log_path=log, extra_args=args), azurite, face_emulator, env)
    user = f"door-{uuid.uuid4().hex[:6]}"
    try:
        stack.consent(user, store_photos=False)
        stack.upload(user, [face_bytes("obama/1.jpg")])
        # A loaded machine makes the Face emulator slow: a generous wait, the guarantee is not about time.
        stack.wait_status(user, lambda s: s["status"] == "enrolled", timeout=240)
        # The change is made and its event is in the outbox; nothing was published (no timer ran).
        assert recorder.events == []
        stack.host.stop(kill=True)
        stack.host = start_host(env=env, log_path=log, extra_args=args)
        assert fire_sender(stack) == 202
        assert [(e["type"], e["data"]["userKey"]) for e in recorder.events] == [("faceenrollment.user.enrolled", user)]

        # The erasure: the host is killed while it processes the revocation, maybe before, maybe after
        # its event reached the outbox; the redelivery on the new host finishes it.
        assert stack.call("DELETE", "enrollment", user=user).status_code == 202
        time.sleep(0.3)
        stack.host.stop(kill=True)
        stack.host = start_host(env=env, log_path=log, extra_args=args)
        status = stack.wait_status(user, lambda s: s["status"] in ("revoked", "none") and s.get("receiptId"),
                                   timeout=240)
        # The status names the receipt as soon as the tombstone exists; the erasure (and its event, written
        # just before the receipt) completes after. The receipt readable is the erasure done.
        deadline = time.monotonic() + 240
        while stack.call("GET", f"me/receipts/{status['receiptId']}", user=user).status_code != 200:
            assert time.monotonic() < deadline, f"no receipt in 240 s\n{stack.host.log()[-3000:]}"
            time.sleep(0.5)
        for _ in range(3):  # the sender runs again and again: still one announcement
            assert fire_sender(stack) == 202
        erased = [e for e in recorder.events if e["type"] == "faceenrollment.user.erased"]
        assert len(erased) == 1 and erased[0]["data"]["receiptId"] == status["receiptId"]
        assert recorder.duplicates == 0
        assert all("personId" not in str(e) for e in recorder.events)
    finally:
        stack.host.stop()
        server.shutdown()
