"""The local host drives every trigger kind of a probe app, as the Functions host would."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from shared.adapters.storage_queue_bus import StorageQueueBus
from shared.ports import OutgoingMessage
from tests.fixtures.azurite import ROOT, Azurite
from tests.fixtures.local_host import HostProcess, start_host

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def probe_host(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    log = tmp_path_factory.mktemp("host") / "host.log"
    host = start_host(env={"PhotoStorage": azurite.connection_string}, log_path=log, app="tests.e2e.probe_app",
                      extra_args=["--lock-seconds", "3"])
    yield host
    host.stop()


@pytest.fixture(scope="module")
def webhook_host(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    log = tmp_path_factory.mktemp("host") / "host.log"
    host = start_host(env={"PhotoStorage": azurite.connection_string}, log_path=log, app="tests.e2e.probe_app",
                      extra_args=["--no-blob-watcher", "--no-timers", "--functions", "eg_probe,blob_probe,echo"])
    yield host
    host.stop()


def results(azurite: Azurite, prefix: str) -> dict[str, Any]:
    container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client("probe-results")
    if not container.exists():
        return {}
    return {b.name: json.loads(container.download_blob(b.name).readall() or b"{}")
            for b in container.list_blobs(name_starts_with=prefix)}


def bus_cli(azurite: Azurite, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PhotoStorage": azurite.connection_string, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "local.bus", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def wait(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not met within {timeout}s")


# --- HTTP ---------------------------------------------------------------------------------------
def test_http_trigger_routes_methods_params(probe_host: HostProcess) -> None:
    r = requests.get(f"{probe_host.url}/api/echo/alice?q=1", headers={"x-probe": "h"}, timeout=10)
    assert r.status_code == 200
    assert r.json() == {"method": "GET", "name": "alice", "q": "1", "body": "", "header": "h"}
    r = requests.post(f"{probe_host.url}/api/echo/bob", data=b"payload", timeout=10)
    assert r.status_code == 201 and r.json()["body"] == "payload" and r.json()["name"] == "bob"
    assert requests.delete(f"{probe_host.url}/api/echo/bob", timeout=10).status_code == 405
    missing = requests.get(f"{probe_host.url}/api/nope", timeout=10)
    assert missing.status_code == 404 and "no function" in missing.json()["error"]["message"]


def test_failing_http_function_is_500_and_host_survives(probe_host: HostProcess) -> None:
    assert requests.get(f"{probe_host.url}/api/boom", timeout=10).status_code == 500
    assert requests.get(f"{probe_host.url}/api/echo/x", timeout=10).status_code == 200


# --- Event Grid webhooks ------------------------------------------------------------------------
def test_eventgrid_subscription_validation_handshake(webhook_host: HostProcess) -> None:
    event = [{"id": "v1", "topic": "t", "subject": "s", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
              "eventTime": "2026-01-01T00:00:00Z", "data": {"validationCode": "ABC-123"}, "dataVersion": "1"}]
    r = requests.post(f"{webhook_host.url}/runtime/webhooks/eventgrid?functionName=eg_probe", json=event,
                      headers={"aeg-event-type": "SubscriptionValidation"}, timeout=10)
    assert r.status_code == 200 and r.json() == {"validationResponse": "ABC-123"}
    r = requests.options(f"{webhook_host.url}/runtime/webhooks/eventgrid?functionName=eg_probe",
                         headers={"WebHook-Request-Origin": "eventgrid.azure.net"}, timeout=10)
    assert r.status_code == 200 and r.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


def test_eventgrid_schema_and_cloudevents_are_delivered(webhook_host: HostProcess, azurite: Azurite) -> None:
    eg_id, ce_id = str(uuid.uuid4()), str(uuid.uuid4())
    eg = [{"id": eg_id, "topic": "t", "subject": "/things/1", "eventType": "Contoso.Thing", "eventTime": "2026-01-01T00:00:00Z",
           "data": {"n": 1}, "dataVersion": "1"}]
    r = requests.post(f"{webhook_host.url}/runtime/webhooks/eventgrid?functionName=eg_probe", json=eg,
                      headers={"aeg-event-type": "Notification"}, timeout=10)
    assert r.status_code == 200
    ce = {"specversion": "1.0", "id": ce_id, "source": "/contoso", "type": "Contoso.Cloud", "subject": "/c/2",
          "time": "2026-01-01T00:00:00Z", "data": {"n": 2}}
    assert requests.post(f"{webhook_host.url}/runtime/webhooks/eventgrid?functionName=eg_probe", json=ce,
                         timeout=10).status_code == 200
    got = results(azurite, "eg/")
    assert got[f"eg/{eg_id}"]["type"] == "Contoso.Thing" and got[f"eg/{eg_id}"]["data"] == {"n": 1}
    assert got[f"eg/{eg_id}"]["cls"] == "EventGridEvent"
    assert got[f"eg/{ce_id}"]["cls"] == "CloudEvent"


def test_bad_webhook_input_gets_clear_4xx(webhook_host: HostProcess) -> None:
    url = f"{webhook_host.url}/runtime/webhooks/eventgrid"
    bad_json = requests.post(f"{url}?functionName=eg_probe", data=b"{not json", timeout=10)
    assert bad_json.status_code == 400 and "malformed event JSON" in bad_json.json()["error"]
    unknown = requests.post(f"{url}?functionName=nope", json=[], timeout=10)
    assert unknown.status_code == 404 and "unknown function" in unknown.json()["error"]
    missing = requests.post(f"{url}?functionName=eg_probe", json=[{"id": "1"}], timeout=10)
    assert missing.status_code == 400 and "eventType" in missing.json()["error"]
    failing = requests.post(f"{url}?functionName=eg_probe", json=[{"id": "f", "subject": "s", "eventType": "X",
                                                                   "data": {"fail": True}}], timeout=10)
    assert failing.status_code == 500  # so Event Grid would retry
    assert requests.get(f"{webhook_host.url}/admin/host/status", timeout=10).status_code == 200


def test_blobs_webhook_invokes_blob_trigger(webhook_host: HostProcess, azurite: Azurite) -> None:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client("probe-in")
    if not container.exists():
        container.create_container()
    name = f"hook-{uuid.uuid4().hex}.bin"
    blob = container.upload_blob(name, b"x" * 100)
    props = blob.get_blob_properties()
    event = [{"id": str(uuid.uuid4()), "topic": "t", "subject": f"/blobServices/default/containers/probe-in/blobs/{name}",
              "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2026-01-01T00:00:00Z",
              "data": {"url": blob.url, "eTag": props.etag, "contentLength": 100, "api": "PutBlob"}, "dataVersion": ""}]
    r = requests.post(f"{webhook_host.url}/runtime/webhooks/blobs?functionName=Host.Functions.blob_probe", json=event,
                      headers={"aeg-event-type": "Notification"}, timeout=10)
    assert r.status_code == 202
    rec = results(azurite, "blob/")[f"blob/probe-in_{name}"]
    assert rec["name"] == f"probe-in/{name}" and rec["length"] == 100
    bad = requests.post(f"{webhook_host.url}/runtime/webhooks/blobs?functionName=blob_probe", json=event, timeout=10)
    assert bad.status_code == 400


# --- blob watcher ---------------------------------------------------------------------------------
def test_blob_watcher_raises_blob_created_and_retries_failures(probe_host: HostProcess, azurite: Azurite) -> None:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client("probe-in")
    if not container.exists():
        container.create_container()
    ok_name, flaky_name = f"w-{uuid.uuid4().hex}", f"flaky-{uuid.uuid4().hex}"
    container.upload_blob(ok_name, b"hello")
    container.upload_blob(flaky_name, b"fail-once")
    wait(lambda: f"blob/probe-in_{ok_name}" in results(azurite, "blob/"))
    # The first delivery fails; Event Grid-style retry delivers it again.
    wait(lambda: f"blob/probe-in_{flaky_name}" in results(azurite, "blob/"), timeout=30)
    failures = [i for i in probe_host.invocations("blob_probe") if not i["ok"]]
    assert failures, "the flaky blob's first delivery should have failed"


# --- Service Bus ----------------------------------------------------------------------------------
def test_queue_message_through_cli_with_id_and_properties(probe_host: HostProcess, azurite: Azurite, tmp_path: Path) -> None:
    body = tmp_path / "m.json"
    body.write_text(json.dumps({"tag": "cli", "forward": True}))
    out = bus_cli(azurite, "send", "--queue", "probe-queue", "--file", str(body), "--message-id", "msg-cli-1",
                  "--property", "kind=probe", "--property", "n=3")
    assert out.returncode == 0, out.stderr
    rec = wait(lambda: results(azurite, "sb/cli-").get("sb/cli-1"))
    assert rec["messageId"] == "msg-cli-1" and rec["props"] == {"kind": "probe", "n": 3} and rec["deliveryCount"] == 1
    # The output binding forwarded a message to another queue, whose trigger ran too.
    assert wait(lambda: results(azurite, "forwarded/").get("forwarded/cli"))


def test_duplicate_message_ids_are_dropped(probe_host: HostProcess, azurite: Azurite, tmp_path: Path) -> None:
    body = tmp_path / "m.json"
    body.write_text(json.dumps({"tag": "dup"}))
    for _ in range(2):
        assert bus_cli(azurite, "send", "--queue", "probe-queue", "--file", str(body), "--message-id", "same-id").returncode == 0
    wait(lambda: results(azurite, "sb/dup-"))
    time.sleep(1.5)
    assert list(results(azurite, "sb/dup-")) == ["sb/dup-1"]


def test_topic_subscription_trigger(probe_host: HostProcess, azurite: Azurite, tmp_path: Path) -> None:
    body = tmp_path / "t.json"
    body.write_text('{"hello": "topic"}')
    assert bus_cli(azurite, "send", "--topic", "probe-topic", "--file", str(body), "--message-id", "topic-1").returncode == 0
    rec = wait(lambda: results(azurite, "topic/").get("topic/topic-1"))
    assert json.loads(rec["body"]) == {"hello": "topic"}
    peek = bus_cli(azurite, "peek", "--topic", "probe-topic", "--subscription", "probe-sub")
    assert peek.returncode == 0


def test_rejected_message_is_dead_lettered_after_max_deliveries(probe_host: HostProcess, azurite: Azurite, tmp_path: Path) -> None:
    body = tmp_path / "bad.json"
    body.write_text(json.dumps({"tag": "poison", "action": "fail"}))
    assert bus_cli(azurite, "send", "--queue", "probe-queue", "--file", str(body), "--message-id", "poison-1").returncode == 0

    def dead() -> list[dict[str, Any]]:
        out = bus_cli(azurite, "peek", "--queue", "probe-queue", "--deadletter")
        return [json.loads(line) for line in out.stdout.splitlines() if '"poison-1"' in line]

    letters = wait(dead, timeout=60)
    assert letters[0]["deadLetterReason"] == "MaxDeliveryCountExceeded"
    assert "probe rejects this message" in letters[0]["deadLetterErrorDescription"]
    assert len([i for i in probe_host.invocations("sb_probe") if not i["ok"] and "probe rejects" in (i["error"] or "")]) == 10


def test_scheduled_message_arrives_on_time(probe_host: HostProcess, azurite: Azurite) -> None:
    bus = StorageQueueBus(connection_string=azurite.connection_string)
    at = datetime.now(UTC) + timedelta(seconds=4)
    bus.send("probe-queue", [OutgoingMessage(body=json.dumps({"tag": "sched"}).encode(), message_id="sched-1",
                                             scheduled_enqueue_time=at)])
    time.sleep(2)
    assert "sb/sched-1" not in results(azurite, "sb/sched-")
    rec = wait(lambda: results(azurite, "sb/sched-").get("sb/sched-1"), timeout=15)
    assert datetime.now(UTC) >= at and rec["messageId"] == "sched-1"


# --- timers and admin -----------------------------------------------------------------------------
def test_timer_fires_on_schedule_and_admin_fires_now(probe_host: HostProcess, azurite: Azurite) -> None:
    wait(lambda: len(results(azurite, "timer/")) >= 2, timeout=10)
    before = len(probe_host.invocations("timer_probe"))
    r = requests.post(f"{probe_host.url}/admin/functions/timer_probe", json={"input": ""}, timeout=10)
    assert r.status_code == 202
    assert len(probe_host.invocations("timer_probe")) > before


def test_admin_fire_of_queue_function_and_bad_admin_calls(probe_host: HostProcess, azurite: Azurite) -> None:
    r = requests.post(f"{probe_host.url}/admin/functions/sb_probe", json={"input": json.dumps({"tag": "admin"})}, timeout=10)
    assert r.status_code == 202
    assert wait(lambda: results(azurite, "sb/admin-").get("sb/admin-1"))
    assert requests.post(f"{probe_host.url}/admin/functions/nope", json={}, timeout=10).status_code == 404
    assert requests.post(f"{probe_host.url}/admin/functions/echo", json={}, timeout=10).status_code == 400
    assert requests.post(f"{probe_host.url}/admin/functions/sb_probe", data=b"{oops", timeout=10).status_code == 400
