"""Every trigger called directly, as the Functions host calls it: the decorated function with a real
``func.HttpRequest``, ``func.ServiceBusMessage``, ``func.InputStream`` or ``func.TimerRequest``, on
the services built over the fakes (shared.bootstrap's process-wide instance is swapped for the test)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import azure.functions as func
import pytest
from azure.functions.blob import InputStream
from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest

import functions.api as api
import functions.enroll as enroll
import functions.purge_timer as purge_timer
import functions.reenroll as reenroll
import functions.revoke as revoke
from shared import bootstrap
from shared.errors import MessageRejected
from tests.fakes import photo
from tests.service.support import Stack, make_stack, new_user


def user_function(builder: Any) -> Callable[..., Any]:
    return builder.build().get_user_function()  # type: ignore[no-any-return]


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    stack = make_stack(PRINCIPAL_SOURCE="local", WEBSITE_AUTH_ENABLED="True")
    monkeypatch.setattr(bootstrap, "_services", stack.services)
    monkeypatch.setattr(bootstrap, "_settings", stack.services.settings)
    yield stack


def header(user: str, *, admin: bool = False, mfa: bool = True) -> dict[str, str]:
    claims = [{"typ": "oid", "val": user}]
    if mfa:
        claims.append({"typ": "amr", "val": "mfa"})
    if admin:
        claims.append({"typ": "roles", "val": "FaceEnrollment.Admin"})
    doc = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(doc).encode()).decode()}


def call(route: Any, method: str, url: str, *, user: str | None = None, admin: bool = False, body: Any = None,
         route_params: dict[str, str] | None = None) -> tuple[int, Any]:
    req = func.HttpRequest(method, f"http://localhost/api/{url}", headers=header(user, admin=admin) if user else {},
                           route_params=route_params or {},
                           body=b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode()))
    resp: func.HttpResponse = user_function(route)(req)
    text = resp.get_body()
    return resp.status_code, json.loads(text) if text else None


def test_http_routes_parse_call_one_service_and_map_errors(stack: Stack) -> None:
    user = new_user()
    assert call(api.health, "GET", "health") == (200, {"status": "ok"})
    status, terms = call(api.consent_terms, "GET", "consent/terms", user=user)
    assert status == 200
    assert call(api.consent, "POST", "consent", user=user, body=b"{not json")[0] == 400
    assert call(api.consent, "POST", "consent", user=user, body={"termsVersion": "0", "accepted": True,
                                                                  "storePhotos": True})[1]["error"]["code"] == "StaleTerms"
    assert call(api.create_uploads, "POST", "enrollment/uploads", user=user, body={"count": 1})[0] == 403
    ok = {"termsVersion": terms["termsVersion"], "accepted": True, "storePhotos": True}
    assert call(api.consent, "POST", "consent", user=user, body=ok)[0] == 201
    assert call(api.create_uploads, "POST", "enrollment/uploads", user=user, body={"count": 9})[0] == 400
    status, slots = call(api.create_uploads, "POST", "enrollment/uploads", user=user, body={"count": 1})
    assert status == 201 and len(slots["uploads"]) == 1
    assert call(api.enrollment_status, "GET", "enrollment", user=user)[1]["status"] == "pending"
    assert call(api.admin_revoke, "POST", f"admin/users/{user}/revoke", user="not-admin",
                route_params={"userKey": user})[0] == 403
    status, revoked = call(api.revoke_own, "DELETE", "enrollment", user=user)
    assert status == 202 and revoked["requestId"]
    assert call(api.receipt, "GET", "admin/receipts/x", user="admin", admin=True,
                route_params={"receiptId": "nope"})[0] == 404
    assert call(api.purge_now, "POST", "admin/purge", user="admin", admin=True)[1]["dryRun"] is True
    assert call(api.start_reenrollment, "POST", "admin/reenrollments", user="admin", admin=True,
                body={"recognitionModel": "resnet"})[0] == 400
    status, run = call(api.start_reenrollment, "POST", "admin/reenrollments", user="admin", admin=True,
                       body={"recognitionModel": "recognition_05"})
    assert status == 202
    assert call(api.reenrollment_progress, "GET", f"admin/reenrollments/{run['runId']}", user="admin", admin=True,
                route_params={"runId": run["runId"]})[1]["status"] == "fanningOut"
    assert call(api.resume_reenrollment, "POST", "admin/reenrollments/x/resume", user="admin", admin=True,
                route_params={"runId": run["runId"]})[0] == 202
    assert call(api.quality_override, "POST", f"admin/users/{user}/quality-override", user="admin", admin=True,
                route_params={"userKey": user}, body={"reason": "badge", "expiresInHours": 2})[0] == 201


def test_enroll_trigger_takes_the_blob_stream(stack: Stack) -> None:
    user = new_user()
    stack.consent(user)
    (name,) = stack.slots(user)
    data = photo(17)
    stack.put(name, data)
    user_function(enroll.enroll)(InputStream(data=data, name=f"uploads/{name}", length=len(data)))
    assert stack.status(user) == "enrolled"


def _message(body: bytes, message_id: str, delivery_count: int = 1) -> ServiceBusMessage:
    return ServiceBusMessage(body=body, message_id=message_id, delivery_count=delivery_count,
                                  application_properties={}, user_properties={})


def test_service_bus_triggers_complete_or_dead_letter(stack: Stack) -> None:
    user = new_user()
    stack.enroll(user, 17)
    request_id = stack.revoke(user)
    (sent,) = stack.publisher.due(stack.clock.now)
    user_function(revoke.revoke)(_message(sent.message.body, request_id))
    assert stack.status(user) == "revoked"
    with pytest.raises(MessageRejected):
        user_function(revoke.revoke)(_message(b'{"userKey": 5}', "bad"))
    with pytest.raises(MessageRejected):
        user_function(revoke.hr_events)(_message(b"{}", "bad-hr"))
    ignored = {"specversion": "1.0", "id": "e", "source": "/hr", "type": "hr.employee.hired",
               "data": {"employeeId": "E1", "effectiveDate": "2026-01-01"}}
    user_function(revoke.hr_events)(_message(json.dumps(ignored).encode(), "hired"))  # completes
    user_function(reenroll.reenroll_start)(_message(b'{"recognitionModel": "recognition_05"}', "start"))
    fanout = [s for s in stack.publisher.due(stack.clock.now) if s.destination == "model-updates"]
    user_function(reenroll.reenroll_start)(_message(fanout[0].message.body, fanout[0].message.message_id))
    with pytest.raises(MessageRejected):
        user_function(reenroll.reenroll_work)(_message(b'{"runId": "x"}', "w"))


def test_timer_trigger_runs_the_purge(stack: Stack) -> None:
    user_function(purge_timer.purge_timer)(TimerRequest(past_due=False))
    reports = [e for e in stack.services.audit.entries(stack.clock.now) if e.action == "purge.report"]
    assert reports and reports[0].actor == "purge:timer"
