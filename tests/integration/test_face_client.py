"""FaceRestClient against the real Face emulator (local/face_api), started by tests/fixtures/face_emulator.py.

Covers the whole LargePersonGroup flow with real photos, the typed errors, retries driven by the
emulator's fault knobs (failNext, slowMs), per-attempt client-request-ids, and that no personId ever
reaches a log record or an exception message.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from shared import errors
from shared.adapters.face_rest import FaceRestClient
from shared.ports import FaceRectangle
from tests.fixtures.paths import face_bytes


class Sleeps(list[float]):
    """Records the waits instead of sleeping; ``then`` runs on each wait (e.g. to lift a fault)."""

    def __init__(self, then: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.then = then

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        if self.then is not None:
            self.then()


class RecordingSession(requests.Session):
    """A real session that remembers the headers of every attempt it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, str]] = []
        _sessions.append(self)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent.append(dict(kwargs.get("headers") or {}))
        return super().request(method, url, *args, **kwargs)


_made: list[FaceRestClient] = []
_sessions: list[requests.Session] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()
    while _sessions:
        _sessions.pop().close()


def make_client(emulator: Any, **kw: Any) -> FaceRestClient:
    options: dict[str, Any] = {
        "endpoint": emulator.endpoint,
        "key": getattr(emulator, "key", None) or "local-emulator-key",
        "timeout": 30.0,
        "max_retries": 3,
        "sleep": Sleeps(),
    }
    options.update(kw)
    client = FaceRestClient(**options)
    _made.append(client)
    return client


def status_count(stats: dict[str, Any], status: int) -> int:
    return int({str(k): v for k, v in (stats.get("byStatus") or {}).items()}.get(str(status), 0))


def new_group_id() -> str:
    return f"it-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def face(face_api: Any) -> FaceRestClient:
    return make_client(face_api)


def wait_trained(client: FaceRestClient, group_id: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = client.training_status(group_id)
        if status.status == "succeeded":
            return
        assert status.status in ("notStarted", "running"), status
        assert time.monotonic() < deadline, "training did not finish"
        time.sleep(0.1)


def enroll(client: FaceRestClient, group_id: str, identity: str, photos: tuple[str, ...] = ("1.jpg", "2.jpg")) -> str:
    person_id = client.create_person(group_id, name="person", user_data="enrollment-test")
    for photo in photos:
        client.add_face(group_id, person_id, face_bytes(f"{identity}/{photo}"))
    return person_id


# --- the LargePersonGroup flow ---------------------------------------------------------------------
def test_full_large_person_group_flow(face: FaceRestClient) -> None:
    gid = new_group_id()
    face.create_group(gid, name="Integration", recognition_model="recognition_04", user_data="it")
    group = face.get_group(gid)
    assert group["largePersonGroupId"] == gid
    assert group["recognitionModel"] == "recognition_04"
    assert gid in [g["largePersonGroupId"] for g in face.list_groups()]

    people = {name: enroll(face, gid, name) for name in ("family1-dad", "family1-daughter", "family2-lady")}
    dad = face.get_person(gid, people["family1-dad"])
    assert dad.person_id == people["family1-dad"]
    assert len(dad.persisted_face_ids) == 2
    assert dad.user_data == "enrollment-test"
    face.update_person(gid, dad.person_id, name="renamed")
    assert face.get_person(gid, dad.person_id).name == "renamed"
    listed = list(face.iter_persons(gid, page_size=2))  # pages of 2, 2 + 1
    assert sorted(p.person_id for p in listed) == sorted(people.values())
    assert [p.person_id for p in face.list_persons(gid, top=1)] == [min(people.values())]

    face.train(gid)
    wait_trained(face, gid)

    detected = face.detect(face_bytes("family1-dad/3.jpg"), attributes=["qualityForRecognition", "headPose"])
    assert len(detected) == 1
    probe = detected[0]
    assert probe.face_id
    assert probe.rectangle.area > 0
    assert "qualityForRecognition" in probe.attributes
    assert probe.recognition_model == "recognition_04"

    (result,) = face.identify(gid, [probe.face_id], max_candidates=3)
    assert result.face_id == probe.face_id
    assert result.candidates
    assert result.candidates[0].person_id == people["family1-dad"]

    same, conf_same = face.verify(gid, probe.face_id, people["family1-dad"])
    other, conf_other = face.verify(gid, probe.face_id, people["family2-lady"])
    assert same is True
    assert other is False
    assert conf_same > conf_other

    assert face.get_face(gid, dad.person_id, dad.persisted_face_ids[0])["persistedFaceId"] == dad.persisted_face_ids[0]
    face.delete_face(gid, dad.person_id, dad.persisted_face_ids[0])
    assert len(face.get_person(gid, dad.person_id).persisted_face_ids) == 1
    face.delete_person(gid, people["family1-daughter"])
    face.delete_group(gid)
    with pytest.raises(errors.LargePersonGroupNotFound):
        face.get_group(gid)


def test_add_face_with_target_face_on_a_two_face_photo(face: FaceRestClient) -> None:
    gid = new_group_id()
    face.create_group(gid, name="g", recognition_model="recognition_04")
    pid = face.create_person(gid, name="p")
    photo = face_bytes("multi/1.jpg")
    faces = face.detect(photo, return_face_id=False)
    assert len(faces) >= 2
    r = faces[0].rectangle
    persisted = face.add_face(gid, pid, photo, target_face=FaceRectangle(top=r.top, left=r.left, width=r.width,
                                                                             height=r.height), user_data="multi")
    assert persisted in face.get_person(gid, pid).persisted_face_ids


# --- typed errors ----------------------------------------------------------------------------------
def test_typed_errors(face: FaceRestClient) -> None:
    gid = new_group_id()
    face.create_group(gid, name="g", recognition_model="recognition_04")
    with pytest.raises(errors.LargePersonGroupExists) as exists:
        face.create_group(gid, name="g", recognition_model="recognition_04")
    assert exists.value.status == 409
    assert exists.value.code == "LargePersonGroupExists"
    assert exists.value.request_id

    pid = face.create_person(gid, name="p")
    with pytest.raises(errors.FaceInvalidImage) as nonface:
        face.add_face(gid, pid, face_bytes("nonfaces/1.jpg"))
    assert nonface.value.code == "InvalidImage"
    with pytest.raises(errors.FaceInvalidImage) as two:
        face.add_face(gid, pid, face_bytes("multi/1.jpg"))
    assert two.value.code == "InvalidImage"
    assert face.detect(face_bytes("nonfaces/1.jpg")) == []

    fid = face.add_face(gid, pid, face_bytes("obama/1.jpg"))
    face.delete_face(gid, pid, fid)
    with pytest.raises(errors.PersistedFaceNotFound):
        face.delete_face(gid, pid, fid)

    face.delete_person(gid, pid)
    with pytest.raises(errors.PersonNotFound) as gone:
        face.get_person(gid, pid)
    assert gone.value.status == 404
    with pytest.raises(errors.PersonNotFound):
        face.add_face(gid, pid, face_bytes("obama/1.jpg"))
    for exc in (gone.value, nonface.value, two.value):
        assert pid not in str(exc)
        assert pid not in repr(exc)

    with pytest.raises(errors.LargePersonGroupNotFound):
        face.get_group(new_group_id())
    with pytest.raises(errors.LargePersonGroupNotTrained):
        face.training_status(gid)


def test_identify_before_training_and_with_the_wrong_model(face: FaceRestClient) -> None:
    gid = new_group_id()
    face.create_group(gid, name="g", recognition_model="recognition_04")
    enroll(face, gid, "obama", ("1.jpg",))
    probe = face.detect(face_bytes("obama/2.jpg"))[0]
    assert probe.face_id
    with pytest.raises(errors.LargePersonGroupNotTrained):
        face.identify(gid, [probe.face_id])
    face.train(gid)
    wait_trained(face, gid)
    old = face.detect(face_bytes("obama/2.jpg"), recognition_model="recognition_03")[0]
    assert old.face_id
    with pytest.raises(errors.FaceIncompatibleModel):
        face.identify(gid, [old.face_id])


# --- retries ---------------------------------------------------------------------------------------
def test_429_with_retry_after_then_success(face_api: Any) -> None:
    sleeps = Sleeps()
    client = make_client(face_api, sleep=sleeps)
    gid = new_group_id()
    face_api.configure(failNext=[{"status": 429, "retryAfter": 2}])
    client.create_group(gid, name="g", recognition_model="recognition_04")
    assert client.get_group(gid)["largePersonGroupId"] == gid
    assert len(sleeps) == 1
    assert sleeps[0] >= 2.0  # Retry-After honoured (max of it and the backoff)
    stats = face_api.stats()
    assert status_count(stats, 429) == 1


def test_503s_then_success(face_api: Any) -> None:
    sleeps = Sleeps()
    client = make_client(face_api, sleep=sleeps)
    face_api.configure(failNext=[{"status": 503, "retryAfter": None}, {"status": 503, "retryAfter": None}])
    assert client.detect(face_bytes("obama/1.jpg"))
    assert len(sleeps) == 2
    assert all(0 < s <= 20 for s in sleeps)
    assert status_count(face_api.stats(), 503) == 2


def test_500_then_success(face_api: Any) -> None:
    client = make_client(face_api)
    face_api.configure(failNext=[{"status": 500, "retryAfter": None}])
    assert client.list_groups() == []
    assert status_count(face_api.stats(), 500) == 1


def test_more_429s_than_retries_raise_rate_limited(face_api: Any) -> None:
    sleeps = Sleeps()
    client = make_client(face_api, sleep=sleeps, max_retries=2)
    face_api.configure(failNext=[{"status": 429, "retryAfter": 1}] * 4)
    with pytest.raises(errors.FaceRateLimited) as info:
        client.list_groups()
    assert info.value.status == 429
    assert len(sleeps) == 2
    assert status_count(face_api.stats(), 429) == 3  # 1 try + 2 retries; the 4th failure is still queued


def test_more_503s_than_retries_raise_transient(face_api: Any) -> None:
    client = make_client(face_api, max_retries=1)
    face_api.configure(failNext=[{"status": 503, "retryAfter": None}] * 2)
    with pytest.raises(errors.FaceTransientError) as info:
        client.list_groups()
    assert not isinstance(info.value, errors.FaceRateLimited)
    assert info.value.status == 503
    assert status_count(face_api.stats(), 503) == 2


def test_timeouts_are_retried_then_succeed(face_api: Any) -> None:
    gid = new_group_id()
    make_client(face_api).create_group(gid, name="g", recognition_model="recognition_04")
    face_api.configure(slowRate=1.0, slowMs=3000)
    sleeps = Sleeps(then=lambda: face_api.configure(slowRate=0.0))  # the fault lifts while we back off
    client = make_client(face_api, sleep=sleeps, timeout=0.5)
    started = time.monotonic()
    assert client.get_group(gid)["largePersonGroupId"] == gid
    assert len(sleeps) == 1
    assert time.monotonic() - started < 3.0


def test_timeouts_outlasting_retries_raise_transient(face_api: Any) -> None:
    face_api.configure(slowRate=1.0, slowMs=2000)
    session = RecordingSession()
    client = make_client(face_api, timeout=0.3, max_retries=2, transport=session)
    with pytest.raises(errors.FaceTransientError) as info:
        client.list_groups()
    assert info.value.code == "Timeout"
    assert info.value.status == 0
    assert len(session.sent) == 3
    assert info.value.request_id == session.sent[-1]["client-request-id"]
    face_api.configure(slowRate=0.0)


def test_an_add_face_that_timed_out_but_went_through_is_not_added_twice(face_api: Any) -> None:
    """Found by the load bench (issue 13): a busy Face answered add_face after the client's read timeout,
    the retry added the face again, and the person held the upload's face twice."""
    face_api.configure(synthetic=True)
    setup = make_client(face_api)
    gid = new_group_id()
    setup.create_group(gid, name="g", recognition_model="recognition_04")
    person_id = setup.create_person(gid, name="p", user_data="attempt-1")
    face_api.configure(slowRate=1.0, slowMs=1500)

    def backoff(_seconds: float) -> None:  # the fault lifts while we back off, and the slow try lands
        face_api.configure(slowRate=0.0)
        time.sleep(3.0)

    client = make_client(face_api, sleep=backoff, timeout=0.5)
    face_id = client.add_face(gid, person_id, face_bytes("obama/1.jpg"), user_data="upload-1")
    faces = setup.get_person(gid, person_id).persisted_face_ids
    assert faces == (face_id,)
    assert setup.get_face(gid, person_id, face_id)["userData"] == "upload-1"


def test_an_add_face_refused_with_429_is_retried_without_a_lookup(face_api: Any) -> None:
    face_api.configure(synthetic=True)
    client = make_client(face_api)
    gid = new_group_id()
    client.create_group(gid, name="g", recognition_model="recognition_04")
    person_id = client.create_person(gid, name="p", user_data="attempt-1")
    before = face_api.stats()["byOperation"]
    face_api.configure(failNext=[{"status": 429, "retryAfter": 0}])
    client.add_face(gid, person_id, face_bytes("obama/1.jpg"), user_data="upload-1")
    after = face_api.stats()["byOperation"]
    # A 429 is never processed: no look for the face first.
    assert after.get("GET /largepersongroups/{}/persons/{}", 0) == before.get("GET /largepersongroups/{}/persons/{}", 0)
    assert len(client.get_person(gid, person_id).persisted_face_ids) == 1


def test_each_attempt_has_its_own_client_request_id(face_api: Any, caplog: pytest.LogCaptureFixture) -> None:
    session = RecordingSession()
    client = make_client(face_api, transport=session)
    face_api.configure(failNext=[{"status": 503, "retryAfter": None}, {"status": 429, "retryAfter": 0}])
    with caplog.at_level(logging.DEBUG, logger="shared.adapters.face_rest"):
        client.list_groups()
    ids = [h["client-request-id"] for h in session.sent]
    assert len(ids) == 3
    assert len(set(ids)) == 3
    assert all(uuid.UUID(i).version == 4 for i in ids)
    logged = [r.__dict__.get("client_request_id") for r in caplog.records if "client_request_id" in r.__dict__]
    assert logged == ids
    assert [r.__dict__["face_status"] for r in caplog.records if "face_status" in r.__dict__] == [503, 429, 200]


# --- secrecy of personIds --------------------------------------------------------------------------
def test_no_person_id_in_any_log_record_or_exception(face_api: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, urllib3 included
    # The app raises urllib3 to WARNING (shared/logging_policy.py); the scrub filter must hold even below it.
    caplog.set_level(logging.DEBUG, logger="urllib3")
    client = make_client(face_api)
    messages: list[str] = []
    gid = new_group_id()
    client.create_group(gid, name="g", recognition_model="recognition_04")
    dad = enroll(client, gid, "family1-dad", ("1.jpg",))
    lady = enroll(client, gid, "family2-lady", ("1.jpg",))
    face_api.configure(failNext=[{"status": 503, "retryAfter": None}, {"status": 429, "retryAfter": 1}])
    client.get_person(gid, dad)
    client.train(gid)
    wait_trained(client, gid)
    probe = client.detect(face_bytes("family1-dad/2.jpg"))[0]
    assert probe.face_id
    client.identify(gid, [probe.face_id])
    client.verify(gid, probe.face_id, lady)
    bad_images: list[Callable[[], object]] = [
        lambda: client.add_face(gid, dad, face_bytes("nonfaces/1.jpg")),
        lambda: client.add_face(gid, dad, face_bytes("multi/1.jpg")),
    ]
    for call in bad_images:
        with pytest.raises(errors.FaceError) as info:
            call()
        messages += [str(info.value), repr(info.value)]
    client.delete_person(gid, lady)
    face_id = probe.face_id
    deleted_person: list[Callable[[], object]] = [
        lambda: client.get_person(gid, lady),
        lambda: client.delete_person(gid, lady),
        lambda: client.verify(gid, face_id, lady),
        lambda: client.add_face(gid, lady, face_bytes("obama/1.jpg")),
    ]
    for call in deleted_person:
        with pytest.raises(errors.FaceError) as info:
            call()
        messages += [str(info.value), repr(info.value)]
    face_api.configure(failNext=[{"status": 503, "retryAfter": None}] * 5)
    with pytest.raises(errors.FaceTransientError) as info:
        client.get_person(gid, dad)
    messages += [str(info.value), repr(info.value)]
    face_api.configure(failNext=[])

    person_ids = set(face_api.stats()["personIds"])
    assert {dad, lady} <= person_ids
    ours = [r for r in caplog.records if r.name == "shared.adapters.face_rest"]
    assert len(ours) > 15
    assert any(r.name.startswith("urllib3") for r in caplog.records)  # its request lines were captured too
    logged = [r.getMessage() for r in caplog.records] + [caplog.text]
    for pid in person_ids:
        assert not any(pid in m for m in logged), "a personId reached a log record"
        assert not any(pid in m for m in messages), "a personId reached an exception message"


# --- auth ------------------------------------------------------------------------------------------
def test_wrong_key_is_an_auth_error_and_not_retried() -> None:
    from tests.fixtures.face_emulator import start_face_emulator

    emu = start_face_emulator("--key", "right-key", "--no-warm-up")
    try:
        sleeps = Sleeps()
        with pytest.raises(errors.FaceAuthError) as info:
            make_client(emu, key="wrong-key", sleep=sleeps).list_groups()
        assert info.value.status == 401
        assert sleeps == []
        assert emu.stats()["calls"] == 1
        assert make_client(emu, key="right-key").list_groups() == []
    finally:
        emu.stop()


def test_rides_out_the_emulators_rate_limit(face_api: Any) -> None:
    waits: list[float] = []

    def real_sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    client = make_client(face_api, sleep=real_sleep, max_retries=5)
    face_api.configure(rateLimitPerSecond=4.0)
    try:
        for _ in range(8):
            assert client.list_groups() == []
    finally:
        face_api.configure(rateLimitPerSecond=None)
    stats = face_api.stats()
    assert stats["throttled"] >= 1
    assert waits
    assert all(w >= 1.0 for w in waits)  # the emulator's Retry-After (whole seconds) was honoured


# --- Limited Access not approved (the emulator's limitedAccessApproved knob) ----------------------------
@pytest.mark.parametrize("shape", ["documented", "observed"])
def test_limited_access_not_approved_is_typed_and_not_retried(face_api: Any, shape: str) -> None:
    sleeps = Sleeps()
    client = make_client(face_api, sleep=sleeps)
    gid = new_group_id()
    client.create_group(gid, name="g", recognition_model="recognition_04")
    face_api.configure(limitedAccessApproved=False, unsupportedFeatureShape=shape)
    calls = face_api.stats()["calls"]
    for call in (lambda: client.list_groups(top=1), lambda: client.get_group(gid),
                 lambda: client.create_person(gid, name="p"),
                 lambda: client.identify(gid, ["00000000-0000-0000-0000-000000000000"]),
                 lambda: client.verify(gid, "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000001"),
                 lambda: client.detect(face_bytes("obama/1.jpg"), return_face_id=True)):
        with pytest.raises(errors.LimitedAccessNotApproved) as info:
            call()
        assert info.value.code == "UnsupportedFeature" and info.value.status == 403
    assert face_api.stats()["calls"] - calls == 6 and sleeps == []  # one attempt each, never retried
    # Detect without a faceId needs no approval (the enroll pipeline's quality check uses it).
    assert len(client.detect(face_bytes("obama/1.jpg"), return_face_id=False)) == 1
    face_api.configure(limitedAccessApproved=True)
    assert client.get_group(gid)["largePersonGroupId"] == gid


def test_limited_access_knob_from_the_environment() -> None:
    import os

    from tests.fixtures.face_emulator import start_face_emulator

    os.environ["FACE_EMULATOR_LIMITED_ACCESS"] = "unapproved"
    try:
        emu = start_face_emulator("--synthetic", "--no-warm-up")
    finally:
        del os.environ["FACE_EMULATOR_LIMITED_ACCESS"]
    try:
        client = make_client(emu)
        with pytest.raises(errors.LimitedAccessNotApproved):
            client.list_groups(top=1)
        emu.reset()  # a reset goes back to how the emulator was started
        with pytest.raises(errors.LimitedAccessNotApproved):
            client.list_groups(top=1)
        emu.configure(limitedAccessApproved=True)
        assert client.list_groups(top=1) == []
    finally:
        emu.stop()
