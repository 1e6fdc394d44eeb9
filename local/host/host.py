"""The local host itself: loads the app, discovers its functions from the real decorators, and
starts one driver per trigger (Service Bus pumps, timers, the blob watcher and the Event Grid
dispatcher from :mod:`local.host.triggers`) and the HTTP front (:mod:`local.host.http_front`)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import asdict
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from local.bus import Entity, StandInReceiver, load_topology
from local.host.core import FunctionInfo, HostError, InvocationResult, Invoker, discover, load_app, resolve_setting_refs
from local.host.http_front import make_handler, route_regex
from local.host.triggers import (
    BlobWatcher,
    EventDispatcher,
    ServiceBusPump,
    TimerRunner,
    container_of,
    parse_events,
)
from shared.adapters.storage_queue_bus import StorageQueueBus

log = logging.getLogger("local.host")

ROOT = Path(__file__).resolve().parents[2]


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
        self.http_port = http_port
        self.bind_host = host
        self.lock_seconds = lock_seconds
        self.blob_scan_interval = blob_scan_interval
        self.enable_timers = enable_timers
        self.enable_watcher = enable_watcher
        self.concurrency = concurrency or self._host_json_concurrency()
        self.dispatcher = EventDispatcher(self.invoker, self.blob_service, on_result=self.record,
                                          concurrency=self.concurrency)
        self.pumps: list[ServiceBusPump] = []
        self.timers: dict[str, TimerRunner] = {}
        self.watcher: BlobWatcher | None = None
        self._threads: list[threading.Thread] = []
        self.server: ThreadingHTTPServer | None = None
        # App Service Authentication's local stand-in (/.auth/*, the principal header from a session).
        from local.host.easyauth import EasyAuthStandIn, enabled_for

        self.easyauth = EasyAuthStandIn() if enabled_for(self.env) else None
        self.http_routes = [
            (info, route_regex(str(info.trigger.get("route") or info.name)))
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
        self.server = ThreadingHTTPServer((self.bind_host, self.http_port), make_handler(self))
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
