"""The Face client: ``FaceRestClient`` implements ``FacePort`` over the Face REST API with ``requests``.

* Auth: ``Ocp-Apim-Subscription-Key`` when a key is configured (the local emulator only), otherwise an
  Entra bearer token (scope ``https://cognitiveservices.azure.com/.default``) from azure-identity,
  cached until five minutes before it expires.
* Every call has a connect + read timeout, and is retried (tenacity) on 429, 500, 502, 503, 504,
  409 ``ConcurrentOperationConflict`` and connection errors / timeouts, with exponential backoff and
  jitter, waiting at least ``Retry-After`` when the service sends it; at most ``max_retries`` retries.
* Every attempt carries a fresh ``client-request-id`` (uuid4), which is logged with the method, the
  *path template* (never the real path: it holds the personId, which is a secret), status and time.
* Service errors become the typed exceptions of ``shared.errors``; messages are scrubbed of anything
  that looks like an id, and no exception is chained to a ``requests`` error (whose text holds the URL).
  The mapping and the scrubbing are in face_errors.py, the retry policy in face_retry.py.

Importing this module is cheap: ``requests``, ``tenacity`` and ``azure.identity`` are imported on the
first call, and the ``requests.Session`` is created then too.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

from shared import errors
from shared.adapters.credentials import COGNITIVE_SERVICES_SCOPE
from shared.adapters.face_errors import install_log_scrubbing, map_error, scrub
from shared.adapters.face_retry import backoff_seconds, is_retryable, parse_retry_after
from shared.adapters.http_env import configure_session
from shared.ports import (
    Candidate,
    DetectedFace,
    FaceRectangle,
    Identification,
    PersonRecord,
    TrainingStatus,
)

if TYPE_CHECKING:
    import requests
    from azure.core.credentials import TokenCredential
    from tenacity import RetryCallState

    from shared.adapters.credentials import CachedToken
    from shared.settings import Settings

logger = logging.getLogger(__name__)  # "shared.adapters.face_rest"

# --- path templates (what is logged) ------------------------------------------------------------
GROUPS = "/largepersongroups"
GROUP = "/largepersongroups/{groupId}"
TRAIN = GROUP + "/train"
TRAINING = GROUP + "/training"
PERSONS = GROUP + "/persons"
PERSON = PERSONS + "/{personId}"
FACES = PERSON + "/persistedfaces"
FACE = FACES + "/{persistedFaceId}"
DETECT = "/detect"
IDENTIFY = "/identify"
VERIFY = "/verify"

PAGE_SIZE = 1000

# Face ids are UUIDs and group ids match ^[a-z0-9-_]+$ (<= 64); anything else (a '/', '..', an empty
# string) would change which resource the path names, so it is refused before any call.
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_TEMPLATE_FIELD_RE = re.compile(r"\{(\w+)\}")


# --- pure helpers (unit-tested) -----------------------------------------------------------------
def build_path(template: str, **ids: str) -> str:
    """Fill a path template with URL-quoted ids. Raises ValueError (naming the field, never the value)."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = ids.get(name)
        if not isinstance(value, str) or not _ID_RE.fullmatch(value):
            raise ValueError(f"{name} is not a valid Face id")
        return quote(value, safe="")

    return _TEMPLATE_FIELD_RE.sub(fill, template)


# --- the client ---------------------------------------------------------------------------------
class _Retry(Exception):
    """Raised by one attempt that may be retried; carries the error to raise if retries run out."""

    def __init__(self, error: errors.FaceError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


_UNPARSEABLE = object()


class FaceRestClient:
    """``FacePort`` over the Face REST API. Thread-safe; one ``requests.Session`` per client."""

    def __init__(
        self,
        *,
        endpoint: str,
        api_version: str = "v1.2",
        key: str | None = None,
        credential: TokenCredential | None = None,
        managed_identity_client_id: str | None = None,
        recognition_model: str = "recognition_04",
        detection_model: str = "detection_03",
        timeout: float | tuple[float, float] = 10.0,
        max_retries: int = 5,
        transport: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_initial: float = 0.5,
        backoff_max: float = 20.0,
        max_wait: float = 60.0,
        face_id_ttl: int = 600,
        pool_size: int = 16,
    ) -> None:
        if not endpoint.startswith(("https://", "http://")):
            raise ValueError("endpoint must be an http(s) URL")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if not 60 <= face_id_ttl <= 86400:
            raise ValueError("face_id_ttl must be between 60 and 86400 seconds")
        self._endpoint = endpoint.rstrip("/")
        self._api_version = api_version
        self._base = f"{self._endpoint}/face/{api_version}"
        self._key = key or None
        self._credential = credential
        self._mi_client_id = managed_identity_client_id
        self.recognition_model = recognition_model
        self.detection_model = detection_model
        self._timeout: tuple[float, float] = (timeout, timeout) if isinstance(timeout, (int, float)) else timeout
        self._max_retries = max_retries
        self._sleep = sleep
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._max_wait = max_wait
        self._face_id_ttl = face_id_ttl
        # Told about every 429 with its Retry-After (seconds), so that the process's Face call budget
        # (shared/domain/pacing.py) stops every worker, not only the throttled call's retry.
        self.on_throttled: Callable[[float], None] | None = None
        self._pool_size = pool_size
        self._session: requests.Session | None = transport
        self._owns_session = transport is None
        self._token: CachedToken | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> FaceRestClient:
        """The client the functions use. Nothing is built here: session and credential come lazily."""
        options: dict[str, Any] = {
            "endpoint": settings.face_endpoint,
            "api_version": settings.face_api_version,
            "key": settings.face_key,
            "managed_identity_client_id": settings.managed_identity_client_id,
            "recognition_model": settings.recognition_model,
            "detection_model": settings.detection_model,
            "timeout": settings.face_timeout_seconds,
            "max_retries": settings.face_max_retries,
        }
        options.update(overrides)
        return cls(**options)

    def __repr__(self) -> str:
        auth = "key" if self._key else "entra"
        return f"FaceRestClient(endpoint={self._endpoint!r}, api_version={self._api_version!r}, auth={auth!r})"

    def close(self) -> None:
        with self._lock:
            if self._session is not None and self._owns_session:
                self._session.close()
                self._session = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- LargePersonGroup -----------------------------------------------------------------------
    def create_group(self, group_id: str, *, name: str, recognition_model: str, user_data: str | None = None) -> None:
        """PUT the group. Raises ``LargePersonGroupExists`` if it is already there (catch it to be idempotent)."""
        body: dict[str, Any] = {"name": name, "recognitionModel": recognition_model}
        if user_data is not None:
            body["userData"] = user_data
        self._call("PUT", GROUP, {"groupId": group_id}, json_body=body)

    def get_group(self, group_id: str) -> Mapping[str, Any]:
        result = self._call("GET", GROUP, {"groupId": group_id}, params={"returnRecognitionModel": "true"})
        return _as_dict(result)

    def list_groups(self, *, start: str | None = None, top: int = PAGE_SIZE) -> list[Mapping[str, Any]]:
        params = {"top": str(top), "returnRecognitionModel": "true"}
        if start is not None:
            params["start"] = start
        result = self._call("GET", GROUPS, {}, params=params)
        return [_as_dict(g) for g in _as_list(result)]

    def delete_group(self, group_id: str) -> None:
        self._call("DELETE", GROUP, {"groupId": group_id})

    def train(self, group_id: str) -> None:
        """Start training (202). Poll ``training_status``."""
        self._call("POST", TRAIN, {"groupId": group_id}, data=b"", headers={"Content-Length": "0"})

    def training_status(self, group_id: str) -> TrainingStatus:
        d = _as_dict(self._call("GET", TRAINING, {"groupId": group_id}))
        return TrainingStatus(
            status=str(d.get("status", "")),
            created=d.get("createdDateTime"),
            last_action=d.get("lastActionDateTime"),
            last_successful=d.get("lastSuccessfulTrainingDateTime"),
            message=d.get("message"),
        )

    # --- persons ---------------------------------------------------------------------------------
    def create_person(self, group_id: str, *, name: str, user_data: str | None = None) -> str:
        """POST a person; returns the personId. Not idempotent on the service side: a retried attempt
        whose first try was processed but timed out leaves an extra (faceless) person behind."""
        body: dict[str, Any] = {"name": name}
        if user_data is not None:
            body["userData"] = user_data
        d = _as_dict(self._call("POST", PERSONS, {"groupId": group_id}, json_body=body))
        return _required_str(d, "personId", "POST", PERSONS)

    def get_person(self, group_id: str, person_id: str) -> PersonRecord:
        return _person(_as_dict(self._call("GET", PERSON, {"groupId": group_id, "personId": person_id})))

    def list_persons(self, group_id: str, *, start: str | None = None, top: int = PAGE_SIZE) -> list[PersonRecord]:
        params = {"top": str(top)}
        if start is not None:
            params["start"] = start
        result = self._call("GET", PERSONS, {"groupId": group_id}, params=params)
        return [_person(_as_dict(p)) for p in _as_list(result)]

    def iter_persons(self, group_id: str, *, page_size: int = PAGE_SIZE) -> Iterator[PersonRecord]:
        """Every person of the group, paging with ``start`` = the last personId of the previous page."""
        start: str | None = None
        while True:
            page = self.list_persons(group_id, start=start, top=page_size)
            yield from page
            if len(page) < page_size:
                return
            start = page[-1].person_id

    def update_person(self, group_id: str, person_id: str, *, name: str | None = None,
                      user_data: str | None = None) -> None:
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if user_data is not None:
            body["userData"] = user_data
        if not body:
            return
        self._call("PATCH", PERSON, {"groupId": group_id, "personId": person_id}, json_body=body)

    def delete_person(self, group_id: str, person_id: str) -> None:
        """Deletes the person and its face features. A retried delete whose first try went through
        raises ``PersonNotFound``: callers deleting should treat that as done."""
        self._call("DELETE", PERSON, {"groupId": group_id, "personId": person_id})

    # --- faces -----------------------------------------------------------------------------------
    def add_face(self, group_id: str, person_id: str, image: bytes, *, user_data: str | None = None,
                 target_face: FaceRectangle | None = None) -> str:
        params = {"detectionModel": self.detection_model}
        if target_face is not None:
            t = target_face
            params["targetFace"] = f"{t.left},{t.top},{t.width},{t.height}"
        if user_data is not None:
            params["userData"] = user_data
        # Not idempotent: an attempt that failed without a clear "not done" (a read timeout, a dropped
        # connection, a 5xx) may have added the face. Before retrying after one, look for a face carrying
        # this userData (the caller's tag for the photo), so a retry never adds the same photo twice.
        recover = None if user_data is None else (lambda: self._tagged_face(group_id, person_id, user_data))
        d = _as_dict(self._call("POST", FACES, {"groupId": group_id, "personId": person_id}, params=params,
                                data=image, headers={"Content-Type": "application/octet-stream"}, recover=recover))
        return _required_str(d, "persistedFaceId", "POST", FACES)

    def _tagged_face(self, group_id: str, person_id: str, user_data: str) -> dict[str, Any] | None:
        """``{"persistedFaceId": ...}`` of the person's face whose userData is ``user_data``, if any."""
        for face_id in self.get_person(group_id, person_id).persisted_face_ids:
            if self.get_face(group_id, person_id, face_id).get("userData") == user_data:
                return {"persistedFaceId": face_id}
        return None

    def get_face(self, group_id: str, person_id: str, persisted_face_id: str) -> Mapping[str, Any]:
        """``{"persistedFaceId", "userData"}`` of one persisted face."""
        return _as_dict(self._call("GET", FACE, {"groupId": group_id, "personId": person_id,
                                                 "persistedFaceId": persisted_face_id}))

    def delete_face(self, group_id: str, person_id: str, persisted_face_id: str) -> None:
        self._call("DELETE", FACE, {"groupId": group_id, "personId": person_id,
                                    "persistedFaceId": persisted_face_id})

    # --- detect / identify / verify --------------------------------------------------------------
    def detect(self, image: bytes, *, return_face_id: bool = True, attributes: Sequence[str] = (),
               recognition_model: str | None = None) -> list[DetectedFace]:
        params = {
            "returnFaceId": "true" if return_face_id else "false",
            "returnFaceLandmarks": "false",
            "recognitionModel": recognition_model or self.recognition_model,
            "returnRecognitionModel": "true",
            "detectionModel": self.detection_model,
        }
        if attributes:
            params["returnFaceAttributes"] = ",".join(attributes)
        if return_face_id:
            params["faceIdTimeToLive"] = str(self._face_id_ttl)
        result = self._call("POST", DETECT, {}, params=params, data=image,
                            headers={"Content-Type": "application/octet-stream"})
        return [_detected(_as_dict(f)) for f in _as_list(result)]

    def identify(self, group_id: str, face_ids: Sequence[str], *, max_candidates: int = 1,
                 confidence_threshold: float | None = None) -> list[Identification]:
        if not 1 <= len(face_ids) <= 10:
            raise ValueError("identify takes 1 to 10 faceIds")
        if not 1 <= max_candidates <= 100:
            raise ValueError("max_candidates must be between 1 and 100")
        body: dict[str, Any] = {
            "faceIds": list(face_ids),
            "largePersonGroupId": group_id,
            "maxNumOfCandidatesReturned": max_candidates,
        }
        if confidence_threshold is not None:
            body["confidenceThreshold"] = confidence_threshold
        result = self._call("POST", IDENTIFY, {}, json_body=body)
        out = []
        for item in _as_list(result):
            d = _as_dict(item)
            candidates = tuple(
                Candidate(person_id=str(c["personId"]), confidence=float(c["confidence"]))
                for c in (_as_dict(x) for x in _as_list(d.get("candidates", [])))
            )
            out.append(Identification(face_id=str(d.get("faceId", "")), candidates=candidates))
        return out

    def verify(self, group_id: str, face_id: str, person_id: str) -> tuple[bool, float]:
        body = {"faceId": face_id, "personId": person_id, "largePersonGroupId": group_id}
        d = _as_dict(self._call("POST", VERIFY, {}, json_body=body))
        return bool(d.get("isIdentical", False)), float(d.get("confidence", 0.0))

    # --- transport -------------------------------------------------------------------------------
    def _get_session(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                import requests
                from requests.adapters import HTTPAdapter

                install_log_scrubbing()
                session = requests.Session()
                configure_session(session)  # the environment read once, not on every request
                adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self._pool_size, max_retries=0)
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                self._session = session
            return self._session

    def _auth_headers(self) -> dict[str, str]:
        if self._key:
            return {"Ocp-Apim-Subscription-Key": self._key}
        with self._lock:
            if self._token is None:
                from shared.adapters.credentials import CachedToken, default_credential

                credential = self._credential or default_credential(self._mi_client_id)
                self._token = CachedToken(credential, COGNITIVE_SERVICES_SCOPE)
            token = self._token
        try:
            bearer = token.get()
        except Exception as exc:
            failure: str | None = type(exc).__name__
        else:
            failure = None
        if failure is not None:  # raised outside the except block: no chained credential internals
            raise errors.FaceAuthError(f"Face: could not get an Entra token ({failure})",
                                       code="CredentialUnavailable", status=401)
        return {"Authorization": f"Bearer {bearer}"}

    def _call(self, method: str, template: str, ids: Mapping[str, str], *,
              params: Mapping[str, str] | None = None, json_body: Any = None, data: bytes | None = None,
              headers: Mapping[str, str] | None = None, recover: Callable[[], Any] | None = None) -> Any:
        """One logical call: attempts with retries. Returns the parsed JSON body (None when empty).

        ``recover`` (for calls that are not idempotent): run before a retry that follows an attempt the
        service may have carried out (anything but a 429 or a connect timeout); when it returns
        something, that is the call's result and nothing is sent again."""
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

        url = self._base + build_path(template, **ids)
        body = data
        extra_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            extra_headers["Content-Type"] = "application/json"
        session = self._get_session()
        attempts = [0]
        maybe_done = [False]
        recovered: list[Any] = []

        def attempt() -> requests.Response | None:
            attempts[0] += 1
            if recover is not None and maybe_done[0]:
                found = recover()
                if found is not None:
                    recovered.append(found)
                    return None
            try:
                return self._attempt(session, method, template, url, params, body, extra_headers, attempts[0])
            except _Retry as failed:
                maybe_done[0] = failed.error.status != 429 and failed.error.code != "ConnectTimeout"
                raise

        retrying = Retrying(
            stop=stop_after_attempt(self._max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(_Retry),
            sleep=self._sleep,
            before_sleep=self._log_retry(method, template),
            reraise=True,
        )
        final: errors.FaceError | None = None
        try:
            response = retrying(attempt)
        except _Retry as exhausted:
            final = exhausted.error
        if final is not None:  # raised outside the except block, so nothing is chained to it
            raise final
        if recovered:
            return recovered[0]
        assert response is not None
        if not response.content:
            return None
        parsed: Any = _UNPARSEABLE
        try:
            parsed = response.json()
        except ValueError:
            pass
        if parsed is _UNPARSEABLE:
            raise errors.FaceError(f"Face: unparseable response ({method} {template})", code="InvalidResponse",
                                   status=response.status_code)
        return parsed

    def _attempt(self, session: requests.Session, method: str, template: str, url: str,
                 params: Mapping[str, str] | None, body: bytes | None, headers: Mapping[str, str],
                 attempt: int) -> requests.Response:
        import requests

        request_id = str(uuid.uuid4())
        all_headers = {**self._auth_headers(), **headers, "client-request-id": request_id}
        started = time.perf_counter()
        response: requests.Response | None = None
        failure = ""
        try:
            response = session.request(method, url, params=params, data=body, headers=all_headers,
                                       timeout=self._timeout, allow_redirects=False)
        except requests.Timeout as exc:
            failure = "ConnectTimeout" if isinstance(exc, requests.ConnectTimeout) else "Timeout"
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            failure = type(exc).__name__
        except requests.RequestException as exc:
            failure = "!" + type(exc).__name__
        elapsed_ms = int((time.perf_counter() - started) * 1000)

        if response is None:
            retryable = not failure.startswith("!")
            failure = failure.lstrip("!")
            self._log(logging.WARNING, method, template, failure, elapsed_ms, attempt, request_id)
            if not retryable:
                raise errors.FaceError(f"Face request failed: {failure} ({method} {template})",
                                       code=failure, status=0, request_id=request_id)
            raise _Retry(errors.FaceTransientError(
                f"Face {failure} after {elapsed_ms} ms ({method} {template})",
                code=failure, status=0, request_id=request_id))

        status = response.status_code
        if status < 300:
            self._log(logging.DEBUG, method, template, status, elapsed_ms, attempt, request_id)
            return response
        error = map_error(status, response.content, method=method, template=template, request_id=request_id)
        if status == 401 and self._token is not None:
            self._token.invalidate()
        if is_retryable(status, error.code):
            self._log(logging.WARNING, method, template, status, elapsed_ms, attempt, request_id, error.code)
            retry_after = parse_retry_after(response.headers)
            if status == 429 and self.on_throttled is not None:
                self.on_throttled(retry_after if retry_after is not None else 1.0)
            raise _Retry(error, retry_after)
        self._log(logging.INFO, method, template, status, elapsed_ms, attempt, request_id, error.code)
        raise error

    def _wait(self, state: RetryCallState) -> float:
        retry_after: float | None = None
        outcome = state.outcome
        if outcome is not None and outcome.failed:
            exc = outcome.exception()
            if isinstance(exc, _Retry):
                retry_after = exc.retry_after
        return backoff_seconds(state.attempt_number, initial=self._backoff_initial, maximum=self._backoff_max,
                               retry_after=retry_after, max_wait=self._max_wait)

    @staticmethod
    def _log_retry(method: str, template: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            logger.info("Face %s %s: retry %d in %.2f s", method, template, state.attempt_number, wait,
                        extra={"face_method": method, "face_path": template, "face_retry": state.attempt_number,
                               "face_wait_s": round(wait, 3)})

        return before_sleep

    @staticmethod
    def _log(level: int, method: str, template: str, status: int | str, elapsed_ms: int, attempt: int,
             request_id: str, code: str = "") -> None:
        logger.log(
            level,
            "Face %s %s -> %s%s in %d ms (attempt %d, client-request-id %s)",
            method, template, status, f" {code}" if code and code != str(status) else "", elapsed_ms, attempt,
            request_id,
            extra={"face_method": method, "face_path": template, "face_status": status, "face_code": code,
                   "face_elapsed_ms": elapsed_ms, "face_attempt": attempt, "client_request_id": request_id},
        )


# --- response parsing ---------------------------------------------------------------------------
def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise errors.FaceError("Face: unexpected response shape (expected an object)", code="InvalidResponse")


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    raise errors.FaceError("Face: unexpected response shape (expected an array)", code="InvalidResponse")


def _required_str(d: Mapping[str, Any], key: str, method: str, template: str) -> str:
    value = d.get(key)
    if not isinstance(value, str) or not value:
        raise errors.FaceError(f"Face: response lacks {key} ({method} {template})", code="InvalidResponse")
    return value


def _person(d: Mapping[str, Any]) -> PersonRecord:
    return PersonRecord(
        person_id=str(d.get("personId", "")),
        name=str(d.get("name", "")),
        user_data=d.get("userData"),
        persisted_face_ids=tuple(str(f) for f in d.get("persistedFaceIds") or ()),
    )


def _detected(d: Mapping[str, Any]) -> DetectedFace:
    r = _as_dict(d.get("faceRectangle", {}))
    return DetectedFace(
        face_id=d.get("faceId"),
        rectangle=FaceRectangle(top=int(r.get("top", 0)), left=int(r.get("left", 0)),
                                width=int(r.get("width", 0)), height=int(r.get("height", 0))),
        attributes=dict(d.get("faceAttributes") or {}),
        recognition_model=d.get("recognitionModel"),
    )


__all__ = [
    "FaceRestClient",
    "backoff_seconds",
    "build_path",
    "install_log_scrubbing",
    "is_retryable",
    "map_error",
    "parse_retry_after",
    "scrub",
]
