"""A door system's stand-in for the local stack: records the CloudEvents it receives.

    python -m local.events_sink --port 7073 [--out .local/door-events.jsonl]

``POST /events`` takes one CloudEvent (``application/cloudevents+json``) or a batch
(``application/cloudevents-batch+json``), checks each against docs/door-events.schema.json (400,
and nothing recorded, if one does not match), and records them; an event whose ``source`` + ``id``
it has seen already is acknowledged and not recorded again, as a real consumer de-duplicates.
``GET /events`` lists what was recorded, in order. ``GET /health`` answers 200.

Event Grid's webhook validation handshake is not needed here: the app posts straight to it.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "docs" / "door-events.schema.json"


class Recorder:
    def __init__(self, out: Path | None = None) -> None:
        from jsonschema import Draft202012Validator

        self._validator = Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.duplicates = 0
        self._seen: set[tuple[str, str]] = set()
        self._out = out

    def problems(self, event: Any) -> list[str]:
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in self._validator.iter_errors(event)]

    def record(self, events: list[dict[str, Any]]) -> int:
        added = 0
        with self._lock:
            for event in events:
                key = (str(event["source"]), str(event["id"]))
                if key in self._seen:
                    self.duplicates += 1
                    continue
                self._seen.add(key)
                self.events.append(event)
                added += 1
                if self._out is not None:
                    with self._out.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(event, sort_keys=True) + "\n")
        return added


def make_server(port: int, recorder: Recorder, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, {"status": "ok"})
            elif self.path == "/events":
                with recorder._lock:
                    self._send(200, {"events": list(recorder.events), "duplicates": recorder.duplicates})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != "/events":
                self._send(404, {"error": "not found"})
                return
            try:
                parsed = json.loads(body)
            except ValueError:
                self._send(400, {"error": "not JSON"})
                return
            events = parsed if isinstance(parsed, list) else [parsed]
            bad = {str(i): p for i, e in enumerate(events) if (p := recorder.problems(e))}
            if bad:
                self._send(400, {"error": "does not match docs/door-events.schema.json", "problems": bad})
                return
            self._send(200, {"recorded": recorder.record(events)})

        def log_message(self, format: str, *args: Any) -> None:
            return

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.events_sink", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=7073)
    parser.add_argument("--out", type=Path, default=None, help="also append each event to this JSON-lines file")
    args = parser.parse_args(argv)
    server = make_server(args.port, Recorder(args.out))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
