"""FacePort: FakeFace and FaceRestClient against the emulator answer the same way (ids, typed errors,
training, identification of the right person)."""

from __future__ import annotations

import uuid

import pytest

from shared import errors
from tests.contract.conftest import FaceUnderTest


def _gid() -> str:
    return f"ct-{uuid.uuid4().hex[:12]}"


def test_groups_and_persons(face_port: FaceUnderTest) -> None:
    face = face_port.face
    gid = _gid()
    face.create_group(gid, name="g", recognition_model="recognition_04")
    with pytest.raises(errors.LargePersonGroupExists):
        face.create_group(gid, name="g", recognition_model="recognition_04")
    assert face.get_group(gid)["recognitionModel"] == "recognition_04"
    assert gid in [g["largePersonGroupId"] for g in face.list_groups()]
    a = face.create_person(gid, name="p-a", user_data="attempt-a")
    b = face.create_person(gid, name="p-b")
    person = face.get_person(gid, a)
    assert (person.person_id, person.name, person.user_data, person.persisted_face_ids) == (a, "p-a", "attempt-a", ())
    assert sorted(p.person_id for p in face.iter_persons(gid)) == sorted([a, b])
    assert [p.person_id for p in face.list_persons(gid, top=1)] == [min(a, b)]
    assert [p.person_id for p in face.list_persons(gid, start=min(a, b))] == [max(a, b)]
    face.update_person(gid, a, name="renamed")
    assert face.get_person(gid, a).name == "renamed"
    face.delete_person(gid, b)
    with pytest.raises(errors.PersonNotFound):
        face.delete_person(gid, b)
    with pytest.raises(errors.PersonNotFound):
        face.get_person(gid, b)
    face.delete_group(gid)
    with pytest.raises(errors.LargePersonGroupNotFound):
        face.get_group(gid)
    with pytest.raises(errors.LargePersonGroupNotFound):
        face.create_person(gid, name="p")
    with pytest.raises(errors.LargePersonGroupNotFound):
        face.delete_person(gid, a)


def test_faces_carry_user_data_and_bad_photos_are_invalid(face_port: FaceUnderTest) -> None:
    face = face_port.face
    gid = _gid()
    face.create_group(gid, name="g", recognition_model="recognition_04")
    pid = face.create_person(gid, name="p")
    fid = face.add_face(gid, pid, face_port.alice[0], user_data="upload-1")
    assert face.get_person(gid, pid).persisted_face_ids == (fid,)
    assert face.get_face(gid, pid, fid)["userData"] == "upload-1"
    with pytest.raises(errors.FaceInvalidImage):
        face.add_face(gid, pid, face_port.nobody)
    assert face.detect(face_port.nobody) == []
    face.delete_face(gid, pid, fid)
    with pytest.raises(errors.PersistedFaceNotFound):
        face.delete_face(gid, pid, fid)
    face.delete_group(gid)


def test_training_and_identification(face_port: FaceUnderTest) -> None:
    face = face_port.face
    gid = _gid()
    face.create_group(gid, name="g", recognition_model="recognition_04")
    with pytest.raises(errors.LargePersonGroupNotTrained):
        face.training_status(gid)
    alice = face.create_person(gid, name="alice")
    bob = face.create_person(gid, name="bob")
    face.add_face(gid, alice, face_port.alice[0])
    face.add_face(gid, bob, face_port.bob)
    probe = face.detect(face_port.alice[1], attributes=["qualityForRecognition", "headPose"])
    assert len(probe) == 1 and probe[0].face_id and probe[0].rectangle.area > 0
    assert "qualityForRecognition" in probe[0].attributes and "headPose" in probe[0].attributes
    with pytest.raises(errors.LargePersonGroupNotTrained):
        face.identify(gid, [probe[0].face_id])
    face.train(gid)
    assert face_port.finish_training(gid) == "succeeded"
    (result,) = face.identify(gid, [probe[0].face_id], max_candidates=1)
    assert [c.person_id for c in result.candidates] == [alice]
    assert face.verify(gid, probe[0].face_id, alice)[0] is True
    assert face.verify(gid, probe[0].face_id, bob)[0] is False
    face.delete_group(gid)
