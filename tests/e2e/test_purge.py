"""purge_timer end to end through the local host: dry run, stale uploads, orphans both ways,
superseded groups, and the timer itself writing its report to the audit log.

The stack runs with UPLOAD_MAX_AGE_MINUTES=0 and GROUP_GRACE_DAYS=0 so that what the tests create is
due at once. Consent retention (a matter of days) is tested in-process with a clock the test moves:
tests/integration/test_erasure_properties.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from shared.adapters.face_rest import FaceRestClient
from shared.errors import LargePersonGroupNotFound, PersonNotFound
from tests.e2e.test_enrollment import active_group, blobs, user_row
from tests.e2e.test_revocation import rows
from tests.fixtures.app_stack import AppStack, app_env
from tests.fixtures.azurite import Azurite
from tests.fixtures.local_host import start_host
from tests.fixtures.paths import face_bytes

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def purge_stack(azurite: Azurite, face_emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppStack]:
    env = app_env(azurite, face_emulator.endpoint)
    env.update({"UPLOAD_MAX_AGE_MINUTES": "0", "GROUP_GRACE_DAYS": "0"})
    log: Path = tmp_path_factory.mktemp("purgehost") / "host.log"
    host = start_host(env=env, log_path=log, extra_args=["--lock-seconds", "5", "--no-timers"])
    yield AppStack(host, azurite, face_emulator, env)
    host.stop()


def purge(stack: AppStack, *, dry_run: bool) -> dict[str, Any]:
    r = stack.call("POST", "admin/purge", user="admin-1", admin=True, json={"dryRun": dry_run})
    assert r.status_code == 200, r.text
    report: dict[str, Any] = r.json()
    assert report["dryRun"] is dry_run and not report["errors"], report
    return report


def slot(stack: AppStack, user: str) -> dict[str, Any]:
    r = stack.call("POST", "enrollment/uploads", user=user, json={"count": 1})
    assert r.status_code == 201, r.text
    item: dict[str, Any] = r.json()["uploads"][0]
    return item


def test_dry_run_reports_without_deleting_and_is_admin_only(purge_stack: AppStack) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    purge_stack.consent(user, store_photos=False)
    pending = slot(purge_stack, user)
    assert purge_stack.call("POST", "admin/purge", user=user, json={"dryRun": True}).status_code == 403
    report = purge(purge_stack, dry_run=True)
    assert report["staleUploads"] >= 1 and report["rowsRead"]["staleUploads"] >= 1
    assert [u["RowKey"] for u in rows(purge_stack, "uploads", user)] == [pending["uploadId"]]
    # A dry run reports without deleting; the same sweep run for real deletes.
    report = purge(purge_stack, dry_run=False)
    assert report["staleUploads"] >= 1 and report["staleSessions"] >= 1
    assert rows(purge_stack, "uploads", user) == []
    assert rows(purge_stack, "uploadindex", pending["uploadId"]) == []
    assert purge_stack.call("GET", "enrollment", user=user).json()["photos"] == []
    # The slot's SAS is still valid: a photo arriving now is not ours any more and is deleted.
    put = requests.put(pending["url"], data=face_bytes("family1-dad/3.jpg"), headers={"x-ms-blob-type": "BlockBlob"},
                       timeout=30)
    assert put.status_code == 201
    blob_name = pending["url"].split("?")[0].split(f"/{purge_stack.env['UPLOADS_CONTAINER']}/", 1)[1]
    purge_stack.host.wait_for(lambda: blob_name not in blobs(purge_stack, purge_stack.env["UPLOADS_CONTAINER"]))
    # Nothing left is due: a second run reads nothing.
    again = purge(purge_stack, dry_run=False)
    assert again["staleUploads"] == 0 and again["rowsRead"]["staleUploads"] == 0


def test_orphans_both_ways_and_superseded_groups(purge_stack: AppStack) -> None:
    keeper, lost = f"u-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    for user, photo in ((keeper, "family2-lady/1.jpg"), (lost, "family1-dad/1.jpg")):
        purge_stack.consent(user, store_photos=True)
        purge_stack.upload(user, [face_bytes(photo)])
        purge_stack.wait_status(user, lambda s: s["status"] == "enrolled")
    group = active_group(purge_stack)
    client = FaceRestClient(endpoint=purge_stack.face.endpoint, key="k")
    # A person no record knows; a record whose person is gone; a kept photo nobody consented to keep.
    orphan = client.create_person(group, name="p-orphan", user_data=uuid.uuid4().hex)
    lost_row = user_row(purge_stack, lost)
    assert lost_row is not None
    client.delete_person(group, lost_row["personId"])
    kept = BlobServiceClient.from_connection_string(purge_stack.azurite.connection_string).get_container_client(
        purge_stack.env["KEPT_PHOTOS_CONTAINER"])
    kept.upload_blob(f"{uuid.uuid4().hex}/{uuid.uuid4().hex}.jpg", b"not a consented photo")
    # A group superseded by a re-enrollment, past its grace period.
    old_group = f"superseded-{uuid.uuid4().hex[:8]}"
    client.create_group(old_group, name="old", recognition_model="recognition_04")
    TableServiceClient.from_connection_string(purge_stack.azurite.connection_string).get_table_client(
        f"{purge_stack.env['TABLE_PREFIX']}state").create_entity({
            "PartitionKey": "supersededgroup", "RowKey": old_group, "recognitionModel": "recognition_04",
            "supersededAt": (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()})
    dry = purge(purge_stack, dry_run=True)
    assert (dry["orphanPersons"], dry["missingPersons"], dry["orphanKeptPhotos"], dry["supersededGroups"]) == (1, 1, 1, 1)
    assert client.get_person(group, orphan).person_id == orphan
    report = purge(purge_stack, dry_run=False)
    assert (report["orphanPersons"], report["missingPersons"], report["orphanKeptPhotos"],
            report["supersededGroups"]) == (1, 1, 1, 1)
    assert report["orphanScan"]["facePersonsListed"] >= 2 and report["orphanScan"]["facePages"] >= 1
    with pytest.raises(PersonNotFound):
        client.get_person(group, orphan)
    with pytest.raises(LargePersonGroupNotFound):
        client.get_group(old_group)
    remaining = blobs(purge_stack, purge_stack.env["KEPT_PHOTOS_CONTAINER"])
    assert len(remaining) == 2 and str(lost_row["keptToken"]) in str(remaining)  # the two consented photos
    # The user whose person vanished sees an actionable failure; the other is untouched.
    status = purge_stack.call("GET", "enrollment", user=lost).json()
    assert status["status"] == "failed" and "enroll again" in status["message"]
    assert purge_stack.call("GET", "enrollment", user=keeper).json()["status"] == "enrolled"
    # Enrolling again clears the failure.
    purge_stack.upload(lost, [face_bytes("family1-dad/2.jpg")])
    purge_stack.wait_status(lost, lambda s: s["status"] == "enrolled")
    assert purge(purge_stack, dry_run=True)["orphanPersons"] == 0


def test_timer_fires_and_writes_the_report_to_the_audit_log(purge_stack: AppStack) -> None:
    r = requests.post(f"{purge_stack.host.url}/admin/functions/purge_timer", json={}, timeout=60)
    assert r.status_code == 202, r.text
    purge_stack.host.wait_idle()
    day = datetime.now(timezone.utc).strftime("%Y%m%d")
    audit = rows(purge_stack, "audit", day)
    reports = [a for a in audit if a["action"] == "purge.report" and a["actor"] == "purge:timer"]
    assert reports, audit[-5:]
    assert '"staleUploads"' in reports[-1]["details_json"] and '"rowsRead"' in reports[-1]["details_json"]
    assert [i for i in purge_stack.host.invocations("purge_timer") if i["ok"]]


@pytest.mark.parametrize("mode", ["in-process", "host"])
def test_cli_dry_run(purge_stack: AppStack, mode: str) -> None:
    import json
    import os
    import subprocess
    import sys

    from tests.fixtures.azurite import ROOT

    args = ["--host", purge_stack.host.url] if mode == "host" else []
    env = {**os.environ, **purge_stack.env}
    out = subprocess.run([sys.executable, "-m", "local.purge", "--dry-run", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["dryRun"] is True and report["trigger"] == ("admin" if mode == "host" else "cli")
