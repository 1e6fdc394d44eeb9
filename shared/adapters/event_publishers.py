"""CloudEvents 1.0 publishers (``EventPublisherPort``).

- ``EventGridPublisher``: an Event Grid topic (CloudEvents input schema), with azure-eventgrid's
  ``EventGridPublisherClient`` and the app's managed identity (the topic has local auth disabled;
  the app holds EventGrid Data Sender on it, infra/app/rbac.bicep).
- ``HttpCloudEventsPublisher``: the local stack's subscriber (local/events_sink.py), one HTTP
  POST of a CloudEvents JSON batch (``application/cloudevents-batch+json``), as Event Grid would
  deliver them to a webhook.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Sequence
from typing import Any

from shared.adapters.http_env import sdk_client_options
from shared.domain.enrollment import iso
from shared.errors import TransientFailure
from shared.ports import OutgoingEvent


def structured(event: OutgoingEvent, source: str) -> dict[str, object]:
    """The CloudEvents 1.0 JSON format of one event."""
    return {"specversion": "1.0", "id": event.id, "source": source, "type": event.type, "subject": event.subject,
            "time": iso(event.time), "datacontenttype": "application/json", "data": dict(event.data)}


class HeldEvents:
    """No topic configured (EVENTGRID_TOPIC_ENDPOINT unset, e.g. a test stack without a subscriber):
    events stay in the outbox, pending, until a publisher is configured. Nothing is dropped."""

    holds = True

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        raise TransientFailure("no event topic is configured (EVENTGRID_TOPIC_ENDPOINT); events stay in the outbox")


class EventGridPublisher:
    def __init__(self, *, endpoint: str, credential: Any, source: str) -> None:
        self._endpoint = endpoint
        self._credential = credential
        self._source = source
        self._client: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._client is None:
                from azure.eventgrid import EventGridPublisherClient

                self._client = EventGridPublisherClient(self._endpoint, self._credential, **sdk_client_options())
            return self._client

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        from azure.core.messaging import CloudEvent

        if events:
            self._get().send([CloudEvent(source=self._source, type=e.type, subject=e.subject, id=e.id, time=e.time,
                                         data=dict(e.data), datacontenttype="application/json") for e in events])


class HttpCloudEventsPublisher:
    def __init__(self, *, url: str, source: str, timeout: float = 10.0) -> None:
        self._url = url
        self._source = source
        self._timeout = timeout

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        if not events:
            return
        body = json.dumps([structured(e, self._source) for e in events]).encode()
        request = urllib.request.Request(self._url, data=body, method="POST",
                                         headers={"Content-Type": "application/cloudevents-batch+json"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                if response.status >= 300:
                    raise TransientFailure(f"event subscriber answered {response.status}")
        except OSError as exc:
            raise TransientFailure("event subscriber unreachable") from exc
