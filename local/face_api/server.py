"""HTTP front of the Face API emulator: routing, validation, auth, rate limit, fault injection and the
``/_emulator`` knobs. Standard library only (ThreadingHTTPServer)."""

from __future__ import annotations

import json
import math
import random
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from local.face_api import quality
from local.face_api.model import (
    BUILTIN_MODELS,
    DETECTION_MODELS,
    MODEL,
    Detection,
    InvalidImageError,
    confidence_from_distance,
    decode_image,
    synthetic_detection,
    to_model_space,
)
from local.face_api.store import ApiError, Person, Store

VERSIONS = ("v1.0", "v1.1-preview.1", "v1.2", "v1.2-preview.1")
ID_RE = re.compile(r"^[a-z0-9-_]{1,64}$")
MIN_IMAGE, MAX_IMAGE = 1024, 6 * 1024 * 1024
DEFAULT_TTL = 86400
MAX_FACE_IDS = 1_000_000

RESPONSE_401 = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
                "a valid key for an active subscription and use a correct regional API endpoint for your "
                "resource.")


def _bad(message: str) -> ApiError:
    return ApiError(400, "BadArgument", message)


@dataclass
class Request:
    method: str
    path: str  # below /face/<ver>
    version: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    host: str

    def json(self) -> dict[str, Any]:
        if not self.body:
            raise _bad("Request body is empty or invalid.")
        try:
            data = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad("Invalid request body.") from exc
        if not isinstance(data, dict):
            raise _bad("Invalid request body.")
        return data


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FaceIdEntry:
    descriptor: np.ndarray
    model: str
    expires: float


class FaceIdCache:
    """faceId -> (descriptor, recognition model, expiry). Bounded LRU; expired ids answer 'not found'."""

    def __init__(self, capacity: int = MAX_FACE_IDS) -> None:
        self._d: OrderedDict[str, FaceIdEntry] = OrderedDict()
        self._lock = threading.Lock()
        self.capacity = capacity

    def put(self, descriptor: np.ndarray, model: str, ttl: int) -> str:
        fid = str(uuid.uuid4())
        with self._lock:
            self._d[fid] = FaceIdEntry(descriptor, model, time.monotonic() + ttl)
            while len(self._d) > self.capacity:
                self._d.popitem(last=False)
        return fid

    def get(self, fid: str) -> FaceIdEntry | None:
        with self._lock:
            e = self._d.get(fid)
            if e is None:
                return None
            if e.expires < time.monotonic():
                del self._d[fid]
                return None
            return e

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


DEFAULT_CONFIG: dict[str, Any] = {
    "rateLimitPerSecond": None, "latencyMs": 0, "faultRate": 0.0, "faultStatuses": [500, 503],
    "slowRate": 0.0, "slowMs": 0, "failNext": [], "synthetic": False,
    "trainBaseMs": 50, "trainPerFaceUs": 5.0, "seed": None,
    "limitedAccessApproved": True, "unsupportedFeatureShape": "documented",
}

#: Limited Access refused, as Face answers it before Microsoft approves the subscription. "documented" is the
#: error-code table's shape (https://learn.microsoft.com/azure/ai-services/computer-vision/reference-face-error-codes:
#: 403 UnsupportedFeature); "observed" is what the service has been seen to send, the same code as the
#: innererror of an InvalidRequest (https://learn.microsoft.com/answers/questions/1326420).
UNSUPPORTED_FEATURE_MESSAGE = ("Feature is not supported, missing approval for one or more of the following features: "
                               "Identification,Verification. Please apply for access at https://aka.ms/facerecognition")
UNSUPPORTED_FEATURE_SHAPES = ("documented", "observed")
#: Env var: start with Limited Access not approved (any of these values), as a fresh subscription is.
LIMITED_ACCESS_ENV = "FACE_EMULATOR_LIMITED_ACCESS"
_UNAPPROVED_VALUES = ("unapproved", "notapproved", "denied", "false", "0", "off")


def limited_access_approved_from_env(value: str | None) -> bool:
    return (value or "").strip().lower() not in _UNAPPROVED_VALUES


def _is_limited_access(req: Request) -> bool:
    """The operations Limited Access gates: LargePersonGroup (and everything under it), identify, verify, and
    detect when it returns a faceId (detect without one needs no approval)."""
    if req.path.startswith("/largepersongroups") or req.path in ("/identify", "/verify"):
        return True
    return req.path == "/detect" and req.query.get("returnFaceId", "true").strip().lower() != "false"


def unsupported_feature(shape: str) -> Response:
    if shape == "observed":
        body = {"error": {"code": "InvalidRequest", "message": "Invalid request has been sent.",
                          "innererror": {"code": "UnsupportedFeature", "message": UNSUPPORTED_FEATURE_MESSAGE}}}
    else:
        body = {"error": {"code": "UnsupportedFeature", "message": UNSUPPORTED_FEATURE_MESSAGE}}
    return Response(403, body)


class Emulator:
    """The whole service minus the socket: ``handle(method, raw_path, headers, body)``."""

    def __init__(self, *, data_dir: Path | None = None, key: str | None = None,
                 extra_models: list[str] | None = None, synthetic: bool = False,
                 limited_access_approved: bool = True) -> None:
        self.store = Store(data_dir)
        self.key = key
        self.models = tuple(BUILTIN_MODELS) + tuple(m for m in (extra_models or []) if m not in BUILTIN_MODELS)
        self.synthetic_default = synthetic
        self.limited_access_default = limited_access_approved
        self.face_ids = FaceIdCache()
        self._cfg_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self.config: dict[str, Any] = {}
        self._rng = random.Random()
        self._tokens = 0.0
        self._token_time = time.monotonic()
        self._reset_config()
        self._reset_stats()
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = []
        self._add_routes()

    # --- knobs --------------------------------------------------------------------------------
    def _reset_config(self) -> None:
        with self._cfg_lock:
            self.config = dict(json.loads(json.dumps(DEFAULT_CONFIG)))
            self.config["synthetic"] = self.synthetic_default
            self.config["limitedAccessApproved"] = self.limited_access_default
            self._rng = random.Random()
            self._apply_training_knobs()

    def _apply_training_knobs(self) -> None:
        self.store.train_base_s = float(self.config["trainBaseMs"]) / 1000.0
        self.store.train_per_face_s = float(self.config["trainPerFaceUs"]) / 1e6

    def _reset_stats(self) -> None:
        with self._stats_lock:
            self.calls = 0
            self.throttled = 0
            self.faults = 0
            self.by_status: dict[str, int] = {}
            # Time with at least one Face call in flight (the union of the calls' intervals): a client's
            # wall time against it shows how much of the wall time is the client's own.
            self._in_flight = 0
            self._busy_since = 0.0
            self._busy_s = 0.0
            # Per route ("POST /train", ...), every request counted, throttled and faulted ones too: the
            # load bench reports Face calls by kind and trainings per burst from these.
            self.by_operation: dict[str, int] = {}
            self.train_accepted = 0  # train requests answered 202 (a request may join a running training)
            self.training_ops: set[str] = set()  # distinct training operations those requests started

    def configure(self, cfg: dict[str, Any]) -> dict[str, Any]:
        def num(name: str, lo: float, hi: float, *, allow_none: bool = False, integer: bool = False) -> None:
            if name not in cfg:
                return
            v = cfg[name]
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise _bad(f"'{name}' must be a number in [{lo}, {hi}].")
            if integer and int(v) != v:
                raise _bad(f"'{name}' must be an integer.")

        unknown = set(cfg) - set(DEFAULT_CONFIG)
        if unknown:
            raise _bad(f"Unknown config keys: {sorted(unknown)}.")
        num("rateLimitPerSecond", 1e-6, 1e9, allow_none=True)
        num("latencyMs", 0, 600_000, integer=True)
        num("faultRate", 0, 1)
        num("slowRate", 0, 1)
        num("slowMs", 0, 600_000, integer=True)
        num("trainBaseMs", 0, 3_600_000)
        num("trainPerFaceUs", 0, 1e6)
        if "faultStatuses" in cfg:
            fs = cfg["faultStatuses"]
            if not isinstance(fs, list) or not fs or not all(isinstance(s, int) and 400 <= s <= 599 for s in fs):
                raise _bad("'faultStatuses' must be a non-empty list of HTTP error statuses.")
        if "failNext" in cfg:
            fn = cfg["failNext"]
            if not isinstance(fn, list):
                raise _bad("'failNext' must be a list.")
            for item in fn:
                if (not isinstance(item, dict) or not isinstance(item.get("status"), int)
                        or not 400 <= item["status"] <= 599
                        or not (item.get("retryAfter") is None or isinstance(item.get("retryAfter"), int))):
                    raise _bad("'failNext' items are {\"status\": 429|500|503, \"retryAfter\": int|null}.")
        if "synthetic" in cfg and not isinstance(cfg["synthetic"], bool):
            raise _bad("'synthetic' must be a boolean.")
        if "limitedAccessApproved" in cfg and not isinstance(cfg["limitedAccessApproved"], bool):
            raise _bad("'limitedAccessApproved' must be a boolean.")
        if "unsupportedFeatureShape" in cfg and cfg["unsupportedFeatureShape"] not in UNSUPPORTED_FEATURE_SHAPES:
            raise _bad("'unsupportedFeatureShape' must be one of " + ", ".join(UNSUPPORTED_FEATURE_SHAPES) + ".")
        with self._cfg_lock:
            for k, v in cfg.items():
                if k == "failNext":
                    self.config[k] = [{"status": i["status"], "retryAfter": i.get("retryAfter")} for i in v]
                else:
                    self.config[k] = v
            if "seed" in cfg:
                self._rng = random.Random(cfg["seed"])
            if "rateLimitPerSecond" in cfg and cfg["rateLimitPerSecond"] is not None:
                self._tokens = max(1.0, float(cfg["rateLimitPerSecond"]))
                self._token_time = time.monotonic()
            self._apply_training_knobs()
            snapshot: dict[str, Any] = json.loads(json.dumps(self.config))
            return snapshot

    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            busy = self._busy_s + (time.monotonic() - self._busy_since if self._in_flight else 0.0)
            return {"calls": self.calls, "throttled": self.throttled, "faults": self.faults, "busySeconds": busy,
                    "byStatus": dict(self.by_status), "byOperation": dict(self.by_operation),
                    "trainRequests": self.train_accepted, "trainings": len(self.training_ops),
                    "personIds": list(self.store.person_ids_issued)}

    def reset(self) -> None:
        self.store.reset()
        self.face_ids.clear()
        self._reset_config()
        self._reset_stats()

    # --- pipeline -----------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Response:
        parsed = urllib.parse.urlsplit(raw_path)
        path = parsed.path
        query = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        if path.startswith("/_emulator/"):
            return self._knob(method, path, body)
        m = re.match(r"^/face/([^/]+)(/.*)?$", path)
        if not m or m.group(1) not in VERSIONS:
            return Response(404, {"error": {"code": "404", "message": "Resource not found"}})
        req = Request(method, (m.group(2) or "/").rstrip("/") or "/", m.group(1), query, headers, body,
                      headers.get("host", "127.0.0.1"))
        operation = self._operation(req)
        with self._stats_lock:
            self.calls += 1
            self.by_operation[operation] = self.by_operation.get(operation, 0) + 1
            if self._in_flight == 0:
                self._busy_since = time.monotonic()
            self._in_flight += 1
        try:
            resp = self._face(req)
        finally:
            with self._stats_lock:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._busy_s += time.monotonic() - self._busy_since
        with self._stats_lock:
            self.by_status[str(resp.status)] = self.by_status.get(str(resp.status), 0) + 1
        return resp

    def _operation(self, req: Request) -> str:
        """The route template a request matches ("POST /largepersongroups/{}/train"), or "other"."""
        for method, pattern, _fn in self.routes:
            if method == req.method and pattern.match(req.path):
                return f"{method} {self._templates[pattern.pattern]}"
        return "other"

    def _knob(self, method: str, path: str, body: bytes) -> Response:
        try:
            if path == "/_emulator/health" and method == "GET":
                return Response(200, {"status": "ok"})
            if path == "/_emulator/stats" and method == "GET":
                return Response(200, self.stats())
            if path == "/_emulator/reset" and method == "POST":
                self.reset()
                return Response(200, {"status": "reset"})
            if path == "/_emulator/config" and method in ("POST", "GET"):
                if method == "GET":
                    return Response(200, self.configure({}))
                try:
                    cfg = json.loads(body or b"{}")
                except ValueError as exc:
                    raise _bad("Invalid JSON.") from exc
                if not isinstance(cfg, dict):
                    raise _bad("Config must be a JSON object.")
                return Response(200, self.configure(cfg))
            return Response(404, {"error": {"code": "NotFound", "message": "Unknown emulator knob."}})
        except ApiError as e:
            return Response(e.status, {"error": {"code": e.code, "message": e.message}})

    def _auth_ok(self, headers: dict[str, str]) -> bool:
        key = headers.get("ocp-apim-subscription-key")
        auth = headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if self.key is None:
            return bool(key) or bool(bearer)
        return key == self.key or bearer == self.key

    def _take_token(self) -> int | None:
        """Token bucket over all Face calls; returns seconds to wait when empty, else None."""
        rate = self.config.get("rateLimitPerSecond")
        if rate is None:
            return None
        now = time.monotonic()
        cap = max(1.0, float(rate))
        self._tokens = min(cap, self._tokens + (now - self._token_time) * float(rate))
        self._token_time = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - self._tokens) / float(rate)))

    def _face(self, req: Request) -> Response:
        if not self._auth_ok(req.headers):
            return Response(401, {"error": {"code": "401", "message": RESPONSE_401}})
        with self._cfg_lock:
            approved, shape = self.config["limitedAccessApproved"], self.config["unsupportedFeatureShape"]
        if not approved and _is_limited_access(req):
            return unsupported_feature(str(shape))
        with self._cfg_lock:
            forced = self.config["failNext"].pop(0) if self.config["failNext"] else None
            wait = None if forced else self._take_token()
            fault_status: int | None = None
            if forced is None and wait is None and self.config["faultRate"] > 0 \
                    and self._rng.random() < self.config["faultRate"]:
                fault_status = self._rng.choice(self.config["faultStatuses"])
            delay_ms = float(self.config["latencyMs"])
            if self.config["slowRate"] > 0 and self._rng.random() < self.config["slowRate"]:
                delay_ms += float(self.config["slowMs"])
        if forced is not None:
            return self._injected(forced["status"], forced.get("retryAfter"))
        if wait is not None:
            with self._stats_lock:
                self.throttled += 1
            return Response(429, {"error": {"code": "429",
                                            "message": f"Rate limit is exceeded. Try again in {wait} seconds."}},
                            {"Retry-After": str(wait)})
        if fault_status is not None:
            return self._injected(fault_status, None)
        if delay_ms > 0:
            time.sleep(delay_ms / 1000.0)
        for method, pattern, fn in self.routes:
            if method != req.method:
                continue
            mm = pattern.match(req.path)
            if mm:
                try:
                    return fn(req, *mm.groups())
                except ApiError as e:
                    return Response(e.status, {"error": {"code": e.code, "message": e.message}}, e.headers)
        if any(p.match(req.path) for _, p, _ in self.routes):
            return Response(405, {"error": {"code": "BadArgument", "message": "Method not allowed."}})
        return Response(404, {"error": {"code": "404", "message": "Resource not found"}})

    def _injected(self, status: int, retry_after: int | None) -> Response:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self._stats_lock:
            if status == 429:
                self.throttled += 1
            else:
                self.faults += 1
        if status == 429:
            wait = retry_after if retry_after is not None else 1
            body = {"error": {"code": "429", "message": f"Rate limit is exceeded. Try again in {wait} seconds."}}
        elif status == 503:
            body = {"error": {"code": "ServiceUnavailable", "message": "Service is temporarily unavailable."}}
        elif status >= 500:
            body = {"error": {"code": "InternalServerError", "message": "An internal server error occurred."}}
        else:
            body = {"error": {"code": str(status), "message": "Injected failure."}}
        return Response(status, body, headers)

    # --- routes -------------------------------------------------------------------------------
    def _add_routes(self) -> None:
        seg = r"([^/]+)"
        lpg = rf"/largepersongroups/{seg}"
        person = rf"{lpg}/persons/{seg}"
        face = rf"{person}/persistedfaces/{seg}"
        table: list[tuple[str, str, Callable[..., Response]]] = [
            ("POST", r"/detect", self.detect),
            ("POST", r"/identify", self.identify),
            ("POST", r"/verify", self.verify),
            ("GET", rf"/operations/{seg}", self.get_operation),
            ("GET", r"/largepersongroups", self.list_groups),
            ("PUT", lpg, self.create_group),
            ("GET", lpg, self.get_group),
            ("PATCH", lpg, self.update_group),
            ("DELETE", lpg, self.delete_group),
            ("POST", rf"{lpg}/train", self.train),
            ("GET", rf"{lpg}/training", self.training_status),
            ("POST", rf"{lpg}/persons", self.create_person),
            ("GET", rf"{lpg}/persons", self.list_persons),
            ("GET", person, self.get_person),
            ("PATCH", person, self.update_person),
            ("DELETE", person, self.delete_person),
            ("POST", rf"{person}/persistedfaces", self.add_face),
            ("GET", face, self.get_face),
            ("PATCH", face, self.update_face),
            ("DELETE", face, self.delete_face),
        ]
        self.routes = [(m, re.compile("^" + p + "$"), fn) for m, p, fn in table]
        self._templates = {"^" + p + "$": p.replace(seg, "{}") for _, p, _ in table}

    # validation helpers
    @staticmethod
    def _check_id(value: str, what: str) -> str:
        if not ID_RE.match(value):
            raise _bad(f"Invalid {what}.")
        return value

    def _check_model(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.models:
            raise _bad("Invalid recognition model. Supported: " + ", ".join(self.models) + ".")
        return value

    @staticmethod
    def _detection_model(value: str | None) -> str:
        value = value or "detection_01"
        if value not in DETECTION_MODELS:
            raise _bad("Invalid detection model.")
        return value

    @staticmethod
    def _text(body: dict[str, Any], name: str, max_len: int, *, required: bool = False) -> str | None:
        v = body.get(name)
        if v is None:
            if required:
                raise _bad(f"'{name}' is required.")
            return None
        if not isinstance(v, str) or (required and not v) or len(v) > max_len:
            raise _bad(f"'{name}' is empty, not a string or too long.")
        return v

    @staticmethod
    def _bool(q: dict[str, str], name: str, default: bool) -> bool:
        v = q.get(name)
        if v is None or v == "":
            return default
        if v.lower() in ("true", "false"):
            return v.lower() == "true"
        raise _bad(f"Invalid '{name}'.")

    @staticmethod
    def _top(q: dict[str, str]) -> tuple[str | None, int]:
        top = q.get("top") or "1000"
        try:
            n = int(top)
        except ValueError as exc:
            raise _bad("Invalid 'top'.") from exc
        if not 1 <= n <= 1000:
            raise _bad("'top' must be in [1, 1000].")
        return (q.get("start") or None), n

    # --- images -------------------------------------------------------------------------------
    def _image_bytes(self, req: Request) -> bytes:
        ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
        data = req.body
        if ctype == "application/json":
            url = req.json().get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ApiError(400, "InvalidURL", "Invalid image URL.")
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    data = r.read(MAX_IMAGE + 1)
            except OSError as exc:
                raise ApiError(400, "InvalidURL", "Failed to download image from the specified URL.") from exc
        if len(data) < MIN_IMAGE:
            raise ApiError(400, "InvalidImageSize", "Image size is too small.")
        if len(data) > MAX_IMAGE:
            raise ApiError(400, "InvalidImageSize", "Image size is too big.")
        return data

    def _synthetic(self) -> bool:
        return bool(self.config.get("synthetic"))

    def _detect_faces(self, data: bytes, *, descriptors: bool, landmarks68: bool
                      ) -> tuple[list[Detection], np.ndarray | None]:
        if self._synthetic():
            return [synthetic_detection(data)], None
        try:
            img = decode_image(data)
        except InvalidImageError as exc:
            raise ApiError(400, "InvalidImage", "Decoding error, image format unsupported.") from exc
        return MODEL.detect(img, descriptors=descriptors, landmarks68=landmarks68), img

    # --- detect -------------------------------------------------------------------------------
    def detect(self, req: Request) -> Response:
        q = req.query
        return_id = self._bool(q, "returnFaceId", True)
        return_landmarks = self._bool(q, "returnFaceLandmarks", False)
        return_model = self._bool(q, "returnRecognitionModel", False)
        rec_model = self._check_model(q.get("recognitionModel") or "recognition_01")
        det_model = self._detection_model(q.get("detectionModel"))
        try:
            ttl = int(q.get("faceIdTimeToLive") or DEFAULT_TTL)
        except ValueError as exc:
            raise _bad("Invalid 'faceIdTimeToLive'.") from exc
        if not 60 <= ttl <= 86400:
            raise _bad("'faceIdTimeToLive' must be in [60, 86400].")
        attrs = [a.strip() for a in (q.get("returnFaceAttributes") or "").split(",") if a.strip()]
        for a in attrs:
            if a not in quality.ALL_ATTRIBUTES:
                raise _bad(f"Invalid returnFaceAttributes: '{a}'.")
            if a not in quality.SUPPORTED[det_model]:
                raise _bad(f"Attribute '{a}' is not supported by detection model '{det_model}'.")
        if "qualityForRecognition" in attrs and rec_model in ("recognition_01", "recognition_02"):
            raise _bad("'qualityForRecognition' requires recognition_03 or recognition_04.")
        if return_landmarks and det_model == "detection_02":
            raise _bad("Face landmarks are not supported by detection model 'detection_02'.")
        data = self._image_bytes(req)
        need_68 = bool(attrs) or return_landmarks
        dets, img = self._detect_faces(data, descriptors=return_id or bool(attrs), landmarks68=need_68)
        out = []
        for d in dets:
            item: dict[str, Any] = {}
            if return_id:
                assert d.raw_descriptor is not None
                item["faceId"] = self.face_ids.put(to_model_space(d.raw_descriptor, rec_model), rec_model, ttl)
            if return_model:
                item["recognitionModel"] = rec_model
            item["faceRectangle"] = {"top": d.top, "left": d.left, "width": d.width, "height": d.height}
            if return_landmarks:
                item["faceLandmarks"] = _landmarks(d)
            if attrs:
                if img is None:  # synthetic: a clean frontal face
                    m: dict[str, Any] = {"faceSide": d.width, "insideFraction": 1.0, "blur": 0.0, "noise": 0.0, "exposure": 0.5,
                         "pitch": 0.0, "roll": 0.0, "yaw": 0.0}
                    m["quality"] = quality.quality_for_recognition(m)
                else:
                    m = quality.full_measure(d, img.shape, d.chip, d.landmarks68)
                item["faceAttributes"] = quality.attributes(m, attrs)
            out.append(item)
        return Response(200, out)

    # --- groups -------------------------------------------------------------------------------
    def create_group(self, req: Request, gid: str) -> Response:
        self._check_id(gid, "largePersonGroupId")
        body = req.json()
        name = self._text(body, "name", 128, required=True)
        assert name is not None
        user_data = self._text(body, "userData", 16384)
        model = self._check_model(body.get("recognitionModel") or "recognition_01")
        self.store.create_group(gid, name, user_data, model)
        return Response(200)

    def get_group(self, req: Request, gid: str) -> Response:
        g = self.store.group(gid)
        return Response(200, g.to_json(self._bool(req.query, "returnRecognitionModel", False)))

    def list_groups(self, req: Request) -> Response:
        start, top = self._top(req.query)
        with_model = self._bool(req.query, "returnRecognitionModel", False)
        return Response(200, [g.to_json(with_model) for g in self.store.list_groups(start, top)])

    def _changes(self, req: Request, user_data_max: int) -> dict[str, Any]:
        body = req.json()
        changes: dict[str, Any] = {}
        if "name" in body:
            changes["name"] = self._text(body, "name", 128, required=True)
        if "userData" in body:
            changes["userData"] = self._text(body, "userData", user_data_max)
        return changes

    def update_group(self, req: Request, gid: str) -> Response:
        self.store.update_group(gid, self._changes(req, 16384))
        return Response(200)

    def delete_group(self, req: Request, gid: str) -> Response:
        self.store.delete_group(gid)
        return Response(200)

    def train(self, req: Request, gid: str) -> Response:
        op_id = self.store.start_training(gid)
        with self._stats_lock:
            self.train_accepted += 1
            self.training_ops.add(op_id)
        loc = f"http://{req.host}/face/{req.version}/operations/{op_id}"
        return Response(202, None, {"Operation-Location": loc, "Retry-After": "1"})

    def training_status(self, req: Request, gid: str) -> Response:
        g = self.store.group(gid)
        if g.training.status == "notStarted":
            raise ApiError(404, "LargePersonGroupNotTrained", "Large person group not trained.")
        return Response(200, g.training.to_json())

    def get_operation(self, req: Request, op_id: str) -> Response:
        op = self.store.operations.get(op_id)
        if op is None:
            raise ApiError(404, "NotFound", "Operation not found.")
        body = {"operationId": op["operationId"], "status": op["status"], "createdTime": op["createdTime"],
                "lastActionTime": op["lastActionTime"], "finishedTime": op["finishedTime"],
                "message": op["message"]}
        headers = {"Retry-After": "1"} if op["status"] in ("notStarted", "running") else {}
        return Response(200, body, headers)

    # --- persons ------------------------------------------------------------------------------
    def create_person(self, req: Request, gid: str) -> Response:
        body = req.json()
        name = self._text(body, "name", 128, required=True)
        assert name is not None
        pid = self.store.create_person(gid, name, self._text(body, "userData", 16384))
        return Response(200, {"personId": pid})

    def get_person(self, req: Request, gid: str, pid: str) -> Response:
        return Response(200, self.store.person(self.store.group(gid), pid).to_json())

    def list_persons(self, req: Request, gid: str) -> Response:
        start, top = self._top(req.query)
        persons: list[Person] = self.store.list_persons(gid, start, top)
        return Response(200, [p.to_json() for p in persons])

    def update_person(self, req: Request, gid: str, pid: str) -> Response:
        self.store.update_person(gid, pid, self._changes(req, 16384))
        return Response(200)

    def delete_person(self, req: Request, gid: str, pid: str) -> Response:
        self.store.delete_person(gid, pid)
        return Response(200)

    # --- faces --------------------------------------------------------------------------------
    def add_face(self, req: Request, gid: str, pid: str) -> Response:
        q = req.query
        g = self.store.group(gid)
        self.store.person(g, pid)
        user_data = q.get("userData")
        if user_data is not None and len(user_data) > 1024:
            raise _bad("'userData' is too long.")
        self._detection_model(q.get("detectionModel"))
        target = None
        if q.get("targetFace"):
            try:
                target = [int(x) for x in q["targetFace"].split(",")]
            except ValueError as exc:
                raise _bad("Invalid argument targetFace.") from exc
            if len(target) != 4 or target[2] <= 0 or target[3] <= 0:
                raise _bad("Invalid argument targetFace.")
        data = self._image_bytes(req)
        dets, _ = self._detect_faces(data, descriptors=True, landmarks68=False)
        if target is not None:
            best = max(dets, key=lambda d: _iou(d, target), default=None)
            if best is None or _iou(best, target) < 0.3:
                raise ApiError(400, "InvalidImage", "No face detected in the target rectangle.")
            chosen = best
        else:
            if not dets:
                raise ApiError(400, "InvalidImage", "No face detected in the image.")
            if len(dets) > 1:
                raise ApiError(400, "InvalidImage", "There is more than 1 face in the image.")
            chosen = dets[0]
        assert chosen.raw_descriptor is not None
        fid = self.store.add_face(gid, pid, to_model_space(chosen.raw_descriptor, g.model), user_data)
        return Response(200, {"persistedFaceId": fid})

    def get_face(self, req: Request, gid: str, pid: str, fid: str) -> Response:
        f = self.store.face(gid, pid, fid)
        return Response(200, {"persistedFaceId": f.face_id, "userData": f.user_data})

    def update_face(self, req: Request, gid: str, pid: str, fid: str) -> Response:
        body = req.json()
        self.store.update_face(gid, pid, fid, self._text(body, "userData", 1024))
        return Response(200)

    def delete_face(self, req: Request, gid: str, pid: str, fid: str) -> Response:
        self.store.delete_face(gid, pid, fid)
        return Response(200)

    # --- identify / verify --------------------------------------------------------------------
    def _face_entry(self, fid: Any, model: str | None = None) -> FaceIdEntry:
        if not isinstance(fid, str):
            raise _bad("Face ID is invalid.")
        e = self.face_ids.get(fid)
        if e is None:
            raise _bad(f"Face ID {fid} is invalid or has expired.")
        if model is not None and e.model != model:
            raise _bad(f"'recognitionModel' is incompatible: the face was detected with '{e.model}', "
                       f"the group uses '{model}'.")
        return e

    def identify(self, req: Request) -> Response:
        body = req.json()
        face_ids = body.get("faceIds")
        if not isinstance(face_ids, list) or not 1 <= len(face_ids) <= 10:
            raise _bad("'faceIds' must contain 1 to 10 face ids.")
        gid = body.get("largePersonGroupId")
        if not isinstance(gid, str):
            raise _bad("'largePersonGroupId' is required (the emulator supports large person groups only).")
        self._check_id(gid, "largePersonGroupId")
        k = body.get("maxNumOfCandidatesReturned", 10)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100:
            raise _bad("'maxNumOfCandidatesReturned' must be in [1, 100].")
        thr = body.get("confidenceThreshold")
        thr = 0.5 if thr is None else thr
        if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0 <= thr <= 1:
            raise _bad("'confidenceThreshold' must be in [0, 1].")
        g = self.store.group(gid, status=400)
        entries = [self._face_entry(f, g.model) for f in face_ids]
        queries = np.stack([e.descriptor for e in entries])
        results = self.store.identify(gid, queries, k, float(thr))
        return Response(200, [{"faceId": f, "candidates": [{"personId": p, "confidence": c} for p, c in r]}
                              for f, r in zip(face_ids, results, strict=False)])

    def verify(self, req: Request) -> Response:
        body = req.json()
        if "faceId1" in body:  # face-to-face
            e1 = self._face_entry(body.get("faceId1"))
            e2 = self._face_entry(body.get("faceId2"), e1.model)
            d = float(np.linalg.norm(e1.descriptor - e2.descriptor))
        else:
            gid = body.get("largePersonGroupId")
            if not isinstance(gid, str):
                raise _bad("'largePersonGroupId' is required (the emulator supports large person groups only).")
            pid = body.get("personId")
            if not isinstance(pid, str):
                raise _bad("'personId' is required.")
            g = self.store.group(gid)
            e = self._face_entry(body.get("faceId"), g.model)
            descs = self.store.person_descriptors(gid, pid)
            d = float(np.min(np.linalg.norm(descs - e.descriptor[None, :], axis=1)))
        conf = round(float(confidence_from_distance(d)), 5)
        return Response(200, {"isIdentical": conf >= 0.5, "confidence": conf})


def _iou(d: Detection, t: list[int]) -> float:
    ax1, ay1, ax2, ay2 = d.left, d.top, d.left + d.width, d.top + d.height
    bx1, by1, bx2, by2 = t[0], t[1], t[0] + t[2], t[1] + t[3]
    iw = max(0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = d.width * d.height + t[2] * t[3] - inter
    return inter / union if union > 0 else 0.0


_LANDMARKS: dict[str, tuple[int, ...]] = {
    "pupilLeft": (36, 37, 38, 39, 40, 41), "pupilRight": (42, 43, 44, 45, 46, 47), "noseTip": (30,),
    "mouthLeft": (48,), "mouthRight": (54,), "eyebrowLeftOuter": (17,), "eyebrowLeftInner": (21,),
    "eyeLeftOuter": (36,), "eyeLeftTop": (37, 38), "eyeLeftBottom": (40, 41), "eyeLeftInner": (39,),
    "eyebrowRightInner": (22,), "eyebrowRightOuter": (26,), "eyeRightInner": (42,), "eyeRightTop": (43, 44),
    "eyeRightBottom": (46, 47), "eyeRightOuter": (45,), "noseRootLeft": (27, 39), "noseRootRight": (27, 42),
    "noseLeftAlarTop": (31, 29), "noseRightAlarTop": (35, 29), "noseLeftAlarOutTip": (31,),
    "noseRightAlarOutTip": (35,), "upperLipTop": (51,), "upperLipBottom": (62,), "underLipTop": (66,),
    "underLipBottom": (57,),
}


def _landmarks(d: Detection) -> dict[str, dict[str, float]]:
    lm = d.landmarks68
    if lm is None:  # synthetic: a plausible layout inside the rectangle
        cx, cy, s = d.left + d.width / 2, d.top + d.height / 2, d.width
        return {"pupilLeft": {"x": cx - 0.2 * s, "y": cy - 0.1 * s}, "pupilRight": {"x": cx + 0.2 * s, "y": cy - 0.1 * s},
                "noseTip": {"x": cx, "y": cy + 0.05 * s}, "mouthLeft": {"x": cx - 0.15 * s, "y": cy + 0.25 * s},
                "mouthRight": {"x": cx + 0.15 * s, "y": cy + 0.25 * s}}
    return {k: {"x": round(float(lm[list(ix), 0].mean()), 1), "y": round(float(lm[list(ix), 1].mean()), 1)}
            for k, ix in _LANDMARKS.items()}


# --- HTTP ---------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FaceEmulator/1.0"
    emulator: Emulator
    verbose = False

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _serve(self) -> None:
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            resp = self.emulator.handle(self.command, self.path, headers, body)
        except Exception as exc:
            resp = Response(500, {"error": {"code": "InternalServerError", "message": f"Emulator error: {exc}"}})
        payload = b"" if resp.body is None else json.dumps(resp.body).encode()
        self.send_response(resp.status)
        self.send_header("apim-request-id", str(uuid.uuid4()))
        if resp.body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        # one write for headers and body (with TCP_NODELAY): no Nagle/delayed-ACK stalls
        self._headers_buffer.append(b"\r\n" + payload)  # type: ignore[attr-defined]
        self.flush_headers()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        if self.verbose:
            super().log_message(format, *args)


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(emulator: Emulator, host: str = "127.0.0.1", port: int = 7072,
                verbose: bool = False) -> EmulatorServer:
    handler = type("Handler", (_Handler,), {"emulator": emulator, "verbose": verbose})
    return EmulatorServer((host, port), handler)
