"""The HTTP API the front ends call (docs/openapi.json). Identity comes only from App Service
Authentication's X-MS-CLIENT-PRINCIPAL header; each route parses, calls one service, maps the reply."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import azure.functions as func

from shared.http_api import Reply

if TYPE_CHECKING:  # imported for types only: services are built on first use (cold start)
    from shared.bootstrap import Services
    from shared.domain.principal import Principal

bp = func.Blueprint()
ANON = func.AuthLevel.ANONYMOUS  # App Service Authentication guards the app; the principal header is the identity


def _respond(make: Callable[[], Reply]) -> func.HttpResponse:
    from shared.http_api import handle

    reply = handle(make)
    return func.HttpResponse(reply.json_bytes(), status_code=reply.status, headers=reply.headers,
                             mimetype="application/json")


def _ctx(req: func.HttpRequest, *, mfa: bool = False) -> tuple[Services, Principal]:
    from shared.bootstrap import services
    from shared.http_api import principal_from

    s = services()
    return s, principal_from(req.headers, s.settings, mfa=mfa)


@bp.route(route="health", methods=["GET"], auth_level=ANON)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse('{"status": "ok"}', mimetype="application/json")


@bp.route(route="consent/terms", methods=["GET"], auth_level=ANON)
def consent_terms(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        s, _ = _ctx(req)
        return Reply(200, s.consent.terms().public())
    return _respond(run)


@bp.route(route="consent", methods=["POST"], auth_level=ANON)
def consent(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.http_api import grant_consent, json_body

        s, p = _ctx(req, mfa=True)
        client = req.headers.get("x-client-id") or req.headers.get("user-agent") or "unknown"
        return Reply(201, s.consent.grant(grant_consent(p, json_body(req.get_body()), client=client)).as_json())
    return _respond(run)


@bp.route(route="enrollment/uploads", methods=["POST"], auth_level=ANON)
def create_uploads(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.http_api import create_uploads, json_body

        s, p = _ctx(req, mfa=True)
        return Reply(201, s.enrollment.create_uploads(create_uploads(p, json_body(req.get_body()))).as_json())
    return _respond(run)


@bp.route(route="enrollment", methods=["GET"], auth_level=ANON)
def enrollment_status(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        s, p = _ctx(req)
        return Reply(200, s.enrollment.status(p.user_key).as_json())
    return _respond(run)


@bp.route(route="enrollment", methods=["DELETE"], auth_level=ANON)
def revoke_own(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.commands import RequestRevocation

        s, p = _ctx(req)
        return Reply(202, s.revocation.request(RequestRevocation(p, p.user_key, "withdrawn by the user")).as_json())
    return _respond(run)


@bp.route(route="admin/users/{userKey}/quality-override", methods=["POST"], auth_level=ANON)
def quality_override(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.http_api import grant_override, json_body

        s, p = _ctx(req)
        command = grant_override(p, req.route_params["userKey"], json_body(req.get_body()))
        return Reply(201, s.enrollment.grant_override(command).as_json())
    return _respond(run)


@bp.route(route="admin/users/{userKey}/revoke", methods=["POST"], auth_level=ANON)
def admin_revoke(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.commands import RequestRevocation
        from shared.http_api import require_admin

        s, p = _ctx(req)
        require_admin(p, "revoke another user's enrollment")
        command = RequestRevocation(p, req.route_params["userKey"], "revoked by an administrator")
        return Reply(202, s.revocation.request(command).as_json())
    return _respond(run)


@bp.route(route="admin/receipts/{receiptId}", methods=["GET"], auth_level=ANON)
def receipt(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.commands import ReadReceipt

        s, p = _ctx(req)
        return Reply(200, s.revocation.receipt(ReadReceipt(p, req.route_params["receiptId"])).as_json())
    return _respond(run)


@bp.route(route="admin/users/{userKey}/footprint", methods=["GET"], auth_level=ANON)
def footprint(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.http_api import read_footprint

        s, p = _ctx(req, mfa=True)
        return Reply(200, s.footprint.view(read_footprint(p, req.route_params["userKey"])).as_json())
    return _respond(run)


@bp.route(route="admin/purge", methods=["POST"], auth_level=ANON)
def purge_now(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.http_api import json_body, run_purge

        s, p = _ctx(req)
        return Reply(200, s.purge.run(run_purge(p, json_body(req.get_body()))).as_json())
    return _respond(run)


@bp.route(route="admin/reenrollments", methods=["POST"], auth_level=ANON)
def start_reenrollment(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.http_api import json_body, start_reenrollment

        s, p = _ctx(req)
        return Reply(202, s.reenrollment.start(start_reenrollment(p, json_body(req.get_body()))).as_json())
    return _respond(run)


@bp.route(route="admin/reenrollments/{runId}", methods=["GET"], auth_level=ANON)
def reenrollment_progress(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.http_api import require_admin

        s, p = _ctx(req)
        require_admin(p, "read re-enrollment progress")
        return Reply(200, s.reenrollment.progress(req.route_params["runId"]).as_json())
    return _respond(run)


@bp.route(route="admin/reenrollments/{runId}/resume", methods=["POST"], auth_level=ANON)
def resume_reenrollment(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.commands import ResumeReenrollment
        from shared.http_api import require_admin

        s, p = _ctx(req)
        require_admin(p, "resume a re-enrollment")
        return Reply(202, s.reenrollment.resume(ResumeReenrollment(p, req.route_params["runId"])).as_json())
    return _respond(run)
