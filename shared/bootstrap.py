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
    from shared.domain.pacing import TokenBucket
    from shared.ports import (
        AnchorStorePort,
        EventPublisherPort,
        FacePort,
        ImageCheckPort,
        MessagePublisherPort,
        PhotoStorePort,
        RecordStorePort,
    )
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
    from shared.services.readiness import ReadinessService
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
    readiness: ReadinessService


def build(settings: Settings, *, clock: Clock = utc_now, face: FacePort | None = None,
          records: RecordStorePort | None = None, photos: PhotoStorePort | None = None,
          publisher: MessagePublisherPort | None = None, anchors: AnchorStorePort | None = None,
          events: EventPublisherPort | None = None, credential: Any = None,
          face_budget: TokenBucket | None = None, images: ImageCheckPort | None = None) -> Services:
    """Adapters from settings, except those given: tests pass in-memory fakes (tests/fakes.py) or
    real adapters wrapped with faults. Nothing is connected here; adapters connect on first use.

    Re-enrollment's Face calls take tokens from ``face_budget``, one bucket for every worker thread of
    the process, at FACE_CALLS_PER_SECOND. It is built here when Face is (the real client, which
    reports its 429s to it); a test that passes a Face fake passes a bucket on its own clock, or none."""
    from typing import cast

    from shared.adapters.azure_storage import StorageClients
    from shared.adapters.repositories import Repositories
    from shared.domain.pacing import PacedCalls, TokenBucket
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

    quiet_sdk_logging()
    given_records = records  # the operator CLIs build services without importing function_app
    clients = StorageClients(settings, credential=credential)
    if records is None:
        from shared.adapters.table_records import TableRecords

        records = TableRecords(clients, prefix=settings.table_prefix)
    if photos is None:
        from shared.adapters.blob_photos import BlobPhotoStore

        photos = BlobPhotoStore(clients, uploads_container=settings.uploads_container,
                                kept_container=settings.kept_photos_container)
    face_given = face
    if face is None:
        from shared.adapters.face_rest import FaceRestClient

        client = FaceRestClient.from_settings(settings)
        face_budget = face_budget or TokenBucket(settings.face_calls_per_second)
        client.on_throttled = face_budget.hold_off
        face = client
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
    if images is None:
        from shared.adapters.image_sandbox import SandboxedImageCheck

        images = SandboxedImageCheck.from_settings(settings)
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
                                   images=images, quotas=quotas)
    footprint = FootprintService(repos=repos, photos=photos, face=face, audit=audit, clock=clock,
                                 audit_retention_days=settings.audit_retention_days)
    revocation = RevocationService(repos=repos, photos=photos, face=face, consent=consent, audit=audit,
                                   publisher=publisher, settings=settings, clock=clock, footprint=footprint,
                                   events=outbox)
    purge = PurgeService(repos=repos, photos=photos, face=face, revocation=revocation, audit=audit, groups=groups,
                         training=training, ledger=ledger, settings=settings, clock=clock,
                         finish_replacement=enrollment.finish_replacement)
    paced = cast("FacePort", PacedCalls(face, face_budget)) if face_budget is not None else face
    reenrollment = ReenrollmentService(repos=repos, photos=photos, face=paced, audit=audit, publisher=publisher,
                                       consent=consent, groups=groups,
                                       persons=PersonFactory(repos, paced, clock=clock) if face_budget is not None else persons,
                                       settings=settings, clock=clock, events=outbox)
    access = AccessService(repos=repos, photos=photos, audit=audit, consent=consent, enrollment=enrollment,
                           footprint=footprint, revocation=revocation, clock=clock, sas_ttl_minutes=settings.sas_ttl_minutes,
                           audit_retention_days=settings.audit_retention_days)
    readiness = _readiness(settings, clock=clock, face=face, repos=repos, audit=audit, credential=credential,
                           own_face=face_given is None, own_records=given_records is None)
    return Services(settings=settings, records=records, repos=repos, photos=photos, face=face, publisher=publisher,
                    audit=audit, groups=groups, training=training, anchors=anchors, ledger=ledger,
                    event_publisher=events, events=outbox, consent=consent, enrollment=enrollment,
                    revocation=revocation, footprint=footprint, purge=purge, reenrollment=reenrollment, access=access,
                    quotas=quotas, readiness=readiness)


#: Connect and read timeout of each readiness probe's own clients, and their retries: none. Below the
#: service's per-check bound (5 s), so a probe's thread ends soon after a dependency stops answering.
PROBE_IO_TIMEOUT_SECONDS = 3.0


def _readiness(settings: Settings, *, clock: Clock, face: FacePort, repos: Repositories, audit: AuditLog,
               credential: Any, own_face: bool, own_records: bool) -> ReadinessService:
    """Readiness gets clients of its own that fail fast (short timeouts, no retries): the app's clients
    retry for up to a minute, which is right for work and wrong for a health report. Fakes given by tests
    are used as they are. Nothing connects here."""
    from shared.adapters.readiness_probes import (
        ServiceBusProbe,
        StandInBusProbe,
        StorageProbe,
        fast_client_options,
    )
    from shared.services.readiness import ReadinessService

    timeout = PROBE_IO_TIMEOUT_SECONDS
    storage = StorageProbe(settings, timeout=timeout, credential=credential)
    bus: Any
    if settings.uses_storage_queue_bus:
        bus = StandInBusProbe(connection_string=str(settings.photo_storage_connection), timeout=timeout)
    else:
        from shared.adapters.azure_storage import StorageClients

        bus = ServiceBusProbe(fully_qualified_namespace=str(settings.servicebus_namespace), credential=credential,
                              credential_factory=StorageClients(settings).credential, timeout=timeout)
    probe_face = face
    if own_face:
        from shared.adapters.face_rest import FaceRestClient

        probe_face = FaceRestClient.from_settings(settings, max_retries=0, timeout=timeout)
    heartbeats = repos.heartbeats
    if own_records:
        from shared.adapters.azure_storage import StorageClients
        from shared.adapters.repositories import Repositories
        from shared.adapters.table_records import TableRecords

        fast = StorageClients(settings, credential=credential, client_options=fast_client_options(timeout))
        heartbeats = Repositories(TableRecords(fast, prefix=settings.table_prefix)).heartbeats
    return ReadinessService(settings=settings, face=probe_face, storage=storage, bus=bus, heartbeats=heartbeats,
                            audit=audit, clock=clock)


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
