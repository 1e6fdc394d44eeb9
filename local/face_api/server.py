"""The Face API emulator's service: the :class:`Emulator` pipeline every Face call goes through and its HTTP
server. Standard library only (ThreadingHTTPServer).

Per Face call the pipeline counts it, checks the key (401) and Limited Access (403), applies the injected
faults, the token bucket and the added latency, then dispatches over the route table. The operations are
in ``routes/``, one module per resource: ``groups``, ``persons``, ``faces`` (persisted faces), ``detect``
(detect, identify, verify), ``training`` (train, training status, operations) and ``knobs``
(``/_emulator/*``). :class:`Emulator` inherits them all; its route table is the concatenation of theirs.
"""

from __future__ import annotations

import json
import math
import random
import re
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from local.face_api.face_ids import FaceIdCache
from local.face_api.model import BUILTIN_MODELS
from local.face_api.routes.base import SEG, Request, Response
from local.face_api.routes.detect import DetectRoutes
from local.face_api.routes.faces import FaceRoutes
from local.face_api.routes.groups import GroupRoutes
from local.face_api.routes.knobs import KnobRoutes
from local.face_api.routes.persons import PersonRoutes
from local.face_api.routes.training import TrainingRoutes
from local.face_api.store import ApiError, Store

__all__ = ["LIMITED_ACCESS_ENV", "Emulator", "EmulatorServer", "Request", "Response", "limited_access_approved_from_env",
           "make_server"]

VERSIONS = ("v1.0", "v1.1-preview.1", "v1.2", "v1.2-preview.1")

RESPONSE_401 = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
                "a valid key for an active subscription and use a correct regional API endpoint for your "
                "resource.")

#: Limited Access refused, as Face answers it before Microsoft approves the subscription. "documented" is the
#: error-code table's shape (https://learn.microsoft.com/azure/ai-services/computer-vision/reference-face-error-codes:
#: 403 UnsupportedFeature); "observed" is what the service has been seen to send, the same code as the
#: innererror of an InvalidRequest (https://learn.microsoft.com/answers/questions/1326420). The config knob
#: that picks one is validated in routes/knobs.py (UNSUPPORTED_FEATURE_SHAPES).
UNSUPPORTED_FEATURE_MESSAGE = ("Feature is not supported, missing approval for one or more of the following features: "
                               "Identification,Verification. Please apply for access at https://aka.ms/facerecognition")
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


#: A route with its path pattern compiled (anchored at both ends).
CompiledRoute = tuple[str, re.Pattern[str], Callable[..., Response]]


class Emulator(KnobRoutes, GroupRoutes, PersonRoutes, FaceRoutes, DetectRoutes, TrainingRoutes):
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
        self.routes: list[CompiledRoute] = []
        self._add_routes()

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
        # Different patterns never match the same path, so the modules' order does not matter. The templates ("{}" for
        # each id) name the operations in /_emulator/stats.
        table = [*self.detect_routes(), *self.training_routes(), *self.group_routes(), *self.person_routes(),
                 *self.face_routes()]
        self.routes = [(m, re.compile("^" + p + "$"), fn) for m, p, fn in table]
        self._templates = {"^" + p + "$": p.replace(SEG, "{}") for _, p, _ in table}


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
