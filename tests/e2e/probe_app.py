"""A FunctionApp with one function of every trigger kind, to test the local host's mechanics.

Each function records what it received as a blob in the ``probe-results`` container, so the tests
observe invocations through storage, as they would observe the real app.
"""

from __future__ import annotations

import json
import os
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _record(kind: str, key: str, doc: dict[str, object]) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(os.environ["PhotoStorage"])
    container = service.get_container_client("probe-results")
    if not container.exists():
        try:
            container.create_container()
        except Exception:
            pass
    container.upload_blob(f"{kind}/{key}", json.dumps(doc).encode(), overwrite=True)


@app.route(route="echo/{name}", methods=["GET", "POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({
        "method": req.method, "name": req.route_params.get("name"), "q": req.params.get("q"),
        "body": req.get_body().decode(), "header": req.headers.get("x-probe"),
    }), status_code=201 if req.method == "POST" else 200, mimetype="application/json")


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("probe failure")


@app.event_grid_trigger(arg_name="event")
def eg_probe(event: func.EventGridEvent) -> None:
    # A CloudEvents delivery arrives as func.CloudEvent, which names its fields differently.
    data = event.get_json() if hasattr(event, "get_json") else event.data  # type: ignore[attr-defined]
    if isinstance(data, dict) and data.get("fail"):
        raise RuntimeError("asked to fail")
    kind = getattr(event, "event_type", None) or getattr(event, "type", None)
    _record("eg", event.id, {"type": kind, "subject": event.subject, "data": data, "cls": type(event).__name__})


@app.blob_trigger(arg_name="blob", path="probe-in/{name}", connection="PhotoStorage", source=func.BlobSource.EVENT_GRID)
def blob_probe(blob: func.InputStream) -> None:
    content = blob.read()
    if content == b"fail-once" and not _seen(f"blobfail/{(blob.name or '').replace('/', '_')}"):
        raise RuntimeError("first attempt fails")
    _record("blob", (blob.name or "").replace("/", "_"), {"name": blob.name, "length": len(content), "uri": blob.uri})


def _seen(key: str) -> bool:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(os.environ["PhotoStorage"])
    client = service.get_blob_client("probe-results", key)
    if client.exists():
        return True
    _record(*key.split("/", 1), {})
    return False


@app.service_bus_queue_trigger(arg_name="msg", queue_name="probe-queue", connection="ServiceBusConnection")
@app.service_bus_queue_output(arg_name="forward", queue_name="probe-forwarded", connection="ServiceBusConnection")
def sb_probe(msg: func.ServiceBusMessage, forward: func.Out[str]) -> None:
    body = json.loads(msg.get_body())
    tag = body.get("tag", "none")
    if body.get("action") == "sleep":
        _record("started", f"{tag}-{msg.delivery_count}", {})
        time.sleep(float(body.get("seconds", 1)))
    if body.get("action") == "fail":
        raise ValueError("probe rejects this message")
    _record("sb", f"{tag}-{msg.delivery_count}", {
        "messageId": msg.message_id, "deliveryCount": msg.delivery_count,
        "props": dict(msg.application_properties or {}), "body": body,
        "enqueued": msg.enqueued_time_utc.isoformat() if msg.enqueued_time_utc else None,
    })
    if body.get("forward"):
        forward.set(json.dumps({"from": tag}))


@app.service_bus_queue_trigger(arg_name="msg", queue_name="probe-forwarded", connection="ServiceBusConnection")
def sb_forwarded(msg: func.ServiceBusMessage) -> None:
    _record("forwarded", json.loads(msg.get_body())["from"], {"messageId": msg.message_id})


@app.service_bus_topic_trigger(arg_name="msg", topic_name="probe-topic", subscription_name="probe-sub",
                               connection="ServiceBusConnection")
def topic_probe(msg: func.ServiceBusMessage) -> None:
    _record("topic", msg.message_id or "none", {"body": msg.get_body().decode()})


@app.timer_trigger(arg_name="timer", schedule="*/2 * * * * *", run_on_startup=False)
def timer_probe(timer: func.TimerRequest) -> None:
    _record("timer", f"{time.time_ns()}", {"pastDue": timer.past_due})
