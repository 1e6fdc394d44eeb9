"""A small Functions host for the local stack: ``python -m local.host``.

It imports the app, discovers every function from the real decorators and drives each trigger:
HTTP on ``/api/<route>``, the Core Tools-compatible Event Grid webhooks, a blob watcher that
synthesises ``BlobCreated`` events from Azurite, Service Bus triggers on the stand-in, timers on
their NCRONTAB schedule, and ``POST /admin/functions/<name>`` to fire any non-HTTP function now.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import azure.functions as func

from local.bus import Entity, StandInReceiver, load_topology
from local.host.core import FunctionInfo, HostError, InvocationResult, Invoker, discover, load_app, resolve_setting_refs
from local.host.triggers import (
    BlobWatcher,
    EventDispatcher,
    ServiceBusPump,
    TimerRunner,
    container_of,
    parse_events,
    validation_response,
)
from shared.adapters.storage_queue_bus import StorageQueueBus

log = logging.getLogger("local.host")

ROOT = Path(__file__).resolve().parents[2]


def _route_regex(template: str) -> re.Pattern[str]:
    """Functions route templates: ``{name}``, ``{name:int}``/``{name:alpha}``/``{name:guid}``, ``{name?}``, ``{*rest}``."""
    out = ""
    for part in re.split(r"(\{[^}]+\})", template.strip("/")):
        if not (part.startswith("{") and part.endswith("}")):
            out += re.escape(part)
            continue
        inner = part[1:-1]
        catch_all = inner.startswith("*")
        inner = inner.lstrip("*")
        optional = inner.endswith("?")
        inner = inner.rstrip("?")
        name, _, constraint = inner.partition(":")
        pattern = {"int": r"-?\d+", "alpha": r"[A-Za-z]+", "guid": r"[0-9a-fA-F-]{36}"}.get(constraint, r"[^/]+")
        if catch_all:
            # As in Functions, a catch-all may be empty, slash included: "web/{*path}" matches "web" too.
            if out.endswith("/"):
                out = out[:-1] + f"(?:/(?P<{name}>.*))?"
                continue
            pattern = r".*"
        out += f"(?P<{name}>{pattern}){'?' if optional else ''}"
    return re.compile(f"^{out}/?$", re.IGNORECASE)


class LocalHost:
    def __init__(self, *, app_spec: str = "function_app", storage_connection: str, http_port: int = 7071,
                 host: str = "127.0.0.1", lock_seconds: float | None = None, blob_scan_interval: float = 0.3,
                 enable_timers: bool = True, enable_watcher: bool = True, concurrency: int | None = None,
                 only: list[str] | None = None) -> None:
        import os

        # The SDKs are imported here, once, before any thread runs: azure.core imported lazily
        # from several threads at once can observe a partially initialised module.
        import azure.core.exceptions
        import azure.data.tables
        import azure.storage.blob
        import azure.storage.queue  # noqa: F401

        from shared.settings import SETTINGS

        self.env = os.environ
        self.defaults = {s.name: s.default for s in SETTINGS}
        self.storage_connection = storage_connection
        self.app = load_app(app_spec)
        self.functions: dict[str, FunctionInfo] = discover(self.app)
        if only:
            unknown = sorted(set(only) - set(self.functions))
            if unknown:
                raise HostError(f"--functions names unknown functions: {', '.join(unknown)}")
            self.functions = {n: i for n, i in self.functions.items() if n in only}
        for info in self.functions.values():
            for b in info.bindings:
                for k, v in list(b.items()):
                    b[k] = resolve_setting_refs(v, self.env, self.defaults)
        self.invoker = Invoker(self.functions)
        self.bus = StorageQueueBus(connection_string=storage_connection)
        self.receiver = StandInReceiver(self.bus)
        self._blob_service: Any = None
        self.results: deque[dict[str, Any]] = deque(maxlen=5000)
        self._results_lock = threading.Lock()
        self.stop_event = threading.Event()
        self.dispatcher = EventDispatcher(self.invoker, self.blob_service, on_result=self.record)
        self.http_port = http_port
        self.bind_host = host
        self.lock_seconds = lock_seconds
        self.blob_scan_interval = blob_scan_interval
        self.enable_timers = enable_timers
        self.enable_watcher = enable_watcher
        self.concurrency = concurrency or self._host_json_concurrency()
        self.pumps: list[ServiceBusPump] = []
        self.timers: dict[str, TimerRunner] = {}
        self.watcher: BlobWatcher | None = None
        self._threads: list[threading.Thread] = []
        self.server: ThreadingHTTPServer | None = None
        # App Service Authentication's local stand-in (/.auth/*, the principal header from a session).
        from local.host.easyauth import EasyAuthStandIn, enabled_for

        self.easyauth = EasyAuthStandIn() if enabled_for(self.env) else None
        self.http_routes = [
            (info, _route_regex(str(info.trigger.get("route") or info.name)))
            for info in self.functions.values() if info.trigger_type == "httpTrigger"
        ]

    @staticmethod
    def _host_json_concurrency() -> int:
        try:
            doc = json.loads((ROOT / "host.json").read_text())
            return int(doc.get("extensions", {}).get("serviceBus", {}).get("maxConcurrentCalls", 4))
        except (OSError, ValueError):
            return 4

    def blob_service(self) -> Any:
        if self._blob_service is None:
            from azure.storage.blob import BlobServiceClient

            self._blob_service = BlobServiceClient.from_connection_string(self.storage_connection)
        return self._blob_service

    def record(self, result: InvocationResult) -> None:
        doc = asdict(result)
        doc.pop("value", None)
        doc.pop("outputs", None)
        doc["finishedAt"] = time.time()
        with self._results_lock:
            self.results.append(doc)

    # --- wiring ---
    def _entity_for(self, info: FunctionInfo, topology: dict[str, Any]) -> Entity:
        t = info.trigger
        if t.get("queueName"):
            props: dict[str, Any] = next((q for q in topology.get("queues", []) if q["name"] == t["queueName"]), {})
            entity = Entity(queue=t["queueName"])
        else:
            top: dict[str, Any] = next((x for x in topology.get("topics", []) if x["name"] == t["topicName"]), {})
            props = next((s for s in top.get("subscriptions", []) if s["name"] == t["subscriptionName"]), {})
            entity = Entity(topic=t["topicName"], subscription=t["subscriptionName"])
            self.bus.register_subscription(t["topicName"], t["subscriptionName"])
        entity.max_delivery_count = int(props.get("maxDeliveryCount", 10))
        entity.lock_seconds = float(self.lock_seconds or props.get("lockSeconds", 30))
        return entity

    def start(self) -> None:
        topology = load_topology()
        watches: dict[str, list[str]] = {}
        for info in self.functions.values():
            kind = info.trigger_type
            if kind == "serviceBusTrigger":
                pump = ServiceBusPump(info, self._entity_for(info, topology), self.receiver, self.invoker,
                                      on_result=self.record, concurrency=self.concurrency)
                self.pumps.append(pump)
                self._spawn(pump.run, f"pump-{info.name}")
            elif kind == "timerTrigger":
                runner = TimerRunner(info, str(info.trigger["schedule"]), self.invoker, self.record)
                self.timers[info.name] = runner
                if self.enable_timers:
                    self._spawn(runner.run, f"timer-{info.name}")
            elif kind == "blobTrigger":
                watches.setdefault(container_of(str(info.trigger["path"])), []).append(info.name)
        self._spawn(self.dispatcher.run, "eventgrid-dispatcher")
        if watches and self.enable_watcher:
            self.watcher = BlobWatcher(self.blob_service, watches, self.dispatcher, interval=self.blob_scan_interval)
            self._spawn(self.watcher.run, "blob-watcher")
        self.server = ThreadingHTTPServer((self.bind_host, self.http_port), _handler(self))
        self.server.daemon_threads = True
        self.http_port = self.server.server_address[1]
        self._spawn(self.server.serve_forever, "http")
        log.info("local host ready on http://%s:%d with %d functions: %s", self.bind_host, self.http_port,
                 len(self.functions), ", ".join(f"{n} ({i.trigger_type})" for n, i in sorted(self.functions.items())))

    def _spawn(self, target: Any, name: str) -> None:
        if target.__name__ == "serve_forever":
            t = threading.Thread(target=target, daemon=True, name=name)
        else:
            t = threading.Thread(target=target, args=(self.stop_event,), daemon=True, name=name)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self.stop_event.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # --- operations behind the HTTP endpoints ---
    def fire(self, name: str, body: bytes) -> InvocationResult | None:
        info = self.invoker.get(name)
        try:
            payload = json.loads(body or b"{}")
        except ValueError as exc:
            raise HostError(f"malformed JSON: {exc}") from exc
        text = payload.get("input", "") if isinstance(payload, dict) else ""
        kind = info.trigger_type
        if kind == "httpTrigger":
            raise HostError(f"{name} is an HTTP function: call it at /api/{info.trigger.get('route') or name}")
        if kind == "timerTrigger":
            return self.timers[name].fire()
        if kind == "serviceBusTrigger":
            from shared.ports import OutgoingMessage

            pump = next(p for p in self.pumps if p.info.name == name)
            import uuid

            self.bus.put([pump.entity.storage_name],
                         OutgoingMessage(body=str(text).encode(), message_id=str(uuid.uuid4())))
            return None
        if kind == "blobTrigger":
            container, _, blob = str(text).partition("/")
            from local.host.triggers import blob_created_event

            client = self.blob_service().get_blob_client(container, blob)
            props = client.get_blob_properties()
            event = blob_created_event(container=container, name=blob, url=client.url, etag=props.etag,
                                       content_type=props.content_settings.content_type, length=props.size)
            self.dispatcher.submit(name, event)
            return None
        if kind == "eventGridTrigger":
            events = parse_events(json.dumps(text).encode() if not isinstance(text, str) else text.encode())
            for e in events:
                self.dispatcher.submit(name, e)
            return None
        raise HostError(f"trigger type {kind} cannot be fired")

    def idle(self) -> bool:
        return self.dispatcher.idle() and all(p.in_flight == 0 for p in self.pumps)

    def status(self) -> dict[str, Any]:
        return {
            "state": "Running",
            "functions": [{"name": n, "trigger": i.trigger_type,
                           **({"route": i.trigger.get("route") or n} if i.trigger_type == "httpTrigger" else {})}
                          for n, i in sorted(self.functions.items())],
            "idle": self.idle(),
            "eventGridDeadLettered": len(self.dispatcher.dead_lettered),
        }


class MethodNotAllowed(HostError):
    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message, status=405)
        self.allowed = allowed


def _handler(host: LocalHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "face-enrollment-localhost/1"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _read_body(self) -> bytes:
            """The whole body, read before any routing: a reply that ignored it (404, 405, 401) would
            leave its bytes in the connection, to be parsed as the next request's start (keep-alive)."""
            text = self.headers.get("Content-Length") or "0"
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked" or not text.isdigit():
                self.close_connection = True  # nothing tells where this request ends: do not reuse the connection
                raise HostError("a request body needs a valid Content-Length", status=411 if not text.isdigit() else 400)
            length = int(text)
            return self.rfile.read(length) if length else b""

        def _body(self) -> bytes:
            return self._request_body

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """http.server's own refusals (header too large, bad request line, unknown method) in the
            documented JSON shape instead of its HTML page."""
            codes = {400: "BadRequest", 405: "MethodNotAllowed", 414: "UriTooLong", 431: "HeadersTooLarge",
                     501: "MethodNotAllowed"}
            status = 405 if code == 501 else code
            body = json.dumps({"error": {"code": codes.get(status, "BadRequest"),
                                         "message": message or "The request could not be read."}}).encode()
            try:
                self.send_response(status, message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            finally:
                self.close_connection = True

        def __getattr__(self, name: str) -> Any:
            # Any method (TRACE, PROPFIND, ...) is routed, so unknown ones get a JSON 405, not a 501 page.
            if name.startswith("do_"):
                return self._dispatch
            raise AttributeError(name)

        def _send(self, status: int, body: bytes | dict[str, Any] | list[Any] | None = None,
                  headers: dict[str, str] | None = None) -> None:
            raw = b""
            ctype = None
            if isinstance(body, (dict, list)):
                raw = json.dumps(body).encode()
                ctype = "application/json"
            elif body is not None:
                raw = body
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if ctype and not any(k.lower() == "content-type" for k in (headers or {})):
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            if raw and self.command != "HEAD":
                self.wfile.write(raw)

        def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
            if self.path.startswith("/api/"):  # the app's documented error shape (docs/openapi.json)
                codes = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 411: "LengthRequired",
                         500: "InternalError"}
                return self._send(status, {"error": {"code": codes.get(status, "Error"), "message": message}}, headers)
            self._send(status, {"error": message}, headers)

        def _dispatch(self) -> None:
            try:
                self._request_body = self._read_body()
                self._route()
            except MethodNotAllowed as exc:
                self._error(405, str(exc), {"Allow": ", ".join(exc.allowed)})
            except HostError as exc:
                self._error(exc.status, str(exc))
            except Exception as exc:  # never let a bad request take the host down
                log.exception("host error on %s %s", self.command, self.path)
                self._error(500, f"host error: {exc.__class__.__name__}")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

        def _route(self) -> None:
            url = urlsplit(self.path)
            path = url.path
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            if host.easyauth is not None and path.startswith("/.auth/"):
                answer = host.easyauth.handle(self.command, path, url.query, dict(self.headers.items()), self._body())
                if answer is not None:
                    return self._send(answer.status, answer.body, answer.headers)
            if path == "/" and self.command in ("GET", "HEAD"):
                return self._send(302, None, {"Location": "/api/web/"})  # the reference front end
            if path.startswith("/api/"):
                return self._http_function(path[len("/api/"):], url.query)
            if path in ("/runtime/webhooks/eventgrid", "/runtime/webhooks/EventGrid", "/runtime/webhooks/blobs"):
                return self._webhook(path, query)
            if path.startswith("/admin/functions/") and self.command == "POST":
                name = path[len("/admin/functions/"):]
                result = host.fire(name, self._body())
                if result is not None and not result.ok:
                    return self._send(500, {"error": result.error, "invocationId": result.invocation_id})
                return self._send(202, None)
            if path == "/admin/host/status":
                return self._send(200, host.status())
            if path == "/admin/invocations":
                with host._results_lock:
                    items = list(host.results)
                return self._send(200, items)
            if path == "/admin/eventgrid/deadletter":
                return self._send(200, host.dispatcher.dead_lettered)
            raise HostError(f"no such endpoint: {self.command} {path}", status=404)

        def _webhook(self, path: str, query: dict[str, str]) -> None:
            name = query.get("functionName", "")
            if path.endswith("/blobs"):
                if not name.startswith("Host.Functions."):
                    raise HostError("functionName must be Host.Functions.<name>")
                name = name[len("Host.Functions."):]
            info = host.invoker.get(name)
            if self.command == "OPTIONS":  # CloudEvents abuse-protection handshake
                origin = self.headers.get("WebHook-Request-Origin")
                if not origin:
                    raise HostError("OPTIONS without WebHook-Request-Origin")
                return self._send(200, None, {"WebHook-Allowed-Origin": origin, "Allow": "POST"})
            if self.command != "POST":
                raise HostError("use POST", status=405)
            events = parse_events(self._body())
            answer = validation_response(events)
            if answer is not None or self.headers.get("aeg-event-type") == "SubscriptionValidation":
                if answer is None:
                    raise HostError("SubscriptionValidation without a validation event")
                return self._send(200, answer)
            if info.trigger_type not in ("eventGridTrigger", "blobTrigger"):
                raise HostError(f"function {name} is not triggered by Event Grid")
            results = host.dispatcher.deliver_now(info, events)
            failed = [r for r in results if not r.ok]
            if failed:
                # 500 makes Event Grid retry the delivery, as it does with the real host.
                return self._send(500, {"error": failed[0].error, "invocationId": failed[0].invocation_id})
            self._send(202 if path.endswith("/blobs") else 200, None)

        def _http_function(self, route: str, raw_query: str) -> None:
            route = route.split("?")[0]
            for info, regex in host.http_routes:
                match = regex.match(route)
                if not match:
                    continue
                methods = [m.upper() for m in (info.trigger.get("methods") or [])]
                if methods and self.command not in methods:
                    continue
                params = {k: v[-1] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
                request = func.HttpRequest(
                    method=self.command,
                    url=f"http://{host.bind_host}:{host.http_port}{self.path}",
                    headers=(host.easyauth.request_headers(dict(self.headers.items())) if host.easyauth
                             else dict(self.headers.items())),
                    params=params,
                    # Percent-decoded, as the Functions host binds them: a userKey of a%2Fb is "a/b".
                    route_params={k: unquote(v) for k, v in match.groupdict().items() if v is not None},
                    body=self._body(),
                )
                result = host.invoker.invoke(info, request)
                host.record(result)
                if not result.ok:  # as the app's own catch-all would answer: the documented shape, no details
                    return self._send(500, {"error": {"code": "InternalError", "message": "Something went wrong.",
                                                      "errorId": result.invocation_id}})
                value = result.value
                if isinstance(value, func.HttpResponse):
                    headers = {k: v for k, v in value.headers.items() if k.lower() != "content-length"}
                    if value.mimetype and not any(k.lower() == "content-type" for k in headers):
                        headers["Content-Type"] = f"{value.mimetype}; charset={value.charset}"
                    return self._send(value.status_code, value.get_body(), headers)
                if value is None:
                    return self._send(204, None)
                return self._send(200, str(value).encode(), {"Content-Type": "text/plain; charset=utf-8"})
            allowed = sorted({m.upper() for i, r in host.http_routes if r.match(route)
                              for m in (i.trigger.get("methods") or [])})
            if allowed:
                raise MethodNotAllowed(f"method {self.command} not allowed on /api/{route}", allowed)
            raise HostError(f"no function serves /api/{route}", status=404)

    return Handler
