"""Re-enrollment after a model update, end to end with real photos: recognition_04 → recognition_05."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from shared.adapters.face_rest import FaceRestClient
from shared.errors import FaceBadRequest
from tests.e2e.test_enrollment import active_group, user_row
from tests.fixtures.app_stack import AppStack, app_env
from tests.fixtures.azurite import Azurite
from tests.fixtures.local_host import start_host
from tests.fixtures.paths import face_bytes

pytestmark = pytest.mark.e2e
ADMIN = "admin-ops"


@pytest.fixture(scope="module")
def stack(azurite: Azurite, face_emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppStack]:
    env = app_env(azurite, face_emulator.endpoint)
    env["FACE_CALLS_PER_SECOND"] = "4"  # slow enough that a revocation lands mid-run
    log: Path = tmp_path_factory.mktemp("reenroll") / "host.log"
    host = start_host(env=env, log_path=log, extra_args=["--lock-seconds", "5", "--no-timers"])
    yield AppStack(host, azurite, face_emulator, env)
    host.stop()


def enroll(stack: AppStack, user: str, photos: list[str], *, store: bool) -> dict[str, Any]:
    stack.consent(user, store_photos=store)
    stack.upload(user, [face_bytes(p) for p in photos])
    stack.wait_status(user, lambda s: s["status"] == "enrolled" and all(p["status"] == "accepted" for p in s["photos"]))
    row = user_row(stack, user)
    assert row is not None
    return row


def wait_run(stack: AppStack, run_id: str, *, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = stack.call("GET", f"admin/reenrollments/{run_id}", user=ADMIN, admin=True).json()
        if last.get("status") in ("switched", "failed"):
            return last
        time.sleep(0.5)
    raise AssertionError(f"run not finished: {last}\n{stack.host.log()[-3000:]}")


def identify_new(stack: AppStack, photo: str, model: str) -> list[str]:
    client = FaceRestClient(endpoint=stack.face.endpoint, key="k")
    faces = client.detect(face_bytes(photo), recognition_model=model)
    result = client.identify(active_group(stack), [str(faces[0].face_id)], max_candidates=1)
    return [c.person_id for c in result[0].candidates]


def test_model_update_reenrolls_kept_photos_and_asks_the_rest(stack: AppStack) -> None:
    a, b, c, d = (f"{n}-{uuid.uuid4().hex[:6]}" for n in "abcd")
    enroll(stack, a, ["family1-dad/1.jpg", "family1-dad/2.jpg"], store=True)
    enroll(stack, b, ["family2-lady/1.jpg"], store=True)
    enroll(stack, c, ["obama/1.jpg"], store=False)
    enroll(stack, d, ["family2-man/1.jpg", "family2-man/2.jpg"], store=True)
    old_group = active_group(stack)
    # Non-admins cannot start a run; a bad model is a 400.
    assert stack.call("POST", "admin/reenrollments", user=a, json={"recognitionModel": "recognition_05"}).status_code == 403
    assert stack.call("POST", "admin/reenrollments", user=ADMIN, admin=True, json={"recognitionModel": "x"}).status_code == 400

    started = stack.call("POST", "admin/reenrollments", user=ADMIN, admin=True, json={"recognitionModel": "recognition_05"})
    assert started.status_code == 202, started.text
    run_id = started.json()["runId"]
    second = stack.call("POST", "admin/reenrollments", user=ADMIN, admin=True, json={"recognitionModel": "recognition_05"})
    assert second.status_code == 409 and second.json()["error"]["runId"] == run_id
    # b revokes while the run is going.
    assert stack.call("DELETE", "enrollment", user=b).status_code == 202

    final = wait_run(stack, run_id)
    assert final["status"] == "switched", final
    assert final["done"] == 2 and final["failed"] == 0
    new_group = active_group(stack)
    assert new_group != old_group
    rows = {u: user_row(stack, u) for u in (a, c, d)}
    # Each user with kept photos is identified in the new group, with faces detected under the new model.
    for user, photo in ((a, "family1-dad/3.jpg"), (d, "family2-man/3.jpg")):
        assert identify_new(stack, photo, "recognition_05") == [rows[user]["newPersonId"]]  # type: ignore[index]
    # A face detected under the old model is never used with the new group.
    with pytest.raises(FaceBadRequest):
        identify_new(stack, "family1-dad/3.jpg", "recognition_04")
    # The others are asked to enroll again.
    status_c = stack.call("GET", "enrollment", user=c).json()
    assert status_c["status"] == "reenrollRequired" and "enroll again" in status_c["message"]
    assert stack.call("GET", "enrollment", user=a).json()["status"] == "enrolled"
    # The revocation was honoured: b has nothing in the new group.
    client = FaceRestClient(endpoint=stack.face.endpoint, key="k")
    with_faces = {p.person_id for p in client.iter_persons(new_group) if p.persisted_face_ids}
    assert with_faces == {rows[a]["newPersonId"], rows[d]["newPersonId"]}  # type: ignore[index]
    assert stack.call("GET", "enrollment", user=b).json()["status"] == "revoked"
    # The old group is kept for the grace period, marked superseded for purge_timer.
    state = TableServiceClient.from_connection_string(stack.azurite.connection_string).get_table_client(
        f"{stack.env['TABLE_PREFIX']}state")
    assert state.get_entity("supersededgroup", old_group)["supersededBy"] == run_id
    # c enrolls again, into the new group.
    stack.upload(c, [face_bytes("obama/2.jpg")])
    stack.wait_status(c, lambda s: s["status"] == "enrolled", timeout=60)
    assert user_row(stack, c)["groupId"] == new_group  # type: ignore[index]
    # The run is over: a new run may start (and is refused only because the group is already on the model).
    again = stack.call("POST", "admin/reenrollments", user=ADMIN, admin=True, json={"recognitionModel": "recognition_05"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "AlreadyOnModel"
