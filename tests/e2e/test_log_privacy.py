"""Logs carry no identifiers: the whole mission, run with the root logger at INFO, leaves none of the
run's user keys, employee ids, personIds, upload or session ids, blob names or SAS signatures in any
log line of the host or the app (what Application Insights would receive in Azure).

The local host configures no SDK logger (the app does, in shared/logging_policy.py), so this test
fails if the app stops quieting the SDKs' HTTP logging: their request URLs carry PartitionKeys.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from azure.data.tables import TableServiceClient

from tests.e2e.test_enrollment import blobs, user_row
from tests.e2e.test_reenrollment import wait_run
from tests.e2e.test_revocation import send, termination
from tests.fixtures.app_stack import AppStack, app_env
from tests.fixtures.azurite import Azurite
from tests.fixtures.local_host import start_host
from tests.fixtures.paths import face_bytes

pytestmark = pytest.mark.e2e
ADMIN = "admin-ops"  # wait_run() signs in as this administrator


@pytest.fixture(scope="module")
def stack(azurite: Azurite, face_emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppStack]:
    env = app_env(azurite, face_emulator.endpoint)
    env["FACE_CALLS_PER_SECOND"] = "20"
    log: Path = tmp_path_factory.mktemp("logscan") / "host.log"
    host = start_host(env=env, log_path=log, extra_args=["--lock-seconds", "5", "--no-timers", "--log-level", "INFO"])
    yield AppStack(host, azurite, face_emulator, env)
    host.stop()


class Secrets:
    """Everything of the run that must never reach a log."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, kind: str, value: Any) -> None:
        if value:
            text = str(value)
            self.values[text] = kind
            if unquote(text) != text:
                self.values[unquote(text)] = kind

    def add_upload_slot(self, slot: dict[str, Any], container: str) -> None:
        url = urlsplit(slot["url"])
        blob_name = unquote(url.path.split(f"/{container}/", 1)[1])
        self.add("upload id", slot["uploadId"])
        self.add("blob name", blob_name)
        self.add("session id", blob_name.split("/", 1)[0])
        for sig in parse_qs(url.query).get("sig", []):
            self.add("SAS signature", sig)

    def found_in(self, text: str) -> list[tuple[str, str]]:
        return [(kind, value) for value, kind in self.values.items() if value in text]


def enroll(stack: AppStack, secrets: Secrets, user: str, employee: str, photos: list[str], *, store: bool) -> None:
    stack.consent(user, store_photos=store, employee_id=employee)
    r = stack.call("POST", "enrollment/uploads", user=user, json={"count": len(photos)})
    assert r.status_code == 201, r.text
    for slot, photo in zip(r.json()["uploads"], photos, strict=True):
        secrets.add_upload_slot(slot, stack.env["UPLOADS_CONTAINER"])
        put = requests.put(slot["url"], data=face_bytes(photo), headers={"x-ms-blob-type": "BlockBlob"}, timeout=30)
        assert put.status_code == 201
    stack.wait_status(user, lambda s: s["status"] == "enrolled" and all(p["status"] == "accepted" for p in s["photos"]))


def remember_face_ids(stack: AppStack, secrets: Secrets, users: list[str]) -> None:
    for user in users:
        row = user_row(stack, user) or {}
        for column in ("personId", "newPersonId", "previousPersonId", "keptToken"):
            secrets.add(column, row.get(column))
    for person_id in stack.face.stats()["personIds"]:
        secrets.add("personId", person_id)
    for name in blobs(stack, stack.env["KEPT_PHOTOS_CONTAINER"]):
        secrets.add("kept blob name", name)


def test_a_whole_run_logs_no_identifier(stack: AppStack, tmp_path: Path) -> None:
    secrets = Secrets()
    run = uuid.uuid4().hex[:6]
    users = {name: (f"user-{name}-{run}", f"EMP{name.upper()}{run}") for name in ("ann", "bob", "cat")}
    for user, employee in users.values():
        secrets.add("user key", user)
        secrets.add("employee id", employee)
    secrets.add("user key", ADMIN)

    enroll(stack, secrets, *users["ann"], ["family1-dad/1.jpg"], store=True)
    enroll(stack, secrets, *users["bob"], ["family2-lady/1.jpg"], store=True)
    enroll(stack, secrets, *users["cat"], ["obama/1.jpg"], store=False)
    remember_face_ids(stack, secrets, [u for u, _ in users.values()])

    # Re-enrollment onto a new model.
    started = stack.call("POST", "admin/reenrollments", user=ADMIN, admin=True, json={"recognitionModel": "recognition_05"})
    assert started.status_code == 202, started.text
    assert wait_run(stack, started.json()["runId"])["status"] == "switched"
    remember_face_ids(stack, secrets, [u for u, _ in users.values()])

    # HR termination of ann, a malformed HR event quoting an employee id, bob withdraws, then a real purge.
    send(stack, tmp_path, topic="hr-events", body=termination(users["ann"][1]), message_id=f"hr-{uuid.uuid4().hex}")
    bad = termination("EMPTOOLONG" + run + "x" * 200)
    secrets.add("employee id", bad["data"]["employeeId"])
    send(stack, tmp_path, topic="hr-events", body=bad, message_id=f"hr-{uuid.uuid4().hex}")
    assert stack.call("DELETE", "enrollment", user=users["bob"][0]).status_code == 202
    stack.wait_status(users["ann"][0], lambda s: s["status"] == "revoked")
    stack.wait_status(users["bob"][0], lambda s: s["status"] == "revoked")
    purge = stack.call("POST", "admin/purge", user=ADMIN, admin=True, json={"dryRun": False})
    assert purge.status_code == 200, purge.text
    stack.host.wait_idle(timeout=60)

    log = stack.host.log()
    assert "INFO" in log and "hr_events" in log, "the host log should hold the run's INFO lines"
    leaks = secrets.found_in(log)
    lines = [line for line in log.splitlines() if any(value in line for _, value in leaks)][:5]
    assert not leaks, f"{len(leaks)} identifiers in the log, e.g. {sorted({k for k, _ in leaks})}: {lines}"

    # The audit of the rejected HR event names the field, not the value.
    audit = TableServiceClient.from_connection_string(stack.azurite.connection_string).get_table_client(
        f"{stack.env['TABLE_PREFIX']}audit")
    rejected = [dict(e) for e in audit.list_entities() if e["action"] == "message.rejected"]
    assert rejected and all(bad["data"]["employeeId"] not in str(e) for e in rejected)
    assert any("employeeId" in str(e) for e in rejected)
