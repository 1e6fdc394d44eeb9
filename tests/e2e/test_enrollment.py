"""Consent, SAS uploads and enrollment end to end: local host, Azurite and the Face emulator, real photos."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from shared.adapters.face_rest import FaceRestClient
from shared.services.audit import keyed_name
from tests.fixtures.app_stack import AppStack
from tests.fixtures.paths import face_bytes

pytestmark = pytest.mark.e2e


def user_row(stack: AppStack, user: str) -> dict[str, Any] | None:
    tables = TableServiceClient.from_connection_string(stack.azurite.connection_string)
    client = tables.get_table_client(f"{stack.env['TABLE_PREFIX']}users")
    rows = list(client.query_entities("PartitionKey eq @pk", parameters={"pk": user}))
    return dict(rows[0]) if rows else None


def active_group(stack: AppStack) -> str:
    tables = TableServiceClient.from_connection_string(stack.azurite.connection_string)
    row = tables.get_table_client(f"{stack.env['TABLE_PREFIX']}state").get_entity("group", "active")
    return str(row["groupId"])


def blobs(stack: AppStack, container: str) -> list[str]:
    c = BlobServiceClient.from_connection_string(stack.azurite.connection_string).get_container_client(container)
    return [b.name for b in c.list_blobs()] if c.exists() else []


def identify(stack: AppStack, photo: bytes) -> list[str]:
    client = FaceRestClient(endpoint=stack.face.endpoint, key="k")
    faces = client.detect(photo, recognition_model="recognition_04")
    assert faces, "the test photo should have a face"
    result = client.identify(active_group(stack), [str(faces[0].face_id)], max_candidates=1)
    return [c.person_id for c in result[0].candidates]


def test_identity_and_mfa_are_required(app_stack: AppStack) -> None:
    assert app_stack.call("GET", "enrollment").status_code == 401
    terms = app_stack.call("GET", "consent/terms", user="u-mfa").json()
    r = app_stack.call("POST", "consent", user="u-mfa", mfa=False,
                       json={"termsVersion": terms["termsVersion"], "accepted": True, "storePhotos": False})
    assert r.status_code == 403 and "multi-factor" in r.json()["error"]["message"]
    r = app_stack.call("POST", "enrollment/uploads", user="u-mfa", mfa=False, json={"count": 1})
    assert r.status_code == 403


def test_terms_and_consent_rules(app_stack: AppStack) -> None:
    terms = app_stack.call("GET", "consent/terms", user="u-terms").json()
    assert terms["termsVersion"] and terms["purposes"] and terms["text"] and terms["storePhotosText"]
    stale = app_stack.call("POST", "consent", user="u-terms",
                           json={"termsVersion": "1999-01", "accepted": True, "storePhotos": False})
    assert stale.status_code == 409 and terms["termsVersion"] in stale.json()["error"]["message"]
    bad = app_stack.call("POST", "consent", user="u-terms", json={"termsVersion": terms["termsVersion"], "accepted": True})
    assert bad.status_code == 400
    no_consent = app_stack.call("POST", "enrollment/uploads", user="u-terms", json={"count": 1})
    assert no_consent.status_code == 403 and "consent required" in no_consent.json()["error"]["message"]
    assert app_stack.call("GET", "enrollment", user="u-terms").json()["status"] == "none"


def test_enrollment_with_real_photos_and_identification(app_stack: AppStack) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    app_stack.consent(user, store_photos=True)
    ids = app_stack.upload(user, [face_bytes("family1-dad/1.jpg"), face_bytes("family1-dad/2.jpg")])
    status = app_stack.wait_status(user, lambda s: s["status"] == "enrolled"
                                   and all(p["status"] == "accepted" for p in s["photos"]))
    assert {p["uploadId"] for p in status["photos"]} == set(ids)
    assert all(p["status"] == "accepted" for p in status["photos"])
    assert status["storePhotos"] is True and status["consent"]["termsVersion"]
    row = user_row(app_stack, user)
    assert row and row["personId"]
    # An unseen photo of the user is identified as the user's person; a stranger is nobody.
    assert identify(app_stack, face_bytes("family1-dad/3.jpg")) == [row["personId"]]
    assert identify(app_stack, face_bytes("obama/1.jpg")) == []
    # Kept photos went to the kept container (storePhotos); the uploads are gone.
    assert len([b for b in blobs(app_stack, app_stack.env["KEPT_PHOTOS_CONTAINER"]) if b.startswith(row["keptToken"])]) == 2
    assert not [b for b in blobs(app_stack, app_stack.env["UPLOADS_CONTAINER"]) if b.endswith(tuple(ids))]


@pytest.mark.parametrize(("photo", "code_hint"), [
    ("nonfaces/1.jpg", "face"),
    ("multi/1.jpg", "only you"),
    ("quality/blurry.jpg", "blur"),
])
def test_bad_photos_are_rejected_with_actionable_reasons(app_stack: AppStack, photo: str, code_hint: str) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    app_stack.consent(user, store_photos=True)
    (upload_id,) = app_stack.upload(user, [face_bytes(photo)])
    status = app_stack.wait_status(user, lambda s: s["photos"] and s["photos"][0]["status"] == "rejected")
    reasons = status["photos"][0]["reasons"]
    assert reasons and all(r.endswith(".") for r in reasons)
    assert any(code_hint in r.lower() for r in reasons), reasons
    assert status["status"] == "failed"
    row = user_row(app_stack, user)
    assert row is not None and not row.get("personId")
    assert not [b for b in blobs(app_stack, app_stack.env["KEPT_PHOTOS_CONTAINER"]) if b.startswith(row["keptToken"])]
    assert not [b for b in blobs(app_stack, app_stack.env["UPLOADS_CONTAINER"]) if b.endswith(upload_id)]


def test_not_an_image_and_tiny_file_are_rejected(app_stack: AppStack) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    app_stack.consent(user, store_photos=False)
    app_stack.upload(user, [b"%PDF-1.4 not a photo " * 100, b"\xff\xd8tiny"])
    status = app_stack.wait_status(user, lambda s: all(p["status"] == "rejected" for p in s["photos"]))
    texts = " ".join(r for p in status["photos"] for r in p["reasons"]).lower()
    assert "jpeg, png, bmp or gif" in texts and "too small" in texts


def test_sas_is_create_only_and_scoped_to_one_blob(app_stack: AppStack) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    app_stack.consent(user, store_photos=False)
    slot = app_stack.call("POST", "enrollment/uploads", user=user, json={"count": 1}).json()["uploads"][0]
    url: str = slot["url"]
    base, _, token = url.partition("?")
    other = base.rsplit("/", 1)[0] + "/someone-else?" + token
    assert requests.put(other, data=b"x" * 2000, headers={"x-ms-blob-type": "BlockBlob"}, timeout=10).status_code == 403
    assert requests.get(url, timeout=10).status_code == 403
    assert requests.delete(url, timeout=10).status_code == 403
    assert "sp=c&" in url or url.endswith("sp=c") or "sp=c" in token


def test_duplicate_and_late_deliveries_change_nothing(app_stack: AppStack) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    app_stack.consent(user, store_photos=False)
    (upload_id,) = app_stack.upload(user, [face_bytes("family2-lady/1.jpg")])
    app_stack.wait_status(user, lambda s: s["status"] == "enrolled" and s["photos"][0]["status"] == "accepted")
    row = user_row(app_stack, user)
    assert row is not None
    client = FaceRestClient(endpoint=app_stack.face.endpoint, key="k")
    faces_before = client.get_person(active_group(app_stack), row["personId"]).persisted_face_ids
    # Event Grid delivers the same BlobCreated again (the blob is gone by now, and even if it
    # were re-uploaded under the same name the upload is already final).
    status_url = f"{app_stack.host.url}/runtime/webhooks/blobs?functionName=Host.Functions.enroll"
    session = app_stack.call("GET", "enrollment", user=user).json()["photos"][0]
    assert session["uploadId"] == upload_id
    event = [{"id": str(uuid.uuid4()), "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2026-01-01T00:00:00Z",
              "subject": f"/blobServices/default/containers/{app_stack.env['UPLOADS_CONTAINER']}/blobs/x/{upload_id}",
              "data": {"url": "http://x"}, "dataVersion": ""}]
    r = requests.post(status_url, json=event, headers={"aeg-event-type": "Notification"}, timeout=10)
    assert r.status_code == 202
    after = client.get_person(active_group(app_stack), row["personId"]).persisted_face_ids
    assert after == faces_before and len(after) == 1
    assert user_row(app_stack, user)["personId"] == row["personId"]  # type: ignore[index]


def test_unknown_blob_is_deleted(app_stack: AppStack) -> None:
    container = BlobServiceClient.from_connection_string(app_stack.azurite.connection_string).get_container_client(
        app_stack.env["UPLOADS_CONTAINER"])
    if not container.exists():
        container.create_container()
    container.upload_blob("not-a-session/stray.jpg", face_bytes("obama/1.jpg"))
    app_stack.host.wait_for(lambda: "not-a-session/stray.jpg" not in blobs(app_stack, app_stack.env["UPLOADS_CONTAINER"]))


def shrunk(rel: str, width: int) -> bytes:
    from io import BytesIO

    from PIL import Image

    image = Image.open(BytesIO(face_bytes(rel))).convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)))
    out = BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def test_tiny_face_and_too_large_file_are_rejected(app_stack: AppStack) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    app_stack.consent(user, store_photos=False)
    too_large = b"\xff\xd8\xff\xe0" + b"\0" * (6 * 1024 * 1024 + 10)
    app_stack.upload(user, [shrunk("family1-dad/1.jpg", 110), too_large])
    status = app_stack.wait_status(user, lambda s: all(p["status"] == "rejected" for p in s["photos"]))
    texts = " ".join(r for p in status["photos"] for r in p["reasons"]).lower()
    assert "closer" in texts and "larger than 6 mb" in texts


def test_admin_quality_override_is_audited_and_never_skips_one_face(app_stack: AppStack) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    app_stack.consent(user, store_photos=False)
    app_stack.upload(user, [face_bytes("quality/blurry.jpg")])
    app_stack.wait_status(user, lambda s: s["photos"] and s["photos"][0]["status"] == "rejected")
    body = {"reason": "camera at reception is blurry; identity checked in person", "expiresInHours": 2}
    assert app_stack.call("POST", f"admin/users/{user}/quality-override", user=user, json=body).status_code == 403
    bad = app_stack.call("POST", f"admin/users/{user}/quality-override", user="admin-1", admin=True, json={"reason": ""})
    assert bad.status_code == 400
    granted = app_stack.call("POST", f"admin/users/{user}/quality-override", user="admin-1", admin=True, json=body)
    assert granted.status_code == 201 and granted.json()["expiresAt"]
    app_stack.upload(user, [face_bytes("quality/blurry.jpg"), face_bytes("multi/1.jpg")])
    status = app_stack.wait_status(user, lambda s: len(s["photos"]) == 3 and all(
        p["status"] in ("accepted", "rejected") for p in s["photos"]))
    statuses = sorted(p["status"] for p in status["photos"])
    assert statuses == ["accepted", "rejected", "rejected"]  # the blurry one passes; two faces never do
    audit = TableServiceClient.from_connection_string(app_stack.azurite.connection_string).get_table_client(
        f"{app_stack.env['TABLE_PREFIX']}audit")
    actions = [(e["action"], e.get("subject")) for e in audit.list_entities()]
    named = keyed_name(user, app_stack.settings.audit_hash_key)  # audit rows name users by a keyed hash
    assert ("quality.override.granted", named) in actions and ("quality.overridden", named) in actions


def test_turning_store_photos_off_deletes_kept_photos(app_stack: AppStack) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    app_stack.consent(user, store_photos=True)
    app_stack.upload(user, [face_bytes("family2-man/1.jpg")])
    app_stack.wait_status(user, lambda s: s["photos"][0]["status"] == "accepted")
    row = user_row(app_stack, user)
    assert row is not None
    kept = app_stack.env["KEPT_PHOTOS_CONTAINER"]
    assert [b for b in blobs(app_stack, kept) if b.startswith(row["keptToken"])]
    app_stack.consent(user, store_photos=False)
    assert not [b for b in blobs(app_stack, kept) if b.startswith(row["keptToken"])]
    assert app_stack.call("GET", "enrollment", user=user).json()["storePhotos"] is False


def test_no_person_id_leaks_anywhere(app_stack: AppStack) -> None:
    """Runs last in this module: every personId the emulator issued is searched for everywhere."""
    person_ids = app_stack.face.stats()["personIds"]
    assert person_ids, "the tests above should have created persons"
    haystacks = {"host log": app_stack.host.log(), "responses": "\n".join(app_stack.responses)}
    service = BlobServiceClient.from_connection_string(app_stack.azurite.connection_string)
    names = []
    for c in service.list_containers():
        for b in service.get_container_client(c.name).list_blobs(include=["metadata"]):
            names.append(b.name + json.dumps(b.metadata or {}))
    haystacks["blob names and metadata"] = "\n".join(names)
    queues = QueueServiceClient.from_connection_string(app_stack.azurite.connection_string)
    messages = [m.content for q in queues.list_queues()
                for m in queues.get_queue_client(q.name).peek_messages(max_messages=32)]
    haystacks["queued messages"] = "\n".join(messages)
    tables = TableServiceClient.from_connection_string(app_stack.azurite.connection_string)
    prefix = app_stack.env["TABLE_PREFIX"]
    # The users table and the person-attempt tracking table (every person is tracked until deleted)
    # hold personIds by design; every other table (audit, uploads, ledger...) must not.
    by_design = {f"{prefix}users", f"{prefix}personattempts"}
    other = [json.dumps(dict(e), default=str) for t in tables.list_tables()
             if t.name.startswith(prefix) and t.name not in by_design
             for e in tables.get_table_client(t.name).list_entities()]
    haystacks["tables other than users"] = "\n".join(other)
    for name, text in haystacks.items():
        for pid in person_ids:
            assert pid not in text, f"a personId leaked into the {name}"
