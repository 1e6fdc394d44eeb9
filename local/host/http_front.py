"""The local host's HTTP front: ``/api/<route>`` to the HTTP functions, the Event Grid and blob
webhooks, the admin endpoints, and App Service Authentication's ``/.auth/*`` stand-in.

It only parses and routes: every operation is a method of :class:`local.host.host.LocalHost`.
"""

from __future__ import annotations

import json
import logging
import re
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import azure.functions as func

from local.host.core import HostError
from local.host.triggers import parse_events, validation_response

if TYPE_CHECKING:
    from local.host.host import LocalHost

log = logging.getLogger("local.host")


def route_regex(template: str) -> re.Pattern[str]:
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


class MethodNotAllowed(HostError):
    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message, status=405)
        self.allowed = allowed


def make_handler(host: LocalHost) -> type[BaseHTTPRequestHandler]:
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
