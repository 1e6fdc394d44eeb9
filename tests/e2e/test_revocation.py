"""Revocation end to end: HR termination events and self-service revocation erase everything, provably."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.data.tables import TableServiceClient

from local.bus.__main__ import main as bus_cli
from shared.adapters.face_rest import FaceRestClient
from shared.errors import PersonNotFound
from tests.e2e.test_enrollment import active_group, blobs, user_row
from tests.fixtures.app_stack import AppStack
from tests.fixtures.azurite import ROOT
from tests.fixtures.paths import face_bytes

pytestmark = pytest.mark.e2e


def rows(stack: AppStack, table: str, user: str) -> list[dict[str, Any]]:
    client = TableServiceClient.from_connection_string(stack.azurite.connection_string).get_table_client(
        f"{stack.env['TABLE_PREFIX']}{table}")
    try:
        return [dict(r) for r in client.query_entities("PartitionKey eq @pk", parameters={"pk": user})]
    except Exception:
        return []


def send(stack: AppStack, tmp_path: Path, *, topic: str | None = None, queue: str | None = None, body: Any,
         message_id: str) -> None:
    f = tmp_path / f"{message_id}.json"
    f.write_bytes(body if isinstance(body, bytes) else json.dumps(body).encode())
    where = ["--topic", topic] if topic else ["--queue", str(queue)]
    out = subprocess.run([sys.executable, "-m", "local.bus", "send", *where, "--file", str(f), "--message-id", message_id],
                         cwd=ROOT, env={"PhotoStorage": stack.azurite.connection_string, "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr


def peek_deadletter(stack: AppStack, *args: str) -> list[dict[str, Any]]:
    """``python -m local.bus peek ... --deadletter``, called in this process: the tests poll it every
    couple of seconds, and a new interpreter each time cost about a CPU-second a call."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bus_cli(["peek", *args, "--deadletter"], connection=stack.azurite.connection_string)
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def termination(employee_id: str, *, effective: str | None = None) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"hr-{uuid.uuid4().hex}", "source": "/hr/test", "type": "hr.employee.terminated",
            "time": datetime.now(timezone.utc).isoformat(),
            "data": {"employeeId": employee_id, "effectiveDate": effective or datetime.now(timezone.utc).date().isoformat()}}


def enroll(stack: AppStack, user: str, employee: str, photos: list[str], *, store: bool = True) -> dict[str, Any]:
    stack.consent(user, store_photos=store, employee_id=employee)
    stack.upload(user, [face_bytes(p) for p in photos])
    stack.wait_status(user, lambda s: s["status"] == "enrolled" and all(p["status"] == "accepted" for p in s["photos"]))
    row = user_row(stack, user)
    assert row is not None
    return row


def assert_erased(stack: AppStack, user: str, row: dict[str, Any], group: str) -> dict[str, Any]:
    # "revoked" shows as soon as the tombstone is written (a withdrawn user never shows enrolled); the
    # erasure itself finishes in the same delivery.
    # The receipt id is shown once the receipt exists (the erasure is done), so it can be read at once.
    status = stack.wait_status(user, lambda s: s["status"] == "revoked" and "receiptId" in s)
    stack.host.wait_idle()
    client = FaceRestClient(endpoint=stack.face.endpoint, key="k")
    with pytest.raises(PersonNotFound):
        client.get_person(group, row["personId"])
    assert not [b for b in blobs(stack, stack.env["KEPT_PHOTOS_CONTAINER"]) if b.startswith(row["keptToken"])]
    assert user_row(stack, user) is None
    assert rows(stack, "uploads", user) == []
    assert rows(stack, "overrides", user) == []
    ledger = rows(stack, "consent", user)
    assert [e["kind"] for e in sorted(ledger, key=lambda e: e["RowKey"])][-1] == "revocation"
    receipt = stack.call("GET", f"admin/receipts/{status['receiptId']}", user="admin-1", admin=True)
    assert receipt.status_code == 200
    doc = receipt.json()
    kinds = {e["kind"]: e["count"] for e in doc["erased"]}
    assert kinds["faceTemplate"] == 1 and kinds["enrollmentRecord"] == 1
    assert row["personId"] not in receipt.text
    return doc


def test_hr_termination_erases_everything(app_stack: AppStack, tmp_path: Path) -> None:
    user, employee = f"u-{uuid.uuid4().hex[:8]}", f"E{uuid.uuid4().hex[:6]}"
    row = enroll(app_stack, user, employee, ["family2-man/1.jpg", "family2-man/2.jpg"])
    group = active_group(app_stack)
    send(app_stack, tmp_path, topic="hr-events", body=termination(employee), message_id=f"hr-{uuid.uuid4().hex}")
    receipt = assert_erased(app_stack, user, row, group)
    assert {e["kind"]: e["count"] for e in receipt["erased"]}["keptPhotos"] == 2
    # Not an admin: no receipts.
    assert app_stack.call("GET", f"admin/receipts/{receipt['receiptId']}", user=user).status_code == 403


def test_self_service_revocation_is_idempotent_and_final(app_stack: AppStack, tmp_path: Path) -> None:
    user, employee = f"u-{uuid.uuid4().hex[:8]}", f"E{uuid.uuid4().hex[:6]}"
    row = enroll(app_stack, user, employee, ["family2-lady/1.jpg"])
    group = active_group(app_stack)
    # Upload slots handed out before the revocation: their SAS stays valid for minutes.
    late = app_stack.call("POST", "enrollment/uploads", user=user, json={"count": 1}).json()["uploads"][0]
    first = app_stack.call("DELETE", "enrollment", user=user)
    second = app_stack.call("DELETE", "enrollment", user=user)
    assert first.status_code == 202 and second.status_code == 202
    assert first.json()["requestId"] == second.json()["requestId"]
    receipt = assert_erased(app_stack, user, row, group)
    # Replaying the command changes nothing and returns the same receipt.
    send(app_stack, tmp_path, queue="revocations", message_id=f"replay-{uuid.uuid4().hex}",
         body={"userKey": user, "requestId": first.json()["requestId"], "requestedBy": user, "reason": "replay"})
    app_stack.host.wait_idle()
    assert app_stack.call("GET", "enrollment", user=user).json()["receiptId"] == receipt["receiptId"]
    # A photo that arrives after the revocation must not bring anything back.
    persons_before = set(app_stack.face.stats()["personIds"])
    put = requests.put(late["url"], data=face_bytes("family1-dad/1.jpg"), headers={"x-ms-blob-type": "BlockBlob"},
                       timeout=30)
    assert put.status_code == 201
    blob_name = late["url"].split("?")[0].split(f"/{app_stack.env['UPLOADS_CONTAINER']}/", 1)[1]
    app_stack.host.wait_for(lambda: blob_name not in blobs(app_stack, app_stack.env["UPLOADS_CONTAINER"]))
    assert set(app_stack.face.stats()["personIds"]) == persons_before
    assert user_row(app_stack, user) is None
    # A new consent starts a fresh enrollment.
    row2 = enroll(app_stack, user, employee, ["family1-dad/2.jpg"], store=False)
    assert row2["personId"] != row["personId"]


def test_future_termination_is_scheduled(app_stack: AppStack, tmp_path: Path) -> None:
    user, employee = f"u-{uuid.uuid4().hex[:8]}", f"E{uuid.uuid4().hex[:6]}"
    enroll(app_stack, user, employee, ["obama/1.jpg"], store=False)
    # Far enough ahead that a loaded machine still sees the user enrolled before it takes effect.
    soon = (datetime.now(timezone.utc) + timedelta(seconds=10)).isoformat()
    send(app_stack, tmp_path, topic="hr-events", body=termination(employee, effective=soon), message_id=f"hr-{uuid.uuid4().hex}")
    app_stack.host.wait_idle()
    assert app_stack.call("GET", "enrollment", user=user).json()["status"] == "enrolled"
    app_stack.wait_status(user, lambda s: s["status"] == "revoked", timeout=60)


def test_malformed_hr_event_is_dead_lettered_and_unknown_employee_completed(app_stack: AppStack, tmp_path: Path) -> None:
    bad_id = f"bad-{uuid.uuid4().hex}"
    send(app_stack, tmp_path, topic="hr-events", body={"specversion": "1.0", "type": "hr.employee.terminated"},
         message_id=bad_id)
    letters = app_stack.host.wait_for(
        lambda: [m for m in peek_deadletter(app_stack, "--topic", "hr-events", "--subscription", "face-enrollment")
                 if m["messageId"] == bad_id], timeout=60)
    assert letters[0]["deadLetterReason"] == "MaxDeliveryCountExceeded"
    assert "does not match shared/contracts/hr-events.schema.json" in letters[0]["deadLetterErrorDescription"]
    failures = [i for i in app_stack.host.invocations("hr_events") if not i["ok"]]
    assert any("does not match shared/contracts/hr-events.schema.json" in (i["error"] or "") for i in failures)
    # Ten deliveries, one audit entry with the reason.
    audit = TableServiceClient.from_connection_string(app_stack.azurite.connection_string).get_table_client(
        f"{app_stack.env['TABLE_PREFIX']}audit")
    rejected = [e for e in audit.list_entities() if e["action"] == "message.rejected" and bad_id in e["details_json"]]
    assert len(rejected) == 1 and "hr-events.schema.json" in rejected[0]["details_json"]
    unknown_id = f"unknown-{uuid.uuid4().hex}"
    send(app_stack, tmp_path, topic="hr-events", body=termination("E-nobody"), message_id=unknown_id)
    app_stack.host.wait_idle()
    assert not [m for m in peek_deadletter(app_stack, "--topic", "hr-events", "--subscription", "face-enrollment")
                if m["messageId"] == unknown_id]


def test_a_dead_lettered_erasure_is_repaired_by_purge(app_stack: AppStack, tmp_path: Path) -> None:
    """Issue 12 end to end: Face answers 503 to every call (the emulator's fault knob) until the revocation
    is dead-lettered; consent is withdrawn at once, the footprint is not empty; once Face is back, one
    purge completes the erasure with a verified receipt."""
    user, employee = f"u-{uuid.uuid4().hex[:8]}", f"E{uuid.uuid4().hex[:6]}"
    enroll(app_stack, user, employee, ["family2-man/1.jpg"])

    def footprint() -> dict[str, Any]:
        got = app_stack.call("GET", f"admin/users/{user}/footprint", user="admin-1", admin=True)
        assert got.status_code == 200, got.text
        doc: dict[str, Any] = got.json()
        return doc

    before = footprint()
    assert before["erasable"]["facePersons"] == 1 and before["erasable"]["keptPhotos"] == 1
    app_stack.face.configure(faultRate=1.0, faultStatuses=[503])
    try:
        assert app_stack.call("DELETE", "enrollment", user=user).status_code == 202
        app_stack.host.wait_for(lambda: any(user in json.dumps(m) for m in peek_deadletter(app_stack, "--queue", "revocations")),
                                timeout=240, interval=2.0)
        pending = app_stack.call("GET", "enrollment", user=user).json()
        # Revoked at once, but no receipt is promised before the erasure is done: the person is told so.
        assert pending["status"] == "revoked" and "receiptId" not in pending, pending
        assert "being erased" in pending["message"]
    finally:
        app_stack.face.configure(faultRate=0.0)
    assert footprint()["erasable"]["facePersons"] == 1  # not erased yet
    report = app_stack.call("POST", "admin/purge", user="admin-1", admin=True, json={"dryRun": False})
    assert report.status_code == 200 and report.json()["repairedErasures"] >= 1, report.text
    after = footprint()
    assert after["empty"] is True and after["consent"] == "revoked", after
    status = app_stack.call("GET", "enrollment", user=user).json()
    receipt = app_stack.call("GET", f"admin/receipts/{status['receiptId']}", user="admin-1", admin=True).json()
    assert receipt["verified"] is True
    assert {e["kind"]: e["count"] for e in receipt["erased"]}["faceTemplate"] == 1
