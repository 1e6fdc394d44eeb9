"""A re-enrollment run survives its host being killed again and again: every user re-enrolled exactly once."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.face_rest import FaceRestClient
from tests.e2e.test_enrollment import active_group, user_row
from tests.e2e.test_reenrollment import ADMIN, enroll
from tests.fixtures.app_stack import AppStack, app_env
from tests.fixtures.azurite import Azurite
from tests.fixtures.local_host import start_host

pytestmark = pytest.mark.e2e

PHOTOS = [["family1-dad/1.jpg", "family1-dad/2.jpg"], ["family2-man/1.jpg", "family2-man/2.jpg"],
          ["family2-lady/1.jpg", "family2-lady/2.jpg"], ["obama/1.jpg", "obama/3.jpg"]]


def test_run_killed_at_several_points_and_resumed(azurite: Azurite, face_emulator: Any, tmp_path: Path) -> None:
    env = app_env(azurite, face_emulator.endpoint)
    env["FACE_CALLS_PER_SECOND"] = "3"
    log = tmp_path / "host.log"
    args = ["--lock-seconds", "2", "--no-timers"]
    host = start_host(env=env, log_path=log, extra_args=args)
    stack = AppStack(host, azurite, face_emulator, env)
    users = [f"k{i}-{uuid.uuid4().hex[:6]}" for i in range(len(PHOTOS))]
    for user, photos in zip(users, PHOTOS, strict=True):
        enroll(stack, user, photos, store=True)
    accepted = {u: [p for p in stack.call("GET", "enrollment", user=u).json()["photos"] if p["status"] == "accepted"]
                for u in users}
    started = stack.call("POST", "admin/reenrollments", user=ADMIN, admin=True, json={"recognitionModel": "recognition_05"})
    assert started.status_code == 202
    run_id = started.json()["runId"]
    try:
        # Kill the host (no settlement, no cleanup) at several points of the run, then start it again.
        for delay in (0.4, 1.5, 2.5, 1.0):
            time.sleep(delay)
            stack.host.stop(kill=True)
            stack.host = start_host(env=env, log_path=log, extra_args=args)
        resumed = stack.call("POST", f"admin/reenrollments/{run_id}/resume", user=ADMIN, admin=True)
        assert resumed.status_code in (202, 409)  # 409 if it already finished meanwhile
        deadline = time.monotonic() + 150
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            run = stack.call("GET", f"admin/reenrollments/{run_id}", user=ADMIN, admin=True).json()
            if run["status"] in ("switched", "failed"):
                break
            time.sleep(0.5)
        assert run["status"] == "switched", f"{run}\n{stack.host.log()[-3000:]}"
        assert run["done"] == len(users) and run["failed"] == 0 and run["skipped"] == 0
        group = active_group(stack)
        client = FaceRestClient(endpoint=face_emulator.endpoint, key="k")
        persons = {p.person_id: p for p in client.iter_persons(group)}
        recorded = {u: user_row(stack, u)["newPersonId"] for u in users}  # type: ignore[index]
        # Exactly once: one person per user, carrying exactly that user's kept photos, no duplicate face.
        for user in users:
            person = persons[recorded[user]]
            assert len(person.persisted_face_ids) == len(accepted[user]), user
        with_faces = [p for p in persons.values() if p.persisted_face_ids]
        assert sorted(p.person_id for p in with_faces) == sorted(recorded.values())
        # Anything else a crash left behind has no faces (never identifiable; purge_timer deletes it).
        assert all(not p.persisted_face_ids for pid, p in persons.items() if pid not in recorded.values())
    finally:
        stack.host.stop()
