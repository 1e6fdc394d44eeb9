"""Sends through Azure Service Bus with the app's managed identity. Implements MessagePublisherPort."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.ports import OutgoingMessage


class ServiceBusPublisher:
    def __init__(self, *, fully_qualified_namespace: str, credential: Any) -> None:
        self._namespace = fully_qualified_namespace
        self._credential = credential
        self._client: Any = None

    def _service(self) -> Any:
        if self._client is None:
            # Imported here: the SDK (and its AMQP stack) costs import time on every cold start.
            from azure.servicebus import ServiceBusClient

            self._client = ServiceBusClient(self._namespace, credential=self._credential)
        return self._client

    def send(self, destination: str, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        from azure.servicebus.exceptions import MessageSizeExceededError

        # The app sends to queues only (revocations, model-updates, reenroll-work); topics such as
        # hr-events are written by other systems.
        sender = self._service().get_queue_sender(destination)
        with sender:
            # One batch per request (the fan-out sends 200 work items at a time), a new one when full.
            batch = sender.create_message_batch()
            for message in messages:
                sb_message = _service_bus_message(message)
                try:
                    batch.add_message(sb_message)
                except MessageSizeExceededError:
                    sender.send_messages(batch)
                    batch = sender.create_message_batch()
                    batch.add_message(sb_message)
            if len(batch):
                sender.send_messages(batch)

    def schedule(self, destination: str, message: OutgoingMessage) -> str:
        """``schedule_messages``: Service Bus returns the sequence number that cancels it."""
        if message.scheduled_enqueue_time is None:
            raise ValueError("a scheduled message needs its scheduled_enqueue_time")
        with self._service().get_queue_sender(destination) as sender:
            sequence_numbers = sender.schedule_messages(_service_bus_message(message), message.scheduled_enqueue_time)
        return str(sequence_numbers[0])

    def cancel(self, destination: str, token: str) -> bool:
        from azure.servicebus.exceptions import MessageNotFoundError

        try:
            sequence_number = int(token)
        except ValueError:
            return False
        try:
            with self._service().get_queue_sender(destination) as sender:
                sender.cancel_scheduled_messages(sequence_number)
        except MessageNotFoundError:  # delivered, being delivered, or cancelled already
            return False
        return True

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _service_bus_message(message: OutgoingMessage) -> Any:
    from azure.servicebus import ServiceBusMessage

    return ServiceBusMessage(
        message.body,
        message_id=message.message_id,
        content_type=message.content_type,
        subject=message.subject,
        application_properties=dict(message.application_properties) or None,  # type: ignore[arg-type]
        scheduled_enqueue_time_utc=message.scheduled_enqueue_time,
    )
