"""The one place that wires adapters to services, from settings alone.

Built on first use, not at import (cold start), and once per process under a lock: several
invocations may start at once on threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from shared.settings import Settings

if TYPE_CHECKING:  # types only: the modules are imported on first build (cold start)
    from shared.adapters.repositories import Repositories
    from shared.ports import AnchorStorePort, EventPublisherPort, FacePort, MessagePublisherPort, PhotoStorePort, RecordStorePort
    from shared.services.access import AccessService
    from shared.services.audit import AuditLog
    from shared.services.consent import ConsentService
    from shared.services.enrollment import EnrollmentService
    from shared.services.events import EventOutbox
    from shared.services.footprint import FootprintService
    from shared.services.groups import GroupDirectory, TrainingCoordinator
    from shared.services.ledger import ConsentLedger
    from shared.services.purge import PurgeService
    from shared.services.quotas import QuotaService
    from shared.services.reenrollment import ReenrollmentService
    from shared.services.revocation import RevocationService

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(kw_only=True)
class Services:
    settings: Settings
    records: RecordStorePort
    repos: Repositories
    photos: PhotoStorePort
    face: FacePort
    publisher: MessagePublisherPort
    audit: AuditLog
    groups: GroupDirectory
    training: TrainingCoordinator
    anchors: AnchorStorePort
    event_publisher: EventPublisherPort
    events: EventOutbox
    ledger: ConsentLedger
    consent: ConsentService
    enrollment: EnrollmentService
    revocation: RevocationService
    footprint: FootprintService
    purge: PurgeService
    reenrollment: ReenrollmentService
    access: AccessService
    quotas: QuotaService


def build(settings: Settings, *, clock: Clock = utc_now, face: FacePort | None = None,
          records: RecordStorePort | None = None, photos: PhotoStorePort | None = None,
          publisher: MessagePublisherPort | None = None, anchors: AnchorStorePort | None = None,
          events: EventPublisherPort | None = None, credential: Any = None) -> Services:
    """Adapters from settings, except those given: tests pass in-memory fakes (tests/fakes.py) or
    real adapters wrapped with faults. Nothing is connected here; adapters connect on first use."""
    from shared.adapters.azure_storage import StorageClients
    from shared.adapters.repositories import Repositories
    from shared.logging_policy import quiet_sdk_logging
    from shared.services.access import AccessService
    from shared.services.audit import AuditLog
    from shared.services.consent import ConsentService
    from shared.services.enrollment import EnrollmentService
    from shared.services.events import EventOutbox
    from shared.services.footprint import FootprintService
    from shared.services.groups import GroupDirectory, PersonFactory, TrainingCoordinator
    from shared.services.ledger import ConsentLedger
    from shared.services.purge import PurgeService
    from shared.services.quotas import QuotaService
    from shared.services.reenrollment import ReenrollmentService
    from shared.services.revocation import RevocationService

    quiet_sdk_logging()  # the operator CLIs build services without importing function_app
    clients = StorageClients(settings, credential=credential)
    if records is None:
        from shared.adapters.table_records import TableRecords

        records = TableRecords(clients, prefix=settings.table_prefix)
    if photos is None:
        from shared.adapters.blob_photos import BlobPhotoStore

        photos = BlobPhotoStore(clients, uploads_container=settings.uploads_container,
                                kept_container=settings.kept_photos_container)
    if face is None:
        from shared.adapters.face_rest import FaceRestClient

        face = FaceRestClient.from_settings(settings)
    if publisher is None:
        if settings.uses_storage_queue_bus:
            from shared.adapters.storage_queue_bus import StorageQueueBus

            publisher = StorageQueueBus(connection_string=str(settings.photo_storage_connection))
        else:
            from shared.adapters.servicebus_publisher import ServiceBusPublisher

            publisher = ServiceBusPublisher(fully_qualified_namespace=str(settings.servicebus_namespace),
                                            credential=credential or clients.credential())
    if anchors is None:
        from shared.adapters.blob_anchors import BlobAnchorStore

        anchors = BlobAnchorStore(clients, container=settings.ledger_anchors_container)
    if events is None:
        from shared.adapters.event_publishers import EventGridPublisher, HeldEvents, HttpCloudEventsPublisher

        if settings.events_transport == "http" and settings.events_sink_url:
            events = HttpCloudEventsPublisher(url=settings.events_sink_url, source=settings.events_source)
        elif not settings.eventgrid_topic_endpoint:
            events = HeldEvents()
        else:
            events = EventGridPublisher(endpoint=str(settings.eventgrid_topic_endpoint), source=settings.events_source,
                                        credential=credential or clients.credential())
    repos = Repositories(records)
    outbox = EventOutbox(repos, events, clock=clock)
    audit = AuditLog(repos, clock=clock, hash_key=settings.audit_hash_key)
    ledger = ConsentLedger(repos, anchors, audit, clock=clock)
    consent = ConsentService(repos, photos, audit, chain=ledger, clock=clock,
                             require_employee_id=settings.hr_require_employee_id)
    groups = GroupDirectory(repos, face, settings, clock=clock)
    training = TrainingCoordinator(groups, face, clock=clock, coalesce_seconds=settings.training_coalesce_seconds)
    persons = PersonFactory(repos, face, clock=clock)
    quotas = QuotaService(repos=repos, settings=settings, clock=clock)
    enrollment = EnrollmentService(repos=repos, photos=photos, face=face, consent=consent, audit=audit, groups=groups,
                                   training=training, persons=persons, settings=settings, clock=clock, events=outbox,
                                   quotas=quotas)
    footprint = FootprintService(repos=repos, photos=photos, face=face, audit=audit, clock=clock,
                                 audit_retention_days=settings.audit_retention_days)
    revocation = RevocationService(repos=repos, photos=photos, face=face, consent=consent, audit=audit,
                                   publisher=publisher, settings=settings, clock=clock, footprint=footprint,
                                   events=outbox)
    purge = PurgeService(repos=repos, photos=photos, face=face, revocation=revocation, audit=audit, groups=groups,
                         training=training, ledger=ledger, settings=settings, clock=clock,
                         finish_replacement=enrollment.finish_replacement)
    reenrollment = ReenrollmentService(repos=repos, photos=photos, face=face, audit=audit, publisher=publisher,
                                       consent=consent, groups=groups, persons=persons, settings=settings, clock=clock,
                                       events=outbox)
    access = AccessService(repos=repos, photos=photos, audit=audit, consent=consent, enrollment=enrollment,
                           footprint=footprint, revocation=revocation, clock=clock, sas_ttl_minutes=settings.sas_ttl_minutes,
                           audit_retention_days=settings.audit_retention_days)
    return Services(settings=settings, records=records, repos=repos, photos=photos, face=face, publisher=publisher,
                    audit=audit, groups=groups, training=training, anchors=anchors, ledger=ledger,
                    event_publisher=events, events=outbox, consent=consent, enrollment=enrollment,
                    revocation=revocation, footprint=footprint, purge=purge, reenrollment=reenrollment, access=access,
                    quotas=quotas)


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
