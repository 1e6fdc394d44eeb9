"""ReadinessService on the fakes: each check's statuses and next steps, the time bound, and what the report
must never hold (keys, connection strings, personIds)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from shared import errors
from shared.adapters.repositories import ALL_TABLES
from shared.services.readiness import LIMITED_ACCESS_FORM, ReadinessService
from shared.settings import AZURITE_KEY, Settings
from tests.fakes import FakeBusProbe, FakeStorageProbe, photo
from tests.service.support import Stack, make_stack, new_user

ENTITIES = {"revocations", "model-updates", "reenroll-work", "hr-events/face-enrollment"}


def readiness(stack: Stack, *, timeout: float = 2.0, **env: str) -> tuple[ReadinessService, FakeStorageProbe,
                                                                            FakeBusProbe]:
    settings = Settings.from_env({"TABLE_PREFIX": "svc", "PRINCIPAL_SOURCE": "local", **env})
    storage, bus = FakeStorageProbe(), FakeBusProbe(set(ENTITIES))
    service = ReadinessService(settings=settings, face=stack.face, storage=storage, bus=bus,
                               heartbeats=stack.services.repos.heartbeats, audit=stack.services.audit,
                               clock=stack.clock, timeout_seconds=timeout)
    return service, storage, bus


def by_name(report: Any) -> dict[str, Any]:
    return {c["name"]: c for c in report.as_json()["checks"]}


def enrolled_stack() -> Stack:
    stack = make_stack()
    assert stack.enroll(new_user(), 17) == "accepted"  # a BlobCreated event reached the pipeline
    return stack


def test_a_healthy_deployment_is_ready_with_every_check_ok() -> None:
    service, storage, _ = readiness(enrolled_stack())
    report = service.check()
    checks = by_name(report)
    assert report.ready and report.as_json()["ready"] is True
    assert set(checks) == {"face", "storage.tables", "storage.container.uploads", "storage.container.keptPhotos",
                           "serviceBus.revocations", "serviceBus.modelUpdates", "serviceBus.reenrollWork",
                           "serviceBus.hrEvents", "eventGrid.blobCreated", "authentication"}
    assert {c["status"] for c in checks.values()} == {"ok"}, checks
    assert all(set(c) == {"name", "status", "detail", "nextStep"} for c in checks.values())
    assert storage.tables == set(ALL_TABLES)  # a missing table is created, as the app would on first use
    assert "created now" in checks["storage.tables"]["detail"]
    assert "created now" not in by_name(service.check())["storage.tables"]["detail"]


def test_limited_access_not_approved_names_the_form() -> None:
    stack = enrolled_stack()
    stack.face.limited_access_approved = False
    service, _, _ = readiness(stack)
    report = service.check()
    face = by_name(report)["face"]
    assert not report.ready
    assert face["status"] == "failed"
    assert "Limited Access not yet approved for this subscription" in face["detail"]
    assert LIMITED_ACCESS_FORM in face["nextStep"] and LIMITED_ACCESS_FORM == "https://aka.ms/facerecognition"
    assert {c["status"] for n, c in by_name(report).items() if n != "face"} == {"ok"}


@pytest.mark.parametrize(("error", "expected"), [
    (errors.FaceAuthError("Face 401", code="401", status=401), "Cognitive Services User"),
    (errors.FaceTransientError("timeout", code="ConnectTimeout", status=0), "emulator"),
    (errors.FaceError("odd", code="InvalidResponse", status=200), "FACE_API_VERSION"),
])
def test_other_face_failures_have_their_own_next_step(error: errors.FaceError, expected: str) -> None:
    stack = enrolled_stack()
    service, _, _ = readiness(stack)

    def refuse(**_: Any) -> Any:
        raise error

    stack.face.list_groups = refuse  # type: ignore[method-assign]
    face = by_name(service.check())["face"]
    assert face["status"] == "failed" and expected in face["nextStep"]


def test_face_next_step_in_azure_names_the_custom_subdomain() -> None:
    stack = enrolled_stack()
    service, _, _ = readiness(stack, WEBSITE_SITE_NAME="func-x", PRINCIPAL_SOURCE="appservice",
                              WEBSITE_AUTH_ENABLED="True")

    def refuse(**_: Any) -> Any:
        raise errors.FaceTransientError("timeout", code="ConnectTimeout")

    stack.face.list_groups = refuse  # type: ignore[method-assign]
    assert "custom subdomain" in by_name(service.check())["face"]["nextStep"]


@pytest.mark.parametrize(("error", "expected"), [
    (errors.ProbeUnreachable("Table storage: no answer (ServiceRequestError)"), "Start Azurite"),
    (errors.ProbeDenied("Table storage: the app's identity was refused (HTTP 403)"), "Storage Table Data Contributor"),
])
def test_storage_failures_fail_tables_and_containers_with_their_next_step(error: Exception, expected: str) -> None:
    service, storage, _ = readiness(enrolled_stack())
    storage.fail = error
    report = service.check()
    checks = by_name(report)
    assert not report.ready
    for name in ("storage.tables", "storage.container.uploads", "storage.container.keptPhotos"):
        assert checks[name]["status"] == "failed" and expected in checks[name]["nextStep"], checks[name]


def test_a_hung_dependency_is_failed_within_the_time_bound() -> None:
    service, storage, _ = readiness(enrolled_stack(), timeout=0.5)
    storage.hang = 5.0
    started = time.monotonic()
    report = service.check()
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, elapsed  # the bound, not the dependency, decides
    tables = by_name(report)["storage.tables"]
    assert tables["status"] == "failed" and "No answer within 0.5 s" in tables["detail"]
    assert "Start Azurite" in tables["nextStep"]
    assert by_name(report)["face"]["status"] == "ok"  # the others still answered


def test_service_bus_missing_denied_and_unreachable() -> None:
    service, _, bus = readiness(enrolled_stack(), MESSAGING_TRANSPORT="servicebus", WEBSITE_SITE_NAME="func-x",
                                PRINCIPAL_SOURCE="appservice", WEBSITE_AUTH_ENABLED="True")
    bus.entities.discard("reenroll-work")
    checks = by_name(service.check())
    assert checks["serviceBus.reenrollWork"]["status"] == "failed"
    assert "infra/app/servicebus.bicep" in checks["serviceBus.reenrollWork"]["nextStep"]
    assert checks["serviceBus.revocations"]["status"] == "ok"
    bus.fail = errors.ProbeDenied("subscription hr-events/face-enrollment: the app's identity was refused")
    checks = by_name(service.check())
    assert "Azure Service Bus Data Receiver on the face-enrollment subscription of the hr-events topic" \
        in checks["serviceBus.hrEvents"]["nextStep"]
    bus.fail = errors.ProbeUnreachable("queue revocations: no answer (ServiceBusConnectionError)")
    assert "fullyQualifiedNamespace" in by_name(service.check())["serviceBus.revocations"]["nextStep"]


def test_the_local_stand_in_points_at_the_topology() -> None:
    service, _, bus = readiness(enrolled_stack(), MESSAGING_TRANSPORT="storage-queues")
    bus.entities.clear()
    checks = by_name(service.check())
    assert {checks[n]["status"] for n in checks if n.startswith("serviceBus.")} == {"failed"}
    assert "topology" in checks["serviceBus.hrEvents"]["nextStep"]


def test_event_grid_warns_until_the_first_blob_event_then_reports_its_time() -> None:
    stack = make_stack()
    service, _, _ = readiness(stack)
    report = service.check()
    grid = by_name(report)["eventGrid.blobCreated"]
    assert grid["status"] == "warning" and "No BlobCreated event" in grid["detail"]
    assert "infra/app/eventgrid.bicep" in grid["nextStep"]
    assert report.ready  # a warning does not make the deployment unready
    user = new_user()
    stack.consent(user)
    (name,) = stack.slots(user)
    stack.put(name, photo(17))
    stack.blob_created(name)
    stack.clock.advance(minutes=12)
    grid = by_name(service.check())["eventGrid.blobCreated"]
    assert grid["status"] == "ok" and "(12 min ago)" in grid["detail"] and grid["nextStep"] is None


@pytest.mark.parametrize(("env", "status", "expected"), [
    ({"PRINCIPAL_SOURCE": "appservice", "WEBSITE_AUTH_ENABLED": "True", "WEBSITE_SITE_NAME": "f"}, "ok", None),
    ({"PRINCIPAL_SOURCE": "appservice", "WEBSITE_SITE_NAME": "f"}, "failed", "authsettingsV2"),
    ({"PRINCIPAL_SOURCE": "local", "WEBSITE_SITE_NAME": "f"}, "failed", "Remove the PRINCIPAL_SOURCE"),
    ({"PRINCIPAL_SOURCE": "local"}, "ok", None),
])
def test_authentication(env: dict[str, str], status: str, expected: str | None) -> None:
    service, _, _ = readiness(enrolled_stack(), **env)
    auth = by_name(service.check())["authentication"]
    assert auth["status"] == status
    assert (auth["nextStep"] is None) if expected is None else (expected in auth["nextStep"])


def test_the_report_holds_no_secret_and_no_person_id() -> None:
    stack = enrolled_stack()
    conn = f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
    service, storage, bus = readiness(stack, PhotoStorage=conn, FACE_KEY="face-secret-key",
                                      AUDIT_HASH_KEY="audit-secret")
    text = json.dumps(service.check().as_json())
    storage.fail = errors.ProbeUnreachable("Table storage: no answer (ServiceRequestError)")
    bus.fail = errors.ProbeDenied("queue revocations: the app's identity was refused (HTTP 401)")
    stack.face.limited_access_approved = False
    text += json.dumps(service.check().as_json())
    for secret in (AZURITE_KEY, "AccountKey", "face-secret-key", "audit-secret"):
        assert secret not in text
    for _, person_id, _ in stack.persons():
        assert person_id not in text


def test_an_admin_read_is_audited_and_the_quota_is_charged_first() -> None:
    stack = enrolled_stack()
    service, _, _ = readiness(stack)
    charged: list[str] = []
    report = service.check(actor="admin-1", charge=lambda: charged.append("charged"))
    assert charged == ["charged"]
    entries = [e for e in stack.services.audit.entries(stack.clock.now) if e.action == "readiness.read"]
    assert entries and entries[-1].details["ready"] is report.ready


def test_quota_exceeded_is_raised_but_a_failing_quota_store_is_not() -> None:
    service, _, _ = readiness(enrolled_stack())

    def over() -> None:
        raise errors.QuotaExceeded("slow down", retry_after=3)

    with pytest.raises(errors.QuotaExceeded):
        service.check(charge=over)

    def broken() -> None:
        raise errors.TransientFailure("storage down")

    assert service.check(charge=broken).checks  # the storage checks report it; the report still comes
