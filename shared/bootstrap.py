"""The one place that wires adapters to services, from settings alone.

Built on first use, not at import (cold start), and once per process under a lock: several
invocations may start at once on threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from shared.settings import Settings


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Services:
    settings: Settings
    records: Any
    photos: Any
    face: Any
    publisher: Any
    audit: Any
    consent: Any
    enrollment: Any
    revocation: Any
    purge: Any
    reenrollment: Any


def build(settings: Settings, *, clock: Callable[[], datetime] = utc_now, face: Any = None, records: Any = None,
          photos: Any = None, publisher: Any = None, credential: Any = None) -> Services:
    """Adapters from settings; tests may pass their own (a fake for pure logic, a real one elsewhere)."""
    from shared.adapters.azure_storage import StorageClients
    from shared.adapters.blob_photos import BlobPhotoStore
    from shared.adapters.face_rest import FaceRestClient
    from shared.adapters.table_records import TableRecords
    from shared.logging_policy import quiet_sdk_logging
    from shared.services.audit import AuditLog
    from shared.services.consent import ConsentService
    from shared.services.enrollment import EnrollmentService
    from shared.services.purge import PurgeService
    from shared.services.reenrollment import ReenrollmentService
    from shared.services.revocation import RevocationService

    quiet_sdk_logging()  # the operator CLIs build services without importing function_app
    clients = StorageClients(settings, credential=credential)
    records = records or TableRecords(clients, prefix=settings.table_prefix)
    photos = photos or BlobPhotoStore(clients, uploads_container=settings.uploads_container,
                                      kept_container=settings.kept_photos_container)
    face = face or FaceRestClient.from_settings(settings)
    if publisher is None:
        if settings.uses_storage_queue_bus:
            from shared.adapters.storage_queue_bus import StorageQueueBus

            publisher = StorageQueueBus(connection_string=str(settings.photo_storage_connection))
        else:
            from shared.adapters.servicebus_publisher import ServiceBusPublisher

            publisher = ServiceBusPublisher(fully_qualified_namespace=str(settings.servicebus_namespace),
                                            credential=credential or clients.credential())
    audit = AuditLog(records, clock=clock)
    consent = ConsentService(records, photos, audit, clock=clock)
    enrollment = EnrollmentService(records=records, photos=photos, face=face, consent=consent, audit=audit,
                                   settings=settings, clock=clock)
    revocation = RevocationService(records=records, photos=photos, face=face, consent=consent, audit=audit,
                                   publisher=publisher, settings=settings, clock=clock)
    purge = PurgeService(records=records, photos=photos, face=face, revocation=revocation, audit=audit,
                         enrollment=enrollment, settings=settings, clock=clock)
    reenrollment = ReenrollmentService(records=records, photos=photos, face=face, audit=audit, publisher=publisher,
                                       enrollment=enrollment, settings=settings, clock=clock)
    return Services(settings, records, photos, face, publisher, audit, consent, enrollment, revocation, purge, reenrollment)


_lock = threading.Lock()
_services: Services | None = None
_settings: Settings | None = None


def settings() -> Settings:
    """The app settings alone: enough to authenticate a request before any client is built."""
    global _settings
    with _lock:
        if _settings is None:
            _settings = _services.settings if _services is not None else Settings.from_env()
        return _settings


def services() -> Services:
    global _services
    with _lock:
        if _services is None:
            _services = build(_settings or Settings.from_env())
        return _services


def reset() -> None:
    """Forget the built services (tests that change settings)."""
    global _services, _settings
    with _lock:
        _services = None
        _settings = None
