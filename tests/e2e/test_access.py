"""Issue 15 end to end through the local host (Azurite, the Face emulator): the access bundle, one's own
kept photo (a read-only SAS that works and nothing more) and receipts, the admin export as a download,
declines, the published retention policy, and re-enrolling (replacing photos) at any time."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from shared.adapters.face_rest import FaceRestClient
from shared.adapters.retention_policy import load_policy
from tests.e2e.test_enrollment import active_group, identify, user_row
from tests.fixtures.app_stack import AppStack
from tests.fixtures.paths import face_bytes

pytestmark = pytest.mark.e2e


def _user() -> str:
    return f"acc-{uuid.uuid4().hex[:10]}"


def _enroll(stack: AppStack, user: str, photos: list[str]) -> dict[str, object]:
    stack.consent(user, store_photos=True)
    stack.upload(user, [face_bytes(p) for p in photos])
    return stack.wait_status(user, lambda s: s["status"] == "enrolled" and all(p["status"] == "accepted" for p in s["photos"]))


def test_policy_is_served_signed_in_without_mfa_and_linked_from_the_terms(app_stack: AppStack) -> None:
    user = _user()
    assert app_stack.call("GET", "privacy/policy").status_code == 401  # signed-in only
    r = app_stack.call("GET", "privacy/policy", user=user, mfa=False)
    assert r.status_code == 200, r.text
    policy = load_policy()
    assert r.json()["version"] == policy.version and r.json()["sha256"] == policy.sha256
    assert {k["kind"] for k in r.json()["kinds"]} >= {"faceTemplate", "keptPhotos", "uploads", "auditLog"}
    terms = app_stack.call("GET", "consent/terms", user=user, mfa=False).json()
    assert terms["retentionPolicy"] == {"href": "/api/privacy/policy", "version": policy.version, "sha256": policy.sha256}


def test_me_needs_mfa_and_holds_everything_but_identifiers(app_stack: AppStack) -> None:
    user = _user()
    assert app_stack.call("GET", "me", user=user, mfa=False).status_code == 403
    status = _enroll(app_stack, user, ["family1-dad/1.jpg"])
    row = user_row(app_stack, user)
    assert row is not None
    r = app_stack.call("GET", "me", user=user)
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert row["personId"] not in r.text and row["keptToken"] not in r.text  # never a personId or a locator
    (entry,) = bundle["consentLedger"]
    terms = app_stack.call("GET", "consent/terms", user=user).json()
    assert entry["termsVersion"] == terms["termsVersion"] and entry["termsSha256"] == terms["sha256"]
    assert bundle["enrollment"]["status"] == "enrolled" == status["status"]
    assert bundle["keptPhotos"]["count"] == 1 and bundle["keptPhotos"]["photos"][0]["keptAt"]
    assert [p["status"] for p in bundle["photos"]] == ["accepted"]
    assert {"consent.granted", "uploads.created", "person.created"} <= {a["action"] for a in bundle["audit"]}
    # The kept photo: a read-only link of the caller's own that works, and nothing more.
    photo_id = bundle["keptPhotos"]["photos"][0]["photoId"]
    link = app_stack.call("GET", f"me/photos/{photo_id}", user=user)
    assert link.status_code == 200, link.text
    url = link.json()["url"]
    got = requests.get(url, timeout=30)
    assert got.status_code == 200 and got.content[:2] == b"\xff\xd8"  # a JPEG
    assert requests.put(url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=30).status_code == 403
    assert requests.delete(url, timeout=30).status_code == 403
    assert app_stack.call("GET", f"me/photos/{photo_id}", user=_user()).status_code == 404  # someone else
    assert app_stack.call("GET", "me/photos/a%2Fb", user=user).status_code == 404  # route_key refuses it


def test_decline_is_recorded_and_withdrawing_stays_delete(app_stack: AppStack) -> None:
    user = _user()
    version = app_stack.call("GET", "consent/terms", user=user).json()["termsVersion"]
    r = app_stack.call("POST", "consent", user=user, json={"termsVersion": version, "accepted": False})
    assert r.status_code == 201 and r.json()["accepted"] is False, r.text
    assert app_stack.call("GET", "enrollment", user=user).json()["status"] == "declined"
    ledger = app_stack.call("GET", "me", user=user).json()["consentLedger"]
    assert [e["kind"] for e in ledger] == ["decline"]
    _enroll(app_stack, user, ["family2-man/2.jpg"])  # a change of mind
    again = app_stack.call("POST", "consent", user=user, json={"termsVersion": version, "accepted": False})
    assert again.status_code == 409 and again.json()["error"]["code"] == "ConsentInForce"


def test_receipts_and_bundle_after_erasure_and_the_admin_export(app_stack: AppStack) -> None:
    user = _user()
    _enroll(app_stack, user, ["family2-man/1.jpg"])
    assert app_stack.call("DELETE", "enrollment", user=user).status_code == 202
    status = app_stack.wait_status(user, lambda s: s["status"] == "revoked" and s.get("receiptId"))
    receipt_id = status["receiptId"]
    deadline = time.monotonic() + 60
    while True:  # the id is known from the tombstone; the receipt exists once the erasure is verified
        mine = app_stack.call("GET", f"me/receipts/{receipt_id}", user=user)
        if mine.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert mine.status_code == 200 and mine.json()["verified"] is True, mine.text
    assert app_stack.call("GET", f"me/receipts/{receipt_id}", user=_user()).status_code == 404
    bundle = app_stack.call("GET", "me", user=user).json()
    assert [r["receiptId"] for r in bundle["receipts"]] == [receipt_id]
    assert bundle["photos"] == [] and bundle["keptPhotos"]["count"] == 0
    assert app_stack.call("GET", f"admin/users/{user}/export", user="admin-x", admin=False).status_code == 403
    export = app_stack.call("GET", f"admin/users/{user}/export", user="admin-x", admin=True)
    assert export.status_code == 200, export.text
    disposition = export.headers.get("Content-Disposition", "")
    assert disposition.startswith("attachment;") and user not in disposition
    body = json.loads(export.content)
    assert body["userKey"] == user and [r["receiptId"] for r in body["receipts"]] == [receipt_id]
    again = app_stack.call("GET", "me", user=user).json()
    assert "access.exported" in {a["action"] for a in again["audit"]}


def test_re_enroll_replaces_the_photos_after_the_new_faces_are_trained(app_stack: AppStack) -> None:
    user = _user()
    _enroll(app_stack, user, ["family2-lady/1.jpg"])
    before = app_stack.call("GET", "me", user=user).json()
    (old_photo,) = [p["photoId"] for p in before["keptPhotos"]["photos"]]
    r = app_stack.call("POST", "enrollment/uploads", user=user, json={"count": 1, "replace": True})
    assert r.status_code == 201, r.text
    footprint = app_stack.call("GET", f"admin/users/{user}/footprint", user="admin-y", admin=True).json()
    assert footprint["replacement"]["pending"] is True  # an admin sees the replacement pending
    slot = r.json()["uploads"][0]
    put = requests.put(slot["url"], data=face_bytes("family2-lady/2.jpg"), headers={"x-ms-blob-type": "BlockBlob"},
                       timeout=30)
    assert put.status_code == 201
    done = app_stack.wait_status(user, lambda s: "replacement" not in s and s["status"] == "enrolled"
                                 and {p["uploadId"]: p["status"] for p in s["photos"]}.get(slot["uploadId"]) == "accepted")
    assert {p["uploadId"]: p["status"] for p in done["photos"]}[old_photo] == "replaced"
    after = app_stack.call("GET", "me", user=user).json()
    assert [p["photoId"] for p in after["keptPhotos"]["photos"]] == [slot["uploadId"]]
    row = user_row(app_stack, user)
    assert row is not None
    person = FaceRestClient(endpoint=app_stack.face.endpoint, key="k").get_person(active_group(app_stack), row["personId"])
    assert len(person.persisted_face_ids) == 1  # the old face is gone, the new one is in
    assert identify(app_stack, face_bytes("family2-lady/3.jpg")) == [row["personId"]]
    assert app_stack.call("GET", f"admin/users/{user}/footprint", user="admin-y", admin=True).json()[
        "replacement"] == {"pending": False}
