"""The readiness probes (``StorageProbePort``, ``BusProbePort``) over the Azure SDKs, failing fast.

Every client here is built with short connection/read timeouts and no SDK retries: readiness reports a
dependency that does not answer within seconds as failed, it does not wait out a retry policy. SDK errors
become ``ProbeNotFound`` / ``ProbeDenied`` / ``ProbeUnreachable`` whose messages name the entity and the
error class only: an SDK message may quote a URL, and nothing in the report may leak a key or a token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from shared.adapters.azure_storage import StorageClients
from shared.adapters.http_env import sdk_client_options
from shared.errors import ProbeDenied, ProbeFailed, ProbeNotFound, ProbeUnreachable
from shared.settings import Settings

T = TypeVar("T")


def fast_client_options(timeout: float) -> dict[str, Any]:
    """azure-core options: connect/read timeouts of ``timeout`` seconds and no retries."""
    return {**sdk_client_options(), "connection_timeout": timeout, "read_timeout": timeout, "retry_total": 0}


def _translate(what: str, action: Callable[[], T]) -> T:
    """Runs one SDK call; an SDK error becomes a probe error (raised outside the except block, unchained)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    failure: ProbeFailed
    try:
        return action()
    except ResourceNotFoundError:
        failure = ProbeNotFound(f"{what} does not exist")
    except ClientAuthenticationError as exc:
        failure = ProbeDenied(f"{what}: the app's identity was refused ({type(exc).__name__})")
    except HttpResponseError as exc:
        if exc.status_code in (401, 403):
            failure = ProbeDenied(f"{what}: the app's identity was refused (HTTP {exc.status_code})")
        elif exc.status_code == 404:
            failure = ProbeNotFound(f"{what} does not exist")
        else:
            failure = ProbeUnreachable(f"{what}: HTTP {exc.status_code}")
    except (ServiceRequestError, ServiceResponseError, OSError) as exc:
        failure = ProbeUnreachable(f"{what}: no answer ({type(exc).__name__})")
    raise failure


class StorageProbe:
    """``StorageProbePort`` on the photo account: the app's tables and containers."""

    def __init__(self, settings: Settings, *, timeout: float, credential: Any = None) -> None:
        self._clients = StorageClients(settings, credential=credential, client_options=fast_client_options(timeout))
        self._prefix = settings.table_prefix

    def ensure_tables(self, tables: Sequence[str]) -> list[str]:
        service = self._clients.table_service()
        wanted = {f"{self._prefix}{t}": t for t in tables}
        existing = _translate("Table storage", lambda: {t.name for t in service.list_tables()})
        created = []
        for full, short in wanted.items():
            if full not in existing:
                _translate(f"table {full}", partial(service.create_table_if_not_exists, full))
                created.append(short)
        return created

    def ensure_container(self, container: str) -> bool:
        from azure.core.exceptions import ResourceExistsError

        client = self._clients.blob_service().get_container_client(container)

        def create() -> bool:
            try:
                client.create_container()
            except ResourceExistsError:
                return False
            return True

        if _translate(f"container {container}", client.exists):
            return False
        return _translate(f"container {container}", create)


class StandInBusProbe:
    """``BusProbePort`` for the local Service Bus stand-in on storage queues (MESSAGING_TRANSPORT=storage-queues):
    the queue of each entity exists, and a topic subscription is registered (local/bus applies the topology)."""

    def __init__(self, *, connection_string: str, timeout: float) -> None:
        self._connection_string = connection_string
        self._options = fast_client_options(timeout)

    def _queue_exists(self, storage_name: str, what: str) -> None:
        from azure.storage.queue import QueueServiceClient

        service = QueueServiceClient.from_connection_string(self._connection_string, **self._options)
        _translate(what, lambda: service.get_queue_client(storage_name).get_queue_properties())

    def check_queue(self, queue: str) -> None:
        from shared.adapters.storage_queue_bus import queue_storage_name

        self._queue_exists(queue_storage_name(queue), f"queue {queue}")

    def check_subscription(self, topic: str, subscription: str) -> None:
        from azure.data.tables import TableServiceClient

        from shared.adapters.storage_queue_bus import SUBSCRIPTIONS_TABLE, _safe, subscription_storage_name

        what = f"subscription {topic}/{subscription}"
        tables = TableServiceClient.from_connection_string(self._connection_string, **self._options)
        registry = tables.get_table_client(SUBSCRIPTIONS_TABLE)
        _translate(what, lambda: registry.get_entity(_safe(topic), _safe(subscription)))
        self._queue_exists(subscription_storage_name(topic, subscription), what)


class ServiceBusProbe:
    """``BusProbePort`` on Azure Service Bus with the app's identity: a peek of one message from each entity.
    A peek needs only the Listen right the app's Data Receiver roles give (the Manage right that reading
    entity properties needs is deliberately not granted); it locks and consumes nothing."""

    def __init__(self, *, fully_qualified_namespace: str, credential: Any = None,
                 credential_factory: Callable[[], Any] | None = None, timeout: float) -> None:
        self._namespace = fully_qualified_namespace
        self._credential = credential
        # Built at the first probe, not at start-up: making a DefaultAzureCredential costs milliseconds
        # that every build() (a cold start, each service-tier example) would pay for a probe it may not run.
        self._credential_factory = credential_factory
        self._timeout = timeout

    def _peek(self, what: str, receiver_for: Callable[[Any], Any]) -> None:
        from azure.servicebus import ServiceBusClient
        from azure.servicebus.exceptions import (
            MessagingEntityDisabledError,
            MessagingEntityNotFoundError,
            ServiceBusAuthenticationError,
            ServiceBusAuthorizationError,
            ServiceBusError,
        )

        failure: ProbeFailed
        if self._credential is None and self._credential_factory is not None:
            self._credential = self._credential_factory()
        try:
            with ServiceBusClient(self._namespace, credential=self._credential, retry_total=0,
                                  retry_backoff_max=self._timeout) as client, receiver_for(client) as receiver:
                receiver.peek_messages(max_message_count=1, timeout=self._timeout)
            return
        except (MessagingEntityNotFoundError, MessagingEntityDisabledError) as exc:
            failure = ProbeNotFound(f"{what} does not exist or is disabled ({type(exc).__name__})")
        except (ServiceBusAuthenticationError, ServiceBusAuthorizationError) as exc:
            failure = ProbeDenied(f"{what}: the app's identity was refused ({type(exc).__name__})")
        except ServiceBusError as exc:
            failure = ProbeUnreachable(f"{what}: no answer ({type(exc).__name__})")
        except Exception as exc:  # azure-identity and transport errors: the class only, never the message
            from azure.core.exceptions import ClientAuthenticationError

            if isinstance(exc, ClientAuthenticationError):
                failure = ProbeDenied(f"{what}: no token for the app's identity ({type(exc).__name__})")
            else:
                failure = ProbeUnreachable(f"{what}: no answer ({type(exc).__name__})")
        raise failure

    def check_queue(self, queue: str) -> None:
        self._peek(f"queue {queue}", lambda c: c.get_queue_receiver(queue, max_wait_time=self._timeout))

    def check_subscription(self, topic: str, subscription: str) -> None:
        self._peek(f"subscription {topic}/{subscription}",
                   lambda c: c.get_subscription_receiver(topic, subscription, max_wait_time=self._timeout))
