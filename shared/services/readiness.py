"""Readiness: exercises each dependency and says, for each, whether it works and what to do if not.

GET /api/admin/readiness (admin, MFA) and ``python -m local.readiness`` run the same checks:

* ``face``: a harmless list call (``list_groups(top=1)``). 403 ``UnsupportedFeature`` means Limited Access
  is not approved for the subscription yet: the next step is Microsoft's intake form.
* ``storage.tables``, ``storage.container.*``: each table and container the app needs exists (a missing
  one is created, as the app would on first use: that proves its identity may).
* ``serviceBus.*``: each queue and the HR topic subscription the app receives from exists and the app may
  receive from it (a peek; nothing is locked or consumed). Locally, the storage-queue stand-in.
* ``eventGrid.blobCreated``: when the enroll function last received a BlobCreated event (a heartbeat row
  the enroll pipeline upserts); ``warning`` when none ever arrived.
* ``authentication``: App Service Authentication on, or the local stack's trusted header.

Every check runs on its own daemon thread and is given ``timeout_seconds``: one that has not answered by
then is reported failed, so a hung dependency cannot hang the report (the probes' own clients time out
shortly after). The report holds no key, connection string, token or personId: details are written here
from the error's class, never copied from an SDK message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from shared.adapters.repositories import ALL_TABLES, Repository
from shared.domain.enrollment import iso, parse_iso
from shared.domain.records import Heartbeat
from shared.errors import (
    FaceAuthError,
    FaceError,
    FaceTransientError,
    LimitedAccessNotApproved,
    ProbeDenied,
    ProbeFailed,
    ProbeNotFound,
    QuotaExceeded,
)
from shared.ports import BusProbePort, FacePort, StorageProbePort
from shared.results import ReadinessCheck, ReadinessReport
from shared.services.audit import AuditLog
from shared.services.enrollment import BLOB_CREATED_HEARTBEAT
from shared.settings import Settings

log = logging.getLogger("shared.readiness")

OK, WARNING, FAILED = "ok", "warning", "failed"
DEFAULT_TIMEOUT_SECONDS = 5.0
#: The request-quota charge and the audit write go through the app's own clients, which retry a dead
#: storage account for longer than this; they are bookkeeping, so they get less time than a check.
BOOKKEEPING_TIMEOUT_SECONDS = 2.0
LIMITED_ACCESS_FORM = "https://aka.ms/facerecognition"


@dataclass(frozen=True)
class _Probe:
    name: str
    run: Callable[[], ReadinessCheck]
    #: What to do when the probe did not answer in time (the same as for an unreachable dependency).
    on_timeout: str


class ReadinessService:
    def __init__(self, *, settings: Settings, face: FacePort, storage: StorageProbePort, bus: BusProbePort,
                 heartbeats: Repository[Heartbeat], audit: AuditLog | None, clock: Callable[[], datetime],
                 timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self._settings = settings
        self._face = face
        self._storage = storage
        self._bus = bus
        self._heartbeats = heartbeats
        self._audit = audit
        self._clock = clock
        self.timeout_seconds = timeout_seconds

    # --- the report ------------------------------------------------------------------------------
    def check(self, *, actor: str | None = None, charge: Callable[[], None] | None = None) -> ReadinessReport:
        """Runs every check at once, each within ``timeout_seconds``. ``charge`` (the caller's request quota)
        runs first, bounded too: ``QuotaExceeded`` is raised, any other failure is left to the storage
        check to report. ``actor`` (an administrator) is audited, best effort: storage may be what is down."""
        if charge is not None:
            self._bounded(charge, reraise=(QuotaExceeded,))
        probes = self._probes()
        results: dict[str, ReadinessCheck] = {}
        lock = threading.Lock()

        def run(probe: _Probe) -> None:
            try:
                outcome = probe.run()
            except Exception as exc:  # a probe bug must not take the report down: reported, class only
                outcome = ReadinessCheck(probe.name, FAILED, f"The check itself failed ({type(exc).__name__}).",
                                         "Look for this check's error in the function's logs.")
            with lock:
                results[probe.name] = outcome

        threads = [threading.Thread(target=run, args=(p,), name=f"readiness-{p.name}", daemon=True) for p in probes]
        deadline = time.monotonic() + self.timeout_seconds
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        checks = []
        with lock:
            for p in probes:
                checks.append(results.get(p.name) or ReadinessCheck(
                    p.name, FAILED, f"No answer within {self.timeout_seconds:g} s.", p.on_timeout))
        report = ReadinessReport(iso(self._clock()), self.timeout_seconds, tuple(checks))
        if actor is not None and self._audit is not None:
            audit = self._audit
            failed = [c.name for c in checks if c.status == FAILED]
            self._bounded(lambda: audit.write("readiness.read", actor=actor, ready=report.ready, failed=failed))
        return report

    def _bounded(self, action: Callable[[], object], *, reraise: tuple[type[Exception], ...] = ()) -> None:
        caught: list[Exception] = []

        def run() -> None:
            try:
                action()
            except Exception as exc:
                caught.append(exc)

        t = threading.Thread(target=run, name="readiness-bookkeeping", daemon=True)
        t.start()
        t.join(min(self.timeout_seconds, BOOKKEEPING_TIMEOUT_SECONDS))
        if caught and isinstance(caught[0], reraise):
            raise caught[0]
        if caught or t.is_alive():
            log.warning("readiness bookkeeping skipped (%s)", type(caught[0]).__name__ if caught else "timeout")

    def _probes(self) -> list[_Probe]:
        s = self._settings
        storage_step = self._storage_unreachable_step()
        bus_step = self._bus_unreachable_step()
        probes = [
            _Probe("face", self._check_face, self._face_unreachable_step()),
            _Probe("storage.tables", self._check_tables, storage_step),
            _Probe("storage.container.uploads", lambda: self._check_container("storage.container.uploads",
                                                                               s.uploads_container), storage_step),
            _Probe("storage.container.keptPhotos", lambda: self._check_container("storage.container.keptPhotos",
                                                                                  s.kept_photos_container), storage_step),
        ]
        for name, queue in (("serviceBus.revocations", s.revocations_queue),
                            ("serviceBus.modelUpdates", s.model_updates_queue),
                            ("serviceBus.reenrollWork", s.reenroll_work_queue)):
            probes.append(_Probe(name, partial(self._check_queue, name, queue), bus_step))
        probes.append(_Probe("serviceBus.hrEvents", self._check_subscription, bus_step))
        probes.append(_Probe("eventGrid.blobCreated", self._check_event_grid, storage_step))
        probes.append(_Probe("authentication", self._check_authentication, ""))
        return probes

    # --- Face --------------------------------------------------------------------------------------
    def _face_unreachable_step(self) -> str:
        if self._settings.hosted_in_azure:
            return ("Check FACE_ENDPOINT (the Face account's custom subdomain, "
                    "https://<name>.cognitiveservices.azure.com) and the account's network rules, then try again.")
        return "Start the Face emulator (make up) or point FACE_ENDPOINT at it, then try again."

    def _check_face(self) -> ReadinessCheck:
        name = "face"
        try:
            self._face.list_groups(top=1)
        except LimitedAccessNotApproved:
            return ReadinessCheck(
                name, FAILED,
                "Limited Access not yet approved for this subscription: Face answers 403 UnsupportedFeature to "
                "LargePersonGroup, identify and verify calls. Uploads end with the reason serviceNotApproved "
                "and nothing is kept.",
                f"Apply for Limited Access at {LIMITED_ACCESS_FORM} with the id of the subscription that holds "
                "the Face account, and wait for Microsoft's approval e-mail; nothing in Azure can turn it on. "
                "Then run readiness again.")
        except FaceAuthError as exc:
            return ReadinessCheck(
                name, FAILED, f"Face refused the app's credential (HTTP {exc.status or '?'} {exc.code}).",
                "Give the app's managed identity the Cognitive Services User role on the Face account "
                "(infra/app/rbac.bicep; a new assignment takes a few minutes) and check FACE_ENDPOINT is the "
                "account's custom subdomain: Entra tokens are refused on regional endpoints.")
        except FaceTransientError as exc:
            return ReadinessCheck(name, FAILED, f"Face did not answer ({exc.code or 'no response'}).",
                                  self._face_unreachable_step())
        except FaceError as exc:
            return ReadinessCheck(name, FAILED, f"Face answered with an error ({exc.status or '?'} {exc.code}).",
                                  "Check FACE_ENDPOINT and FACE_API_VERSION against the Face account.")
        return ReadinessCheck(name, OK, "Face answered a LargePersonGroup list call: Limited Access is approved.")

    # --- storage -----------------------------------------------------------------------------------
    def _storage_unreachable_step(self) -> str:
        if self._settings.hosted_in_azure:
            return ("Check the PhotoStorage__*ServiceUri app settings and the photo storage account's network "
                    "rules, then try again.")
        return "Start Azurite (make up) or fix the PhotoStorage connection string, then try again."

    def _storage_failure(self, name: str, exc: ProbeFailed) -> ReadinessCheck:
        if isinstance(exc, ProbeDenied):
            return ReadinessCheck(name, FAILED, str(exc),
                                  "Give the app's managed identity Storage Table Data Contributor and Storage Blob "
                                  "Data Contributor on the photo storage account (infra/app/rbac.bicep; a new "
                                  "assignment takes a few minutes).")
        return ReadinessCheck(name, FAILED, str(exc), self._storage_unreachable_step())

    def _check_tables(self) -> ReadinessCheck:
        name = "storage.tables"
        try:
            created = self._storage.ensure_tables(ALL_TABLES)
        except ProbeFailed as exc:
            return self._storage_failure(name, exc)
        detail = f"All {len(ALL_TABLES)} tables (prefix {self._settings.table_prefix!r}) exist"
        if created:
            detail += f"; created now, as the app does on first use: {', '.join(created)}"
        return ReadinessCheck(name, OK, detail + ".")

    def _check_container(self, name: str, container: str) -> ReadinessCheck:
        try:
            created = self._storage.ensure_container(container)
        except ProbeFailed as exc:
            return self._storage_failure(name, exc)
        return ReadinessCheck(name, OK, f"Container {container!r} exists" + (" (created now)." if created else "."))

    # --- Service Bus ---------------------------------------------------------------------------------
    def _bus_unreachable_step(self) -> str:
        if self._settings.uses_storage_queue_bus:
            return "Start Azurite and the Service Bus stand-in (make up), then try again."
        return ("Check ServiceBusConnection__fullyQualifiedNamespace and the namespace's network rules, "
                "then try again.")

    def _bus_failure(self, name: str, exc: ProbeFailed, entity: str) -> ReadinessCheck:
        if isinstance(exc, ProbeNotFound):
            step = ("Apply the stand-in topology (make up does; see local/bus/topology.json)."
                    if self._settings.uses_storage_queue_bus else
                    f"Create {entity} by deploying infra/app/servicebus.bicep (azd provision); its name comes "
                    "from the app settings (REVOCATIONS_QUEUE, MODEL_UPDATES_QUEUE, REENROLL_WORK_QUEUE, "
                    "HR_EVENTS_TOPIC, HR_EVENTS_SUBSCRIPTION).")
            return ReadinessCheck(name, FAILED, str(exc), step)
        if isinstance(exc, ProbeDenied):
            return ReadinessCheck(name, FAILED, str(exc),
                                  f"Give the app's managed identity Azure Service Bus Data Receiver on {entity} "
                                  "(infra/app/rbac.bicep; a new assignment takes a few minutes).")
        return ReadinessCheck(name, FAILED, str(exc), self._bus_unreachable_step())

    def _bus_kind(self) -> str:
        return "stand-in queue" if self._settings.uses_storage_queue_bus else "Service Bus"

    def _check_queue(self, name: str, queue: str) -> ReadinessCheck:
        try:
            self._bus.check_queue(queue)
        except ProbeFailed as exc:
            return self._bus_failure(name, exc, f"the {queue} queue")
        return ReadinessCheck(name, OK, f"Queue {queue!r} exists and the app may receive from it ({self._bus_kind()}).")

    def _check_subscription(self) -> ReadinessCheck:
        name, topic, sub = "serviceBus.hrEvents", self._settings.hr_events_topic, self._settings.hr_events_subscription
        try:
            self._bus.check_subscription(topic, sub)
        except ProbeFailed as exc:
            return self._bus_failure(name, exc, f"the {sub} subscription of the {topic} topic")
        return ReadinessCheck(name, OK, f"Subscription {topic}/{sub} exists and the app may receive from it "
                                        f"({self._bus_kind()}).")

    # --- Event Grid --------------------------------------------------------------------------------
    def _check_event_grid(self) -> ReadinessCheck:
        name = "eventGrid.blobCreated"
        try:
            beat = self._heartbeats.get(rk=BLOB_CREATED_HEARTBEAT)
        except Exception as exc:  # the storage checks say why; this one only cannot tell
            return ReadinessCheck(name, FAILED, f"Could not read when the last event arrived ({type(exc).__name__}).",
                                  "Fix the storage checks first, then run readiness again.")
        at = parse_iso(beat.at) if beat else None
        if at is None:
            return ReadinessCheck(
                name, WARNING, "No BlobCreated event has reached the enroll function yet.",
                "Upload a test photo (POST /api/enrollment/uploads, then PUT it). If it stays 'processing', check "
                "the Event Grid subscription on the photo storage account (infra/app/eventgrid.bicep): its "
                "endpoint must be the enroll function's blobs_extension webhook, which has to pass the "
                "validation handshake, and failed deliveries land in the dead-letter container.")
        age = self._clock() - at
        minutes = max(0, int(age.total_seconds() // 60))
        return ReadinessCheck(name, OK, f"Last BlobCreated event received at {iso(at)} ({minutes} min ago).")

    # --- authentication ------------------------------------------------------------------------------
    def _check_authentication(self) -> ReadinessCheck:
        name, s = "authentication", self._settings
        if s.principal_source == "local":
            if s.hosted_in_azure:
                return ReadinessCheck(
                    name, FAILED,
                    "PRINCIPAL_SOURCE=local in Azure: the X-MS-CLIENT-PRINCIPAL header is trusted whoever sends it.",
                    "Remove the PRINCIPAL_SOURCE app setting (infra/ never sets it) and turn App Service "
                    "Authentication on (docs/deployment.md).")
            return ReadinessCheck(name, OK, "Local stack: the principal header is trusted (PRINCIPAL_SOURCE=local). "
                                            "In Azure, App Service Authentication must be on instead.")
        if s.website_auth_enabled:
            return ReadinessCheck(name, OK, "App Service Authentication is on (WEBSITE_AUTH_ENABLED=True): only its "
                                            "principal header is trusted.")
        return ReadinessCheck(
            name, FAILED,
            "App Service Authentication is off (WEBSITE_AUTH_ENABLED is not True): every route but /api/health "
            "answers 503.",
            "Deploy infra/ (it configures authsettingsV2 with the Entra app registration) or turn on "
            "Authentication for the function app; see docs/deployment.md.")
