"""Trigger sources of the local host: Event Grid deliveries, the blob watcher, Service Bus pumps, timers."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from azure.functions import meta

from local.bus import Entity, LockedMessage, LockLost, StandInReceiver
from local.host.core import FunctionInfo, HostError, InvocationResult, Invoker
from shared.adapters.storage_queue_bus import StorageQueueBus
from shared.ports import OutgoingMessage

log = logging.getLogger("local.host")

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
TOPIC = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- Event Grid -------------------------------------------------------------------------------
def parse_events(body: bytes) -> list[dict[str, Any]]:
    """Event Grid schema (an array) or CloudEvents (one object or a batch). Raises HostError(400)."""
    try:
        doc = json.loads(body or b"null")
    except ValueError as exc:
        raise HostError(f"malformed event JSON: {exc}") from exc
    events = doc if isinstance(doc, list) else [doc]
    if not events or not all(isinstance(e, dict) for e in events):
        raise HostError("expected an event object or a non-empty array of event objects")
    for e in events:
        if "specversion" in e:
            missing = [k for k in ("id", "source", "type") if not e.get(k)]
        else:
            # `subject` must be present but may be empty: Event Grid's SubscriptionValidationEvent has "".
            missing = [k for k in ("id", "eventType") if not e.get(k)] + ([] if isinstance(e.get("subject"), str)
                                                                           else ["subject"])
        if missing:
            raise HostError(f"event is missing required field(s): {', '.join(missing)}")
    return events


def event_type(event: dict[str, Any]) -> str:
    return str(event.get("type") if "specversion" in event else event.get("eventType"))


def validation_response(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    for e in events:
        if event_type(e) == VALIDATION:
            code = (e.get("data") or {}).get("validationCode")
            if not code:
                raise HostError("validation event without data.validationCode")
            return {"validationResponse": code}
    return None


def blob_created_event(*, container: str, name: str, url: str, etag: str, content_type: str | None,
                       length: int, blob_type: str = "BlockBlob", api: str = "PutBlob") -> dict[str, Any]:
    """A ``Microsoft.Storage.BlobCreated`` event shaped like the one the storage service publishes."""
    return {
        "topic": TOPIC,
        "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
        "eventType": BLOB_CREATED,
        "eventTime": _iso(_now()),
        "id": str(uuid.uuid4()),
        "data": {
            "api": api,
            "clientRequestId": str(uuid.uuid4()),
            "requestId": str(uuid.uuid4()),
            "eTag": etag,
            "contentType": content_type or "application/octet-stream",
            "contentLength": length,
            "blobType": blob_type,
            "url": url,
            "sequencer": f"{time.time_ns():032x}",
            "storageDiagnostics": {"batchId": str(uuid.uuid4())},
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }


def blob_from_subject(subject: str) -> tuple[str, str]:
    prefix = "/blobServices/default/containers/"
    if not subject.startswith(prefix) or "/blobs/" not in subject:
        raise HostError(f"subject {subject!r} is not a blob subject")
    container, _, name = subject[len(prefix):].partition("/blobs/")
    return container, unquote(name)


def container_of(path: str) -> str:
    return path.split("/", 1)[0]


@dataclass
class Delivery:
    function: str
    event: dict[str, Any]
    attempts: int = 0
    not_before: float = 0.0


class EventDispatcher:
    """Delivers events to functions at least once, retrying failures on a (shortened) Event Grid schedule.

    Deliveries run side by side on ``concurrency`` threads (the local host passes host.json's
    maxConcurrentCalls), as Event Grid's concurrent webhook calls do on the Functions host: one slow
    blob (a costly upload) never holds up the events behind it."""

    RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0)

    def __init__(self, invoker: Invoker, blobs: Callable[[], Any], *, on_result: Callable[[InvocationResult], None],
                 concurrency: int = 8) -> None:
        self.invoker = invoker
        self._blobs = blobs
        self._on_result = on_result
        self._pending: list[Delivery] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        # Event Grid delivers events concurrently and the Functions host runs them concurrently: one
        # at a time, a burst of uploads waited in line (300 photos took 10 minutes here), and a costly
        # blob held up the events behind it.
        self.concurrency = max(1, concurrency)
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="eventgrid")
        self._in_flight = 0
        self.dead_lettered: list[dict[str, Any]] = []

    def invoke_event(self, info: FunctionInfo, event: dict[str, Any]) -> InvocationResult | None:
        """One delivery. Returns None when there is nothing to invoke (e.g. the blob is gone)."""
        if info.trigger_type == "eventGridTrigger":
            data = self.invoker.decode(info, meta.Datum(json.dumps(event), "json"), {})
            return self.invoker.invoke(info, data)
        if info.trigger_type == "blobTrigger":
            if event_type(event) != BLOB_CREATED:
                return None
            container, name = blob_from_subject(str(event.get("subject", "")))
            watched = container_of(str(info.trigger["path"]))
            if container != watched:
                raise HostError(f"function {info.name} watches container {watched!r}, not {container!r}")
            from azure.core.exceptions import ResourceNotFoundError

            client = self._blobs().get_blob_client(container, name)
            try:
                downloader = client.download_blob()
                content = downloader.readall()
                props = downloader.properties
            except ResourceNotFoundError:
                # As the Functions host does: a blob deleted before its event is handled is skipped.
                log.info("blob for event %s no longer exists; skipped", event.get("id"))
                return None
            metadata = {
                "BlobTrigger": f"{container}/{name}",
                "Uri": client.url,
                "Properties": {"ContentLength": props.size, "Length": props.size, "ETag": props.etag,
                               "ContentType": props.content_settings.content_type},
                "Metadata": dict(props.metadata or {}),
                "name": name,
            }
            data = self.invoker.decode(info, meta.Datum(content, "bytes"), metadata)
            return self.invoker.invoke(info, data)
        raise HostError(f"function {info.name} is not triggered by Event Grid (it is {info.trigger_type})")

    def deliver_now(self, info: FunctionInfo, events: list[dict[str, Any]]) -> list[InvocationResult]:
        results = []
        for event in events:
            result = self.invoke_event(info, event)
            if result is not None:
                self._on_result(result)
                results.append(result)
        return results

    def submit(self, function: str, event: dict[str, Any]) -> None:
        with self._lock:
            self._pending.append(Delivery(function, event))
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            now = time.monotonic()
            with self._lock:
                due = [d for d in self._pending if d.not_before <= now]
                self._pending = [d for d in self._pending if d.not_before > now]
            for d in due:
                self._start(d)
            self._wake.wait(0.2)
            self._wake.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _start(self, d: Delivery) -> None:
        with self._lock:
            self._in_flight += 1

        def attempt() -> None:
            try:
                self._attempt(d)
            except Exception:  # never lose the worker thread; the delivery was recorded by _attempt
                log.exception("delivery of event %s failed unexpectedly", d.event.get("id"))
            finally:
                with self._lock:
                    self._in_flight -= 1
                self._wake.set()

        self._pool.submit(attempt)

    def idle(self) -> bool:
        with self._lock:
            return not self._pending and not self._in_flight


    def _attempt(self, d: Delivery) -> None:
        d.attempts += 1
        try:
            info = self.invoker.get(d.function)
            result = self.invoke_event(info, d.event)
        except HostError as exc:
            self._dead_letter(d, "BadRequest", str(exc))
            return
        except Exception as exc:  # storage hiccup: retried like a failed delivery
            result = InvocationResult(d.function, "", False, error=f"{exc.__class__.__name__}: {exc}")
        if result is None:
            return
        self._on_result(result)
        if result.ok:
            return
        if d.attempts > len(self.RETRY_DELAYS):
            self._dead_letter(d, "MaxDeliveryAttemptsExceeded", result.error or "")
            return
        d.not_before = time.monotonic() + self.RETRY_DELAYS[d.attempts - 1]
        with self._lock:
            self._pending.append(d)

    def _dead_letter(self, d: Delivery, reason: str, description: str) -> None:
        record = {"function": d.function, "event": d.event, "deadLetterReason": reason,
                  "deliveryAttempts": d.attempts, "lastDeliveryOutcome": description[:500],
                  "deadLetteredAt": _iso(_now())}
        self.dead_lettered.append(record)
        log.warning("event %s for %s dead-lettered: %s", d.event.get("id"), d.function, reason)
        try:
            container = self._blobs().get_container_client("eventgrid-deadletter")
            if not container.exists():
                container.create_container()
            container.upload_blob(f"{d.function}/{d.event.get('id')}.json", json.dumps(record).encode(), overwrite=True)
        except Exception:  # the in-memory record remains; the stand-in must not crash the host
            log.exception("could not write the dead-letter record")


class BlobWatcher:
    """Turns every new blob in the watched containers into a BlobCreated event (Azurite emits none)."""

    def __init__(self, blobs: Callable[[], Any], watches: dict[str, list[str]], dispatcher: EventDispatcher,
                 *, interval: float = 0.3) -> None:
        self._blobs = blobs
        self.watches = watches  # container -> functions
        self.dispatcher = dispatcher
        self.interval = interval
        self._seen: dict[tuple[str, str], str] = {}

    def scan_once(self) -> int:
        from azure.core.exceptions import ResourceNotFoundError

        found = 0
        service = self._blobs()
        for container, functions in self.watches.items():
            client = service.get_container_client(container)
            try:
                blobs = list(client.list_blobs())
            except ResourceNotFoundError:
                try:
                    client.create_container()
                except Exception:
                    pass
                continue
            present = set()
            for b in blobs:
                key = (container, b.name)
                present.add(key)
                if self._seen.get(key) == b.etag:
                    continue
                self._seen[key] = b.etag
                url = f"{client.url}/{b.name}"
                event = blob_created_event(container=container, name=b.name, url=url, etag=b.etag,
                                           content_type=b.content_settings.content_type, length=b.size or 0)
                for fn in functions:
                    self.dispatcher.submit(fn, event)
                found += 1
            for key in [k for k in self._seen if k[0] == container and k not in present]:
                del self._seen[key]
        return found

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.scan_once()
            except Exception:
                log.exception("blob watcher scan failed; retrying")
            stop.wait(self.interval)


# --- Service Bus ------------------------------------------------------------------------------
def message_metadata(m: LockedMessage, locked_until: datetime) -> dict[str, Any]:
    env = m.envelope
    md: dict[str, Any] = {
        "MessageId": env.message_id,
        "DeliveryCount": m.delivery_count,
        "UserProperties": env.application_properties,
        "ApplicationProperties": env.application_properties,
        "LockToken": m.lock_token,
        "SequenceNumber": env.sequence_number,
        "EnqueuedTimeUtc": env.enqueued_time_utc,
        "LockedUntil": _iso(locked_until),
        "ContentType": env.content_type or "",
    }
    if env.subject:
        md["Label"] = env.subject
        md["Subject"] = env.subject
    if env.scheduled_enqueue_time_utc:
        md["ScheduledEnqueueTimeUtc"] = env.scheduled_enqueue_time_utc
    if env.dead_letter_reason:
        md["DeadLetterReason"] = env.dead_letter_reason
        md["DeadLetterErrorDescription"] = env.dead_letter_error_description or ""
        md["DeadLetterSource"] = env.dead_letter_source or ""
    return md


class ServiceBusPump:
    """Peek-lock receive loop for one Service Bus trigger: complete on success, abandon on exception."""

    def __init__(self, info: FunctionInfo, entity: Entity, receiver: StandInReceiver, invoker: Invoker,
                 *, on_result: Callable[[InvocationResult], None], concurrency: int = 1,
                 poll_interval: float = 0.2, max_renewal: timedelta = timedelta(minutes=5)) -> None:
        self.info = info
        self.entity = entity
        self.receiver = receiver
        self.invoker = invoker
        self.on_result = on_result
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.max_renewal = max_renewal
        self.in_flight = 0
        self._lock = threading.Lock()

    def run(self, stop: threading.Event) -> None:
        threads = [threading.Thread(target=self._loop, args=(stop,), daemon=True, name=f"sb-{self.info.name}-{i}")
                   for i in range(self.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _loop(self, stop: threading.Event) -> None:
        # Storage queues have no long polling: an idle thread polls, and backs off (up to 5 x the
        # interval) while the queue stays empty, so idle pumps do not load the storage emulator that
        # busy ones are waiting on. A message resets the wait.
        idle = self.poll_interval
        while not stop.is_set():
            try:
                messages = self.receiver.receive(self.entity, max_messages=1)
            except Exception:
                log.exception("receive from %s failed; retrying", self.entity.label)
                stop.wait(1.0)
                continue
            if not messages:
                stop.wait(idle)
                idle = min(idle * 1.5, self.poll_interval * 5)
                continue
            idle = self.poll_interval
            for m in messages:
                if stop.is_set():
                    return  # leave it locked: it comes back when the lock expires
                self.handle(m, stop)

    def handle(self, m: LockedMessage, stop: threading.Event) -> InvocationResult | None:
        with self._lock:
            self.in_flight += 1
        scheduled = m.envelope.scheduled_enqueue_time_utc
        if scheduled:
            early = (datetime.fromisoformat(scheduled.replace("Z", "+00:00")) - _now()).total_seconds()
            if 0 < early <= 2:
                stop.wait(early)
        done = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(m, done, stop), daemon=True)
        renewer.start()
        try:
            locked_until = _now() + timedelta(seconds=self.entity.lock_seconds)
            try:
                data = self.invoker.decode(self.info, meta.Datum(m.envelope.body, "bytes"), message_metadata(m, locked_until))
            except Exception as exc:
                self.receiver.dead_letter(m, reason="DeserializationFailed", description=str(exc))
                return None
            result = self.invoker.invoke(self.info, data)
            done.set()
            renewer.join()
            if stop.is_set():
                return result  # the host is stopping: no settlement, the lock will expire
            self.on_result(result)
            try:
                if result.ok:
                    send_outputs(self.info, result, self.receiver.bus)
                    self.receiver.complete(m)
                elif m.delivery_count >= self.entity.max_delivery_count:
                    # The last delivery failed: dead-letter now, keeping the function's last error
                    # in the description (Service Bus gives only a generic one).
                    self.receiver.dead_letter(m, reason="MaxDeliveryCountExceeded",
                                              description=f"Message could not be consumed after "
                                                          f"{self.entity.max_delivery_count} delivery attempts. "
                                                          f"Last error: {result.error or ''}")
                else:
                    self.receiver.abandon(m)
            except LockLost:
                log.warning("lock lost on a message of %s; it will be redelivered", self.entity.label)
            return result
        finally:
            done.set()
            with self._lock:
                self.in_flight -= 1

    def _renew(self, m: LockedMessage, done: threading.Event, stop: threading.Event) -> None:
        started = time.monotonic()
        interval = max(0.5, self.entity.lock_seconds / 2)
        while not done.wait(interval):
            if stop.is_set() or time.monotonic() - started > self.max_renewal.total_seconds():
                return
            try:
                self.receiver.renew(m)
            except LockLost:
                return


def send_outputs(info: FunctionInfo, result: InvocationResult, bus: StorageQueueBus) -> None:
    """Service Bus output bindings: a str, bytes, dict or a list of them, sent after success."""
    for b in info.outputs:
        if b["name"] not in result.outputs or b.get("type") != "serviceBus":
            continue
        destination = b.get("queueName") or b.get("topicName")
        value = result.outputs[b["name"]]
        values = value if isinstance(value, list) else [value]
        msgs = []
        for v in values:
            body = v if isinstance(v, bytes) else (v.encode() if isinstance(v, str) else json.dumps(v).encode())
            msgs.append(OutgoingMessage(body=body, message_id=str(uuid.uuid4())))
        bus.send(str(destination), msgs)


# --- Timers -----------------------------------------------------------------------------------
def next_occurrence(schedule: str, after: datetime) -> datetime:
    """NCRONTAB has six fields with seconds first; croniter wants seconds last."""
    from croniter import croniter

    fields = schedule.split()
    if len(fields) != 6:
        raise HostError(f"NCRONTAB schedule needs 6 fields (seconds first): {schedule!r}")
    expr = " ".join(fields[1:] + fields[:1])
    result: datetime = croniter(expr, after).get_next(datetime)
    return result


def timer_payload(schedule: str, *, last: datetime | None, next_: datetime, past_due: bool = False) -> str:
    return json.dumps({
        "Schedule": {"AdjustForDST": True},
        "ScheduleStatus": {"Last": _iso(last) if last else None, "Next": _iso(next_), "LastUpdated": _iso(_now())},
        "IsPastDue": past_due,
    })


@dataclass
class TimerRunner:
    info: FunctionInfo
    schedule: str
    invoker: Invoker
    on_result: Callable[[InvocationResult], None]
    last: datetime | None = None
    fired: int = field(default=0)

    def fire(self) -> InvocationResult:
        nxt = next_occurrence(self.schedule, _now())
        data = self.invoker.decode(self.info, meta.Datum(timer_payload(self.schedule, last=self.last, next_=nxt), "json"), {})
        self.last = _now()
        self.fired += 1
        result = self.invoker.invoke(self.info, data)
        self.on_result(result)
        return result

    def run(self, stop: threading.Event) -> None:
        if self.info.trigger.get("runOnStartup"):
            self.fire()
        while not stop.is_set():
            due = next_occurrence(self.schedule, _now())
            while not stop.is_set() and _now() < due:
                stop.wait(min(1.0, max(0.01, (due - _now()).total_seconds())))
            if not stop.is_set():
                self.fire()
