"""The Face client's request building, retry loop, auth and logging, over a scripted fake session.

Only pure client logic is tested here; the behaviour against the Face emulator is in
tests/integration/test_face_client.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from shared import errors
from shared.adapters.credentials import CachedToken
from shared.adapters.face_rest import FaceRestClient
from shared.ports import FacePort, FaceRectangle
from shared.settings import Settings

PID = "25985303-c537-4467-b41d-bdb45cd95ca1"
FID = "015839fb-fbd9-4f79-ace9-7675fc2f1dd9"
EP = "https://face-x.cognitiveservices.azure.com"


def response(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    r.headers = CaseInsensitiveDict(headers or {})
    return r


class Sent:
    def __init__(self, method: str, url: str, kwargs: dict[str, Any]) -> None:
        self.method = method
        self.url = url
        self.path = urlsplit(url).path
        self.params: dict[str, str] = dict(kwargs.get("params") or {})
        self.data: bytes | None = kwargs.get("data")
        self.headers: dict[str, str] = dict(kwargs.get("headers") or {})
        self.timeout = kwargs.get("timeout")

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class ScriptedSession(requests.Session):
    """Answers each request with the next scripted item: a Response or an exception to raise."""

    def __init__(self, *script: requests.Response | BaseException) -> None:
        super().__init__()
        self.script = list(script)
        self.sent: list[Sent] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent.append(Sent(str(method), str(url), kwargs))
        item = self.script.pop(0) if self.script else response(200)
        if isinstance(item, BaseException):
            raise item
        return item


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(session: requests.Session, **kw: Any) -> tuple[FaceRestClient, Sleeps]:
    sleeps = Sleeps()
    options: dict[str, Any] = {"endpoint": EP, "key": "k", "transport": session, "sleep": sleeps, "max_retries": 3}
    options.update(kw)
    return FaceRestClient(**options), sleeps


# --- construction --------------------------------------------------------------------------------
def test_is_a_face_port_and_builds_nothing_up_front() -> None:
    c = FaceRestClient(endpoint=EP + "/", key="secret")
    port: FacePort = c
    assert port is c
    assert c._session is None
    assert c._token is None
    assert "secret" not in repr(c)
    assert repr(c) == f"FaceRestClient(endpoint='{EP}', api_version='v1.2', auth='key')"


def test_from_settings() -> None:
    s = Settings(face_endpoint=EP, face_api_version="v1.2-preview.1", face_key=None, recognition_model="recognition_03",
                 detection_model="detection_01", face_timeout_seconds=3.5, face_max_retries=2,
                 managed_identity_client_id="mi-client")
    c = FaceRestClient.from_settings(s)
    assert c._base == f"{EP}/face/v1.2-preview.1"
    assert (c.recognition_model, c.detection_model) == ("recognition_03", "detection_01")
    assert c._timeout == (3.5, 3.5)
    assert c._max_retries == 2
    assert c._mi_client_id == "mi-client"
    assert c._key is None
    assert repr(c).endswith("auth='entra')")


def test_rejects_bad_options() -> None:
    with pytest.raises(ValueError):
        FaceRestClient(endpoint="face.example.com")
    with pytest.raises(ValueError):
        FaceRestClient(endpoint=EP, max_retries=-1)


def test_session_created_lazily_once() -> None:
    c = FaceRestClient(endpoint=EP, key="k")
    s1 = c._get_session()
    assert c._get_session() is s1
    c.close()
    assert c._session is None


# --- request shapes --------------------------------------------------------------------------------
def test_create_group_sends_name_and_model() -> None:
    s = ScriptedSession(response(200))
    c, _ = client(s)
    c.create_group("lpg-1", name="Staff", recognition_model="recognition_04", user_data="u")
    (r,) = s.sent
    assert (r.method, r.url) == ("PUT", f"{EP}/face/v1.2/largepersongroups/lpg-1")
    assert r.json() == {"name": "Staff", "recognitionModel": "recognition_04", "userData": "u"}
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Ocp-Apim-Subscription-Key"] == "k"
    assert "Authorization" not in r.headers
    assert r.timeout == (10.0, 10.0)


def test_get_and_list_groups() -> None:
    g = {"largePersonGroupId": "lpg-1", "name": "Staff", "recognitionModel": "recognition_04"}
    s = ScriptedSession(response(200, g), response(200, [g]))
    c, _ = client(s)
    assert c.get_group("lpg-1") == g
    assert c.list_groups(start="lpg-0", top=10) == [g]
    assert s.sent[0].params == {"returnRecognitionModel": "true"}
    assert s.sent[1].path == "/face/v1.2/largepersongroups"
    assert s.sent[1].params == {"top": "10", "returnRecognitionModel": "true", "start": "lpg-0"}


def test_person_calls() -> None:
    p = {"personId": PID, "name": "n", "userData": "u", "persistedFaceIds": [FID]}
    s = ScriptedSession(response(200, {"personId": PID}), response(200, p), response(200), response(200),
                        response(200))
    c, _ = client(s)
    assert c.create_person("g", name="n", user_data="u") == PID
    rec = c.get_person("g", PID)
    assert (rec.person_id, rec.name, rec.user_data, rec.persisted_face_ids) == (PID, "n", "u", (FID,))
    c.update_person("g", PID, user_data="v")
    c.update_person("g", PID)  # nothing to change: no call
    c.delete_person("g", PID)
    c.delete_group("g")
    assert [(r.method, r.path) for r in s.sent] == [
        ("POST", "/face/v1.2/largepersongroups/g/persons"),
        ("GET", f"/face/v1.2/largepersongroups/g/persons/{PID}"),
        ("PATCH", f"/face/v1.2/largepersongroups/g/persons/{PID}"),
        ("DELETE", f"/face/v1.2/largepersongroups/g/persons/{PID}"),
        ("DELETE", "/face/v1.2/largepersongroups/g"),
    ]
    assert s.sent[0].json() == {"name": "n", "userData": "u"}
    assert s.sent[2].json() == {"userData": "v"}


def test_iter_persons_pages_with_start() -> None:
    def page(ids: list[str]) -> requests.Response:
        return response(200, [{"personId": i, "name": "n", "persistedFaceIds": []} for i in ids])

    s = ScriptedSession(page(["a", "b"]), page(["c", "d"]), page(["e"]))
    c, _ = client(s)
    assert [p.person_id for p in c.iter_persons("g", page_size=2)] == ["a", "b", "c", "d", "e"]
    assert [r.params for r in s.sent] == [{"top": "2"}, {"top": "2", "start": "b"}, {"top": "2", "start": "d"}]
    s2 = ScriptedSession(response(200, []))
    c2, _ = client(s2)
    assert list(c2.iter_persons("g")) == []
    assert s2.sent[0].params == {"top": "1000"}


def test_add_and_delete_face() -> None:
    s = ScriptedSession(response(200, {"persistedFaceId": FID}), response(200, {"persistedFaceId": FID, "userData": "front"}),
                        response(200))
    c, _ = client(s)
    img = b"\xff\xd8jpeg"
    assert c.add_face("g", PID, img, user_data="front", target_face=FaceRectangle(top=2, left=1, width=30, height=40)) == FID
    assert c.get_face("g", PID, FID) == {"persistedFaceId": FID, "userData": "front"}
    c.delete_face("g", PID, FID)
    add, get, delete = s.sent
    assert (get.method, get.path) == ("GET", f"/face/v1.2/largepersongroups/g/persons/{PID}/persistedfaces/{FID}")
    assert add.path == f"/face/v1.2/largepersongroups/g/persons/{PID}/persistedfaces"
    assert add.params == {"detectionModel": "detection_03", "targetFace": "1,2,30,40", "userData": "front"}
    assert add.data == img
    assert add.headers["Content-Type"] == "application/octet-stream"
    assert (delete.method, delete.path) == ("DELETE", f"/face/v1.2/largepersongroups/g/persons/{PID}/persistedfaces/{FID}")


def test_train_and_status() -> None:
    st = {"status": "succeeded", "createdDateTime": "c", "lastActionDateTime": "l",
          "lastSuccessfulTrainingDateTime": "s", "message": None}
    s = ScriptedSession(response(202), response(200, st))
    c, _ = client(s)
    c.train("g")
    ts = c.training_status("g")
    assert (ts.status, ts.created, ts.last_action, ts.last_successful, ts.message) == ("succeeded", "c", "l", "s", None)
    assert (s.sent[0].method, s.sent[0].path) == ("POST", "/face/v1.2/largepersongroups/g/train")
    assert s.sent[0].headers["Content-Length"] == "0"
    assert s.sent[0].data == b""
    assert s.sent[1].path == "/face/v1.2/largepersongroups/g/training"


def test_detect_sends_models_explicitly() -> None:
    face = {"faceId": FID, "recognitionModel": "recognition_04",
            "faceRectangle": {"top": 1, "left": 2, "width": 3, "height": 4},
            "faceAttributes": {"qualityForRecognition": "high"}}
    s = ScriptedSession(response(200, [face]), response(200, []))
    c, _ = client(s)
    (d,) = c.detect(b"img", attributes=["qualityForRecognition", "headPose"])
    assert d.face_id == FID
    assert d.rectangle == FaceRectangle(top=1, left=2, width=3, height=4)
    assert d.attributes == {"qualityForRecognition": "high"}
    assert d.recognition_model == "recognition_04"
    assert s.sent[0].path == "/face/v1.2/detect"
    assert s.sent[0].params == {
        "returnFaceId": "true", "returnFaceLandmarks": "false", "recognitionModel": "recognition_04",
        "returnRecognitionModel": "true", "detectionModel": "detection_03",
        "returnFaceAttributes": "qualityForRecognition,headPose", "faceIdTimeToLive": "600",
    }
    assert c.detect(b"img", return_face_id=False, recognition_model="recognition_03") == []
    assert s.sent[1].params["returnFaceId"] == "false"
    assert s.sent[1].params["recognitionModel"] == "recognition_03"
    assert "faceIdTimeToLive" not in s.sent[1].params


def test_identify_and_verify() -> None:
    s = ScriptedSession(
        response(200, [{"faceId": FID, "candidates": [{"personId": PID, "confidence": 0.9}]},
                       {"faceId": "f2", "candidates": []}]),
        response(200, {"isIdentical": True, "confidence": 0.81}),
    )
    c, _ = client(s)
    ids = c.identify("g", [FID, "f2"], max_candidates=3, confidence_threshold=0.6)
    assert ids[0].face_id == FID
    assert ids[0].candidates[0].person_id == PID
    assert ids[0].candidates[0].confidence == 0.9
    assert ids[1].candidates == ()
    assert s.sent[0].json() == {"faceIds": [FID, "f2"], "largePersonGroupId": "g", "maxNumOfCandidatesReturned": 3,
                                "confidenceThreshold": 0.6}
    assert c.verify("g", FID, PID) == (True, 0.81)
    assert s.sent[1].json() == {"faceId": FID, "personId": PID, "largePersonGroupId": "g"}
    with pytest.raises(ValueError):
        c.identify("g", [])
    with pytest.raises(ValueError):
        c.identify("g", ["f"] * 11)


# --- retries ---------------------------------------------------------------------------------------
def test_429_with_retry_after_then_success() -> None:
    s = ScriptedSession(response(429, {"error": {"code": "429", "message": "Rate limit is exceeded."}},
                                 {"Retry-After": "2"}),
                        response(200, {"personId": PID}))
    c, sleeps = client(s)
    assert c.create_person("g", name="n") == PID
    assert len(s.sent) == 2
    assert len(sleeps) == 1
    assert sleeps[0] >= 2.0
    ids = [r.headers["client-request-id"] for r in s.sent]
    assert len(set(ids)) == 2


def test_retries_exhausted_raise_typed_error_with_last_request_id() -> None:
    s = ScriptedSession(*[response(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}})] * 4)
    c, sleeps = client(s, max_retries=3)
    with pytest.raises(errors.FaceTransientError) as info:
        c.get_group("g")
    assert type(info.value) is errors.FaceTransientError
    assert info.value.status == 503
    assert info.value.request_id == s.sent[-1].headers["client-request-id"]
    assert len(s.sent) == 4
    assert len(sleeps) == 3
    assert sleeps == sorted(sleeps) or all(x <= 20 for x in sleeps)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


def test_rate_limited_when_429s_outlast_retries() -> None:
    s = ScriptedSession(*[response(429, {"error": {"statusCode": 429, "message": "Rate limit is exceeded."}})] * 3)
    c, _sleeps = client(s, max_retries=2)
    with pytest.raises(errors.FaceRateLimited):
        c.detect(b"img")
    assert len(s.sent) == 3


def test_zero_retries() -> None:
    s = ScriptedSession(response(500))
    c, sleeps = client(s, max_retries=0)
    with pytest.raises(errors.FaceTransientError):
        c.delete_group("g")
    assert len(s.sent) == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [500, 502, 504])
def test_5xx_retried(status: int) -> None:
    s = ScriptedSession(response(status), response(200))
    c, _sleeps = client(s)
    c.delete_group("g")
    assert len(s.sent) == 2


def test_concurrent_operation_conflict_retried_other_409s_not() -> None:
    s = ScriptedSession(response(409, {"error": {"code": "ConcurrentOperationConflict", "message": "try later"}}),
                        response(202))
    c, _ = client(s)
    c.train("g")
    assert len(s.sent) == 2
    s2 = ScriptedSession(response(409, {"error": {"code": "LargePersonGroupExists", "message": "exists"}}))
    c2, sleeps = client(s2)
    with pytest.raises(errors.LargePersonGroupExists):
        c2.create_group("g", name="n", recognition_model="recognition_04")
    assert len(s2.sent) == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_4xx_never_retried(status: int) -> None:
    s = ScriptedSession(response(status, {"error": {"code": "X", "message": "m"}}), response(200))
    c, sleeps = client(s)
    with pytest.raises(errors.FaceError) as info:
        c.get_group("g")
    assert len(s.sent) == 1
    assert sleeps == []
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


def test_timeouts_and_connection_errors_retried_and_never_leak_the_url() -> None:
    url_text = f"HTTPConnectionPool: Max retries exceeded with url: /persons/{PID}"
    s = ScriptedSession(requests.ReadTimeout(url_text), requests.ConnectionError(url_text), response(200))
    c, sleeps = client(s)
    c.delete_person("g", PID)
    assert len(s.sent) == 3
    assert len(sleeps) == 2

    s2 = ScriptedSession(*[requests.ReadTimeout(url_text)] * 4)
    c2, _ = client(s2)
    with pytest.raises(errors.FaceTransientError) as info:
        c2.delete_person("g", PID)
    assert info.value.code == "Timeout"
    assert PID not in str(info.value) and PID not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_other_request_errors_not_retried_and_not_chained() -> None:
    s = ScriptedSession(requests.exceptions.InvalidHeader(f"bad /persons/{PID}"))
    c, sleeps = client(s)
    with pytest.raises(errors.FaceError) as info:
        c.get_person("g", PID)
    assert info.value.code == "InvalidHeader"
    assert PID not in str(info.value)
    assert info.value.__context__ is None
    assert sleeps == []


def test_unparseable_success_body() -> None:
    s = ScriptedSession(response(200, b"not json"))
    c, _ = client(s)
    with pytest.raises(errors.FaceError, match="unparseable"):
        c.get_group("g")


def test_person_id_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    s = ScriptedSession(
        response(503, headers={"Retry-After": "0"}),
        response(200, {"personId": PID, "name": "n", "persistedFaceIds": []}),
        response(404, {"error": {"code": "PersonNotFound", "message": f"Person {PID} is not found."}}),
    )
    c, _ = client(s)
    with caplog.at_level(logging.DEBUG):
        c.get_person("g", PID)
        with pytest.raises(errors.PersonNotFound) as info:
            c.delete_person("g", PID)
    lines = [r.getMessage() for r in caplog.records if r.name == "shared.adapters.face_rest"]
    assert len(lines) == 4  # 503, retry notice, 200, 404
    assert all(PID not in line for line in lines)
    assert any("GET /largepersongroups/{groupId}/persons/{personId} -> 503" in line for line in lines)
    assert all("client-request-id" in line for line in lines if "->" in line)
    assert PID not in str(info.value)
    rec = next(r for r in caplog.records if "-> 404" in r.getMessage())
    assert rec.__dict__["face_path"] == "/largepersongroups/{groupId}/persons/{personId}"
    assert rec.__dict__["client_request_id"] == s.sent[-1].headers["client-request-id"]


# --- Entra auth ------------------------------------------------------------------------------------
class FakeCredential:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.clock = clock

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.calls.append(scopes)
        return AccessToken(f"tok{len(self.calls)}", int(self.clock()) + 3600)


def test_bearer_token_used_and_cached() -> None:
    import time

    cred = FakeCredential(time.time)
    s = ScriptedSession(response(200), response(200))
    c, _ = client(s, key=None, credential=cred)
    c.delete_group("a")
    c.delete_group("b")
    assert cred.calls == [("https://cognitiveservices.azure.com/.default",)]
    assert [r.headers["Authorization"] for r in s.sent] == ["Bearer tok1", "Bearer tok1"]
    assert all("Ocp-Apim-Subscription-Key" not in r.headers for r in s.sent)


def test_token_refreshed_near_expiry_and_after_401() -> None:
    now = [1000.0]
    cred = FakeCredential(lambda: now[0])
    token = CachedToken(cred, "scope", clock=lambda: now[0])
    assert token.get() == "tok1"
    now[0] += 3000  # 600 s left: still fine
    assert token.get() == "tok1"
    now[0] += 400  # 200 s left: inside the 300 s margin
    assert token.get() == "tok2"
    token.invalidate()
    assert token.get() == "tok3"
    assert "tok" not in repr(token)

    s = ScriptedSession(response(401, {"error": {"code": "401", "message": "Access denied"}}), response(200))
    c, _ = client(s, key=None, credential=FakeCredential(lambda: now[0]))
    with pytest.raises(errors.FaceAuthError):
        c.delete_group("g")
    assert c._token is not None and c._token._token is None  # forgotten; next call fetches a new one


def test_credential_failure_is_an_auth_error() -> None:
    class Broken:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            from azure.core.exceptions import ClientAuthenticationError

            raise ClientAuthenticationError("no managed identity endpoint")

    s = ScriptedSession()
    c, _ = client(s, key=None, credential=Broken())
    with pytest.raises(errors.FaceAuthError, match="ClientAuthenticationError") as info:
        c.delete_group("g")
    assert info.value.__context__ is None
    assert s.sent == []


def test_default_credential_built_lazily_with_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.identity

    from shared.adapters import credentials

    built: list[dict[str, Any]] = []

    class FakeDefault:
        def __init__(self, **kwargs: Any) -> None:
            built.append(kwargs)

        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            from azure.core.credentials import AccessToken

            return AccessToken("t", 2**31)

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", FakeDefault)
    monkeypatch.setattr(credentials, "_credentials", {})
    s = ScriptedSession(response(200))
    c, _ = client(s, key=None, managed_identity_client_id="mi-1")
    assert built == []
    c.delete_group("g")
    assert built == [{"managed_identity_client_id": "mi-1"}]
    assert s.sent[0].headers["Authorization"] == "Bearer t"
