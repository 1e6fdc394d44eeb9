"""Pure logic of the Face API emulator: calibration, model rotations, snapshots, store paging, pose."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from local.face_api.model import (
    THRESHOLD,
    confidence_from_distance,
    distance_for_confidence,
    rotation_for,
    synthetic_descriptor,
    to_model_space,
)
from local.face_api.quality import head_pose
from local.face_api.store import Snapshot, Store


def test_confidence_calibration() -> None:
    assert abs(float(confidence_from_distance(THRESHOLD)) - 0.5) < 1e-9
    assert float(confidence_from_distance(0.44)) >= 0.65  # worst measured same-identity pair
    assert float(confidence_from_distance(0.48)) < 0.5  # closest measured different pair (siblings)
    for c in (0.1, 0.5, 0.9):
        assert abs(float(confidence_from_distance(distance_for_confidence(c))) - c) < 1e-9


def test_model_rotations_keep_distances_within_a_model_only() -> None:
    a, b = synthetic_descriptor(b"a"), synthetic_descriptor(b"b")
    r = rotation_for("recognition_05")
    assert np.allclose(r @ r.T, np.eye(128), atol=1e-5)
    assert np.isclose(np.linalg.norm(to_model_space(a, "recognition_05") - to_model_space(b, "recognition_05")),
                      np.linalg.norm(a - b), atol=1e-5)
    cross = np.linalg.norm(to_model_space(a, "recognition_04") - to_model_space(a, "recognition_05"))
    assert cross > 1.0  # the same face under two models is far apart: never a match
    assert np.array_equal(rotation_for("recognition_05"), rotation_for("recognition_05"))


def test_snapshot_identify_takes_min_over_faces_and_caps() -> None:
    rng = np.random.default_rng(1)
    base = rng.standard_normal((5, 128)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    # person 0 has 2 faces (one near the query), persons 1..3 one face each
    matrix = np.vstack([base[4], base[0], base[1], base[2], base[3]])
    snap = Snapshot.build(matrix, np.array([0, 2, 3, 4]), ["p0", "p1", "p2", "p3"])
    q = base[0] + 0.01
    [res] = snap.identify(q[None, :], 10, 0.5)
    assert [p for p, _ in res] == ["p0"] and res[0][1] > 0.99
    [res] = snap.identify(q[None, :], 2, 0.0)
    assert len(res) == 2 and res[0][0] == "p0"
    empty = Snapshot.build(np.zeros((0, 128), np.float32), np.array([], dtype=np.int64), [])
    assert empty.identify(q[None, :], 10, 0.5) == [[]]


def test_store_paging_and_training(tmp_path: Path) -> None:
    store = Store(tmp_path, train_base_s=0.0, train_per_face_s=0.0)
    store.create_group("g", "g", None, "recognition_04")
    ids = [store.create_person("g", f"p{i}", None) for i in range(30)]
    store.delete_person("g", ids[3])
    want = sorted(set(ids) - {ids[3]})
    got = [p.person_id for p in store.list_persons("g", None, 1000)]
    assert got == want
    assert [p.person_id for p in store.list_persons("g", want[9], 5)] == want[10:15]
    store.add_face("g", ids[0], synthetic_descriptor(b"x"), None)
    store.start_training("g")
    assert store.wait_training("g") == "succeeded"
    [[(pid, conf)]] = store.identify("g", synthetic_descriptor(b"x")[None, :], 5, 0.5)
    assert pid == ids[0] and conf > 0.99
    store.close()
    again = Store(tmp_path)
    assert sorted(again.groups["g"].persons) == want
    snap = again.groups["g"].snapshot
    assert snap is not None and snap.person_ids == [ids[0]]
    again.close()


def test_head_pose_roll_sign() -> None:
    # a frontal-ish 68-point layout from the generic model, rotated 20 degrees clockwise in the image
    pts = np.zeros((68, 2))
    layout = {30: (0, 0), 8: (0, 330), 36: (-225, -170), 45: (225, -170), 48: (-150, 150), 54: (150, 150)}
    for i, (x, y) in layout.items():
        pts[i] = (x, y)
    pitch, roll, yaw = head_pose(pts)
    assert abs(roll) < 1 and abs(yaw) < 1 and abs(pitch) < 10
    a = np.radians(20)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    _, roll, _ = head_pose(pts @ rot.T)
    assert 15 < roll < 25


# --- the Limited Access knob ------------------------------------------------------------------------
def _emulator(**kw: object) -> object:
    from local.face_api.server import Emulator

    return Emulator(synthetic=True, **kw)  # type: ignore[arg-type]


def test_limited_access_knob_validates_and_gates_only_limited_access_operations() -> None:
    import json

    from local.face_api.server import Emulator, limited_access_approved_from_env

    emu = _emulator()
    assert isinstance(emu, Emulator)
    headers = {"ocp-apim-subscription-key": "k"}
    bad = emu.handle("POST", "/_emulator/config", {}, json.dumps({"limitedAccessApproved": "no"}).encode())
    assert bad.status == 400
    bad = emu.handle("POST", "/_emulator/config", {}, json.dumps({"unsupportedFeatureShape": "x"}).encode())
    assert bad.status == 400
    assert emu.handle("POST", "/_emulator/config", {}, b'{"limitedAccessApproved": false}').status == 200
    for method, path in (("GET", "/face/v1.2/largepersongroups?top=1"), ("PUT", "/face/v1.2/largepersongroups/g1"),
                         ("POST", "/face/v1.2/identify"), ("POST", "/face/v1.2/verify"),
                         ("POST", "/face/v1.2/detect"), ("POST", "/face/v1.2/detect?returnFaceId=true")):
        r = emu.handle(method, path, headers, b"{}")
        assert r.status == 403 and r.body == {"error": {"code": "UnsupportedFeature", "message": r.body["error"]["message"]}}
        assert "aka.ms/facerecognition" in r.body["error"]["message"]
    # Detect without a faceId is not gated (it then fails on the empty image, as it would when approved).
    assert emu.handle("POST", "/face/v1.2/detect?returnFaceId=false", headers, b"").status == 400
    emu.handle("POST", "/_emulator/config", {}, b'{"unsupportedFeatureShape": "observed"}')
    r = emu.handle("GET", "/face/v1.2/largepersongroups", headers, b"")
    assert r.status == 403 and r.body["error"]["code"] == "InvalidRequest"
    assert r.body["error"]["innererror"]["code"] == "UnsupportedFeature"
    # No key: 401 comes first, as on the real service.
    assert emu.handle("GET", "/face/v1.2/largepersongroups", {}, b"").status == 401
    emu.reset()
    assert emu.handle("GET", "/face/v1.2/largepersongroups", headers, b"").status == 200
    assert limited_access_approved_from_env(None) and limited_access_approved_from_env("approved")
    assert not limited_access_approved_from_env("unapproved") and not limited_access_approved_from_env(" Denied ")
