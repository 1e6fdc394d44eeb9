"""The Face API emulator through HTTP, on the real photos in ../shared/testdata/faces (real dlib model)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.fixtures.face_emulator import FaceEmulator, start_face_emulator
from tests.fixtures.paths import face_bytes

KEY = {"Ocp-Apim-Subscription-Key": "local-key"}
OCTET = {**KEY, "Content-Type": "application/octet-stream"}
IDENTITIES = ["family1-dad", "family1-daughter", "family2-lady", "family2-man"]


class Api:
    def __init__(self, emu: FaceEmulator, version: str = "v1.2") -> None:
        self.emu = emu
        self.version = version
        self.s = emu.session

    def call(self, method: str, path: str, *, json: Any = None, data: bytes | None = None,
             expect: int | None = 200, headers: dict[str, str] | None = None) -> requests.Response:
        h = dict(headers if headers is not None else (OCTET if data is not None else KEY))
        r = self.s.request(method, self.emu.url(path, self.version), json=json, data=data, headers=h, timeout=30)
        assert "apim-request-id" in r.headers
        if expect is not None:
            assert r.status_code == expect, r.text
        return r

    def error(self, r: requests.Response) -> str:
        code: str = r.json()["error"]["code"]
        return code

    def group(self, gid: str, model: str = "recognition_04") -> None:
        self.call("PUT", f"largepersongroups/{gid}", json={"name": gid, "recognitionModel": model})

    def person(self, gid: str, name: str) -> str:
        pid: str = self.call("POST", f"largepersongroups/{gid}/persons", json={"name": name}).json()["personId"]
        return pid

    def add_face(self, gid: str, pid: str, rel: str, query: str = "detectionModel=detection_03",
                 expect: int | None = 200) -> requests.Response:
        return self.call("POST", f"largepersongroups/{gid}/persons/{pid}/persistedfaces?{query}",
                         data=face_bytes(rel), expect=expect)

    def train(self, gid: str, wait: bool = True) -> None:
        r = self.call("POST", f"largepersongroups/{gid}/train", expect=202)
        assert "/operations/" in r.headers["Operation-Location"]
        while wait:
            st = self.call("GET", f"largepersongroups/{gid}/training").json()["status"]
            if st != "running":
                assert st == "succeeded"
                return
            time.sleep(0.02)

    def detect(self, rel: str, model: str = "recognition_04", extra: str = "") -> list[dict[str, Any]]:
        q = f"detect?returnFaceId=true&recognitionModel={model}&detectionModel=detection_03{extra}"
        out: list[dict[str, Any]] = self.call("POST", q, data=face_bytes(rel)).json()
        return out

    def identify(self, gid: str, face_ids: list[str], expect: int | None = 200, **kw: Any) -> requests.Response:
        return self.call("POST", "identify", json={"faceIds": face_ids, "largePersonGroupId": gid, **kw},
                         expect=expect)

    def enroll(self, gid: str, identities: list[str] = IDENTITIES) -> dict[str, str]:
        self.group(gid)
        pids = {}
        for ident in identities:
            pid = self.person(gid, ident)
            for n in (1, 2):
                self.add_face(gid, pid, f"{ident}/{n}.jpg")
            pids[pid] = ident
        return pids


@pytest.fixture
def api(face_api: FaceEmulator) -> Api:
    return Api(face_api)


def test_unseen_photos_identify_the_right_person(api: Api) -> None:
    pids = api.enroll("g")
    api.train("g")
    for ident in IDENTITIES:
        [face] = api.detect(f"{ident}/3.jpg")
        [res] = api.identify("g", [face["faceId"]]).json()
        assert res["faceId"] == face["faceId"]
        assert res["candidates"], ident
        best = res["candidates"][0]
        assert pids[best["personId"]] == ident
        assert best["confidence"] >= 0.5
        assert all(c["confidence"] < 0.5 or pids[c["personId"]] == ident for c in res["candidates"])
    # the group photo: dad and daughter found, mom and son (not enrolled) unidentified
    faces = api.detect("multi/2.jpg")
    res = api.identify("g", [f["faceId"] for f in faces]).json()
    found = sorted(pids[r["candidates"][0]["personId"]] for r in res if r["candidates"])
    assert found == ["family1-dad", "family1-daughter"]


def test_strangers_are_nobody(api: Api) -> None:
    api.enroll("g")
    api.train("g")
    faces = api.detect("obama/1.jpg") + api.detect("multi/3.jpg")
    assert len(faces) == 7
    res = api.identify("g", [f["faceId"] for f in faces]).json()
    assert all(r["candidates"] == [] for r in res)
    # a threshold of 0 returns the nearest persons anyway, best first, capped
    res = api.identify("g", [faces[0]["faceId"]], confidenceThreshold=0, maxNumOfCandidatesReturned=3).json()
    confs = [c["confidence"] for c in res[0]["candidates"]]
    assert len(confs) == 3 and confs == sorted(confs, reverse=True) and confs[0] < 0.5


def test_verify_face_to_person(api: Api) -> None:
    pids = {v: k for k, v in api.enroll("g", ["family2-lady", "family2-man"]).items()}
    [face] = api.detect("family2-lady/3.jpg")
    body = {"faceId": face["faceId"], "largePersonGroupId": "g"}
    same = api.call("POST", "verify", json={**body, "personId": pids["family2-lady"]}).json()
    other = api.call("POST", "verify", json={**body, "personId": pids["family2-man"]}).json()
    assert same["isIdentical"] is True and same["confidence"] >= 0.5
    assert other["isIdentical"] is False and other["confidence"] < 0.5
    r = api.call("POST", "verify", json={**body, "personId": "00000000-0000-0000-0000-000000000000"}, expect=404)
    assert api.error(r) == "PersonNotFound"


def test_add_face_rejects_bad_images(api: Api) -> None:
    api.group("g")
    pid = api.person("g", "p")
    for rel in ("nonfaces/1.jpg", "nonfaces/3.png", "quality/sideways.jpg"):
        r = api.add_face("g", pid, rel, expect=400)
        assert api.error(r) == "InvalidImage" and "No face" in r.json()["error"]["message"]
    r = api.add_face("g", pid, "multi/1.jpg", expect=400)
    assert api.error(r) == "InvalidImage" and "more than 1 face" in r.json()["error"]["message"]
    r = api.call("POST", f"largepersongroups/g/persons/{pid}/persistedfaces", data=b"\xff\xd8" + b"0" * 500,
                 expect=400)
    assert api.error(r) == "InvalidImageSize"
    r = api.call("POST", f"largepersongroups/g/persons/{pid}/persistedfaces", data=b"not an image" * 200,
                 expect=400)
    assert api.error(r) == "InvalidImage"
    # targetFace picks one face of a group photo
    faces = api.detect("multi/1.jpg")
    rect = faces[0]["faceRectangle"]
    target = f"{rect['left']},{rect['top']},{rect['width']},{rect['height']}"
    fid = api.add_face("g", pid, "multi/1.jpg", query=f"targetFace={target}&userData=x").json()["persistedFaceId"]
    assert api.call("GET", f"largepersongroups/g/persons/{pid}/persistedfaces/{fid}").json() == {
        "persistedFaceId": fid, "userData": "x"}
    assert api.call("GET", f"largepersongroups/g/persons/{pid}").json()["persistedFaceIds"] == [fid]


def test_training_snapshot_semantics(api: Api, face_api: FaceEmulator) -> None:
    r = api.call("POST", "largepersongroups/nope/train", expect=404)
    assert api.error(r) == "LargePersonGroupNotFound"
    pids = api.enroll("g", ["family1-dad"])
    api.person("g", "nobody-without-faces")  # empty persons are ignored by training
    [obama] = api.detect("obama/3.jpg")
    r = api.identify("g", [obama["faceId"]], expect=400)
    assert api.error(r) == "LargePersonGroupNotTrained"
    assert api.error(api.call("GET", "largepersongroups/g/training", expect=404)) == "LargePersonGroupNotTrained"
    api.train("g")
    new = api.person("g", "obama")
    api.add_face("g", new, "obama/1.jpg")
    api.add_face("g", new, "obama/2.jpg")
    assert api.identify("g", [obama["faceId"]]).json()[0]["candidates"] == []  # not trained yet
    face_api.configure(trainBaseMs=600)
    api.train("g", wait=False)
    status = api.call("GET", "largepersongroups/g/training").json()
    assert status["status"] == "running" and status["lastSuccessfulTrainingDateTime"]
    assert api.identify("g", [obama["faceId"]]).json()[0]["candidates"] == []  # old snapshot still serves
    [dad] = api.detect("family1-dad/3.jpg")
    assert pids[api.identify("g", [dad["faceId"]]).json()[0]["candidates"][0]["personId"]] == "family1-dad"
    api.train("g")  # joins the running training and waits for it
    [cand] = api.identify("g", [obama["faceId"]]).json()[0]["candidates"]
    assert cand["personId"] == new and cand["confidence"] >= 0.5
    # deleting the person removes it only from the next training
    api.call("DELETE", f"largepersongroups/g/persons/{new}")
    assert api.identify("g", [obama["faceId"]]).json()[0]["candidates"][0]["personId"] == new
    face_api.configure(trainBaseMs=0)
    api.train("g")
    assert api.identify("g", [obama["faceId"]]).json()[0]["candidates"] == []


def test_recognition_model_pinning(api: Api) -> None:
    api.enroll("g4", ["family2-man"])
    api.train("g4")
    api.group("g5", "recognition_05")
    pid5 = api.person("g5", "man")
    api.add_face("g5", pid5, "family2-man/1.jpg")
    api.train("g5")
    assert api.call("GET", "largepersongroups/g5?returnRecognitionModel=true").json()["recognitionModel"] == \
        "recognition_05"
    assert "recognitionModel" not in api.call("GET", "largepersongroups/g5").json()
    [f4] = api.detect("family2-man/3.jpg", "recognition_04")
    [f5] = api.detect("family2-man/3.jpg", "recognition_05", "&returnRecognitionModel=true")
    assert f5["recognitionModel"] == "recognition_05"
    [f1] = api.detect("family2-man/3.jpg", "recognition_01")
    for gid, fid in (("g4", f5["faceId"]), ("g4", f1["faceId"]), ("g5", f4["faceId"])):
        r = api.identify(gid, [fid], expect=400)
        assert api.error(r) == "BadArgument" and "'recognitionModel' is incompatible" in r.json()["error"]["message"]
    assert api.identify("g5", [f5["faceId"]]).json()[0]["candidates"][0]["personId"] == pid5
    r = api.call("PUT", "largepersongroups/bad", json={"name": "x", "recognitionModel": "recognition_09"},
                 expect=400)
    assert api.error(r) == "BadArgument"
    r = api.call("POST", "detect?recognitionModel=recognition_09", data=face_bytes("obama/1.jpg"), expect=400)
    assert api.error(r) == "BadArgument"


def test_detect_quality_attributes(api: Api) -> None:
    attrs = "&returnFaceAttributes=qualityForRecognition,blur,exposure,headPose,occlusion,mask,glasses"

    def one(rel: str) -> dict[str, Any]:
        [face] = api.detect(rel, extra=attrs)
        fa: dict[str, Any] = face["faceAttributes"]
        return fa

    for ident in (*IDENTITIES, "obama"):
        for n in (1, 2, 3):
            assert one(f"{ident}/{n}.jpg")["qualityForRecognition"] == "high", f"{ident}/{n}"
    blurry = one("quality/blurry.jpg")
    assert blurry["blur"]["blurLevel"] == "high" and blurry["qualityForRecognition"] == "low"
    dark = one("quality/dark.jpg")
    assert dark["exposure"]["exposureLevel"] == "underExposure" and dark["qualityForRecognition"] == "low"
    assert one("quality/partial-face.jpg")["qualityForRecognition"] == "low"
    exif = one("quality/exif-orientation-6.jpg")
    assert exif["qualityForRecognition"] == "high" and abs(exif["headPose"]["roll"]) < 15
    assert one("family1-dad/1.jpg")["mask"] == {"type": "noMask", "noseAndMouthCovered": False}
    r = api.call("POST", "detect?detectionModel=detection_01&recognitionModel=recognition_04"
                 "&returnFaceAttributes=noise,qualityForRecognition", data=face_bytes("quality/noisy.jpg"))
    [noisy] = r.json()
    assert noisy["faceAttributes"]["noise"]["noiseLevel"] == "high"
    assert noisy["faceAttributes"]["qualityForRecognition"] != "high"
    assert api.detect("quality/sideways.jpg") == [] and api.detect("nonfaces/2.jpg") == []
    faces = api.detect("multi/3.jpg")
    areas = [f["faceRectangle"]["width"] * f["faceRectangle"]["height"] for f in faces]
    assert areas == sorted(areas, reverse=True)
    # detection_03 has no noise; qualityForRecognition needs recognition_03/04; TTL bounds
    for q in ("detectionModel=detection_03&returnFaceAttributes=noise",
              "recognitionModel=recognition_01&returnFaceAttributes=qualityForRecognition",
              "faceIdTimeToLive=59", "detectionModel=detection_09", "returnFaceAttributes=age"):
        assert api.error(api.call("POST", f"detect?{q}", data=face_bytes("obama/1.jpg"), expect=400)) == "BadArgument"
    no_id = api.call("POST", "detect?returnFaceId=false&returnFaceLandmarks=true",
                     data=face_bytes("obama/1.jpg")).json()
    assert "faceId" not in no_id[0] and "pupilLeft" in no_id[0]["faceLandmarks"]


def test_crud_errors_and_versions(api: Api) -> None:
    for ver in ("v1.0", "v1.2-preview.1"):
        v = Api(api.emu, ver)
        v.group(f"g-{ver.replace('.', '-')}")
    assert api.error(api.call("PUT", "largepersongroups/g-v1-0", json={"name": "x"}, expect=409)) == \
        "LargePersonGroupExists"
    assert api.error(api.call("GET", "largepersongroups/missing", expect=404)) == "LargePersonGroupNotFound"
    assert api.error(api.call("PUT", "largepersongroups/Bad.Id", json={"name": "x"}, expect=400)) == "BadArgument"
    r = api.call("PUT", "largepersongroups/g", data=b"{not json", expect=400, headers={**KEY, "Content-Type":
                                                                                       "application/json"})
    assert api.error(r) == "BadArgument"
    api.group("g")
    api.call("PATCH", "largepersongroups/g", json={"name": "renamed", "userData": "u"})
    assert api.call("GET", "largepersongroups/g").json() == {"largePersonGroupId": "g", "name": "renamed",
                                                            "userData": "u"}
    pid = api.person("g", "p")
    api.call("PATCH", f"largepersongroups/g/persons/{pid}", json={"userData": "ud"})
    assert api.call("GET", f"largepersongroups/g/persons/{pid}").json() == {
        "personId": pid, "name": "p", "userData": "ud", "persistedFaceIds": []}
    missing = "00000000-0000-0000-0000-000000000000"
    assert api.error(api.call("GET", f"largepersongroups/g/persons/{missing}", expect=404)) == "PersonNotFound"
    assert api.error(api.call("GET", f"largepersongroups/g/persons/{pid}/persistedfaces/{missing}",
                              expect=404)) == "PersistedFaceNotFound"
    fid = api.add_face("g", pid, "obama/1.jpg").json()["persistedFaceId"]
    api.call("PATCH", f"largepersongroups/g/persons/{pid}/persistedfaces/{fid}", json={"userData": "f"})
    api.call("DELETE", f"largepersongroups/g/persons/{pid}/persistedfaces/{fid}")
    assert api.call("GET", f"largepersongroups/g/persons/{pid}").json()["persistedFaceIds"] == []
    r = api.identify("g", ["no-such-face-id"], expect=400)
    assert api.error(r) == "BadArgument"
    api.call("DELETE", "largepersongroups/g")
    assert api.error(api.call("GET", "largepersongroups/g", expect=404)) == "LargePersonGroupNotFound"
    r = api.s.get(api.emu.url("largepersongroups"), timeout=5)  # no credential at all
    assert r.status_code == 401 and r.json()["error"]["code"] == "401"


def test_paging_is_sorted_and_complete(api: Api) -> None:
    for i in range(5):
        api.group(f"grp-{i}")
    page = api.call("GET", "largepersongroups?top=2&start=grp-1").json()
    assert [g["largePersonGroupId"] for g in page] == ["grp-2", "grp-3"]
    created = sorted(api.person("grp-0", f"p{i}") for i in range(23))
    seen: list[str] = []
    start = ""
    while True:
        page = api.call("GET", f"largepersongroups/grp-0/persons?top=10&start={start}").json()
        if not page:
            break
        seen += [p["personId"] for p in page]
        start = page[-1]["personId"]
    assert seen == created
    assert api.error(api.call("GET", "largepersongroups/grp-0/persons?top=1001", expect=400)) == "BadArgument"


def test_rate_limit_and_counters(api: Api, face_api: FaceEmulator) -> None:
    face_api.configure(rateLimitPerSecond=2)
    statuses = [api.call("GET", "largepersongroups", expect=None) for _ in range(8)]
    throttled = [r for r in statuses if r.status_code == 429]
    assert len(throttled) >= 5
    r = throttled[0]
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json() == {"error": {"code": "429", "message": f"Rate limit is exceeded. Try again in "
                                                           f"{r.headers['Retry-After']} seconds."}}
    stats = face_api.stats()
    assert stats["calls"] == 8 and stats["throttled"] == len(throttled)
    assert stats["byStatus"] == {"200": 8 - len(throttled), "429": len(throttled)}
    time.sleep(1.05)
    assert api.call("GET", "largepersongroups", expect=None).status_code == 200
    cfg = face_api.configure(rateLimitPerSecond=None)
    assert cfg["rateLimitPerSecond"] is None


def test_operation_and_training_counters(api: Api, face_api: FaceEmulator) -> None:
    api.group("g")
    face_api.configure(faultRate=1.0, faultStatuses=[503])
    assert api.call("POST", "largepersongroups/g/train", expect=None).status_code == 503
    face_api.configure(faultRate=0.0)
    api.train("g")
    stats = face_api.stats()
    # A faulted train request is a call of that kind but started no training.
    assert stats["byOperation"]["POST /largepersongroups/{}/train"] == 2
    assert stats["byOperation"]["PUT /largepersongroups/{}"] == 1
    assert (stats["trainRequests"], stats["trainings"]) == (1, 1)
    assert sum(stats["byOperation"].values()) == stats["calls"]


def test_fail_next_and_person_ids(api: Api, face_api: FaceEmulator) -> None:
    cfg = face_api.configure(failNext=[{"status": 503, "retryAfter": 2}, {"status": 500, "retryAfter": None},
                                       {"status": 429, "retryAfter": 1}])
    assert [f["status"] for f in cfg["failNext"]] == [503, 500, 429]
    r1, r2, r3, r4 = (api.call("GET", "largepersongroups", expect=None) for _ in range(4))
    assert (r1.status_code, r1.headers["Retry-After"]) == (503, "2")
    assert r2.status_code == 500 and "Retry-After" not in r2.headers
    assert (r3.status_code, r3.headers["Retry-After"], api.error(r3)) == (429, "1", "429")
    assert r4.status_code == 200
    api.group("g")
    pid = api.person("g", "p")
    stats = face_api.stats()
    assert stats["faults"] == 2 and stats["throttled"] == 1 and stats["personIds"] == [pid]
    assert face_api.configure(faultRate=1.0, faultStatuses=[503])["faultRate"] == 1.0
    assert api.call("GET", "largepersongroups", expect=None).status_code == 503
    face_api.reset()
    assert face_api.stats() == {"calls": 0, "throttled": 0, "faults": 0, "byStatus": {}, "byOperation": {},
                                "trainRequests": 0, "trainings": 0, "busySeconds": 0.0, "personIds": []}
    assert api.call("GET", "largepersongroups").json() == []
    bad = requests.post(f"{face_api.endpoint}/_emulator/config", json={"faultRate": 2}, timeout=5)
    assert bad.status_code == 400


def test_required_key() -> None:
    emu = start_face_emulator("--key", "s3cret", "--synthetic")
    try:
        url = emu.url("largepersongroups")
        for headers in ({}, {"Ocp-Apim-Subscription-Key": "wrong"}, {"Authorization": "Bearer nope"}):
            r = requests.get(url, headers=headers, timeout=5)
            assert r.status_code == 401 and r.json()["error"]["code"] == "401"
            assert "Access denied due to invalid subscription key" in r.json()["error"]["message"]
        assert requests.get(url, headers={"Ocp-Apim-Subscription-Key": "s3cret"}, timeout=5).status_code == 200
        assert requests.get(f"{emu.endpoint}/_emulator/stats", timeout=5).json()["byStatus"] == {"401": 3, "200": 1}
    finally:
        emu.stop()


def test_state_survives_restart(tmp_path: Any) -> None:
    data = str(tmp_path / "face-data")
    emu = start_face_emulator("--data-dir", data)
    try:
        api = Api(emu)
        pids = api.enroll("g", ["family2-lady", "obama"])
        api.train("g")
        late = api.person("g", "late")  # journaled, not in the training snapshot
    finally:
        emu.stop()
    emu = start_face_emulator("--data-dir", data)
    try:
        api = Api(emu)
        assert api.call("GET", "largepersongroups/g?returnRecognitionModel=true").json()["recognitionModel"] == \
            "recognition_04"
        assert api.call("GET", "largepersongroups/g/training").json()["status"] == "succeeded"
        persons = api.call("GET", "largepersongroups/g/persons").json()
        assert sorted(p["personId"] for p in persons) == sorted([*pids, late])
        [face] = api.detect("obama/3.jpg")
        best = api.identify("g", [face["faceId"]]).json()[0]["candidates"][0]
        assert pids[best["personId"]] == "obama"  # the snapshot was restored, no retraining
        api.call("DELETE", f"largepersongroups/g/persons/{late}")
        emu.proc.kill()  # no clean shutdown: the journal must carry the delete
        emu.proc.wait(timeout=10)
    finally:
        emu.stop()
    emu = start_face_emulator("--data-dir", data)
    try:
        persons = Api(emu).call("GET", "largepersongroups/g/persons").json()
        assert sorted(p["personId"] for p in persons) == sorted(pids)
    finally:
        emu.stop()


def test_synthetic_mode_per_config(api: Api, face_api: FaceEmulator) -> None:
    face_api.configure(synthetic=True)
    api.group("g")
    pid = api.person("g", "p")
    api.add_face("g", pid, "nonfaces/1.jpg")  # synthetic: one face per image, hash descriptor
    api.train("g")
    [face] = api.detect("nonfaces/1.jpg")
    assert api.identify("g", [face["faceId"]]).json()[0]["candidates"][0]["personId"] == pid
    [other] = api.detect("nonfaces/2.jpg")
    assert api.identify("g", [other["faceId"]]).json()[0]["candidates"] == []
