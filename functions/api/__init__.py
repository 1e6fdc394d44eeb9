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
    # Replies carry a person's data: no browser or proxy may keep them (a shared kiosk, Back after sign-out).
    headers = {"Cache-Control": "no-store", **reply.headers}
    return func.HttpResponse(reply.json_bytes(), status_code=reply.status, headers=headers,
                             mimetype="application/json")


def route_key(params: dict[str, str], name: str) -> str:
    from shared.http_api import route_key as checked

    return checked(params, name)


def _ctx(req: func.HttpRequest, *, mfa: bool = False, admin: str | None = None) -> tuple[Services, Principal]:
    """The services and the caller, authenticated (and, for ``admin=<action>``, authorised with MFA)
    before the route reads anything else from the request."""
    from shared.bootstrap import services, settings
    from shared.http_api import principal_from

    principal = principal_from(req.headers, settings(), mfa=mfa, admin=admin)
    s = services()
    s.quotas.charge_request(principal.user_key)  # per user, across instances: 429 + Retry-After beyond it
    return s, principal


@bp.route(route="health", methods=["GET"], auth_level=ANON)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse('{"status": "ok"}', mimetype="application/json")


@bp.route(route="consent/terms", methods=["GET"], auth_level=ANON)
def consent_terms(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        s, _ = _ctx(req)
        return Reply(200, s.consent.terms_view())
    return _respond(run)


@bp.route(route="privacy/policy", methods=["GET"], auth_level=ANON)
def privacy_policy(req: func.HttpRequest) -> func.HttpResponse:
    """The published retention policy, the same file purge_timer enforces. Signed in, no MFA (like the terms)."""
    def run() -> Reply:
        s, _ = _ctx(req)
        return Reply(200, s.consent.policy().public())
    return _respond(run)


@bp.route(route="consent", methods=["POST"], auth_level=ANON)
def consent(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.commands import DeclineConsent
        from shared.http_api import grant_consent, json_body

        s, p = _ctx(req, mfa=True)
        client = req.headers.get("x-client-id") or req.headers.get("user-agent") or "unknown"
        choice = grant_consent(p, json_body(req.get_body()), client=client)
        if isinstance(choice, DeclineConsent):
            return Reply(201, s.consent.decline(choice).as_json())
        return Reply(201, s.consent.grant(choice).as_json())
    return _respond(run)


@bp.route(route="me", methods=["GET"], auth_level=ANON)
def me(req: func.HttpRequest) -> func.HttpResponse:
    """Everything held about the caller (GDPR Art. 15), never a personId or a face template."""
    def run() -> Reply:
        s, p = _ctx(req, mfa=True)
        return Reply(200, s.access.mine(p.user_key))
    return _respond(run)


@bp.route(route="me/photos/{photoId}", methods=["GET"], auth_level=ANON)
def my_photo(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.commands import ReadOwn

        s, p = _ctx(req, mfa=True)
        return Reply(200, s.access.photo_link(ReadOwn(p, route_key(req.route_params, "photoId"))).as_json())
    return _respond(run)


@bp.route(route="me/receipts/{receiptId}", methods=["GET"], auth_level=ANON)
def my_receipt(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.commands import ReadOwn

        s, p = _ctx(req, mfa=True)
        return Reply(200, s.access.receipt(ReadOwn(p, route_key(req.route_params, "receiptId"))).as_json())
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

        s, p = _ctx(req, admin="grant a quality override")
        command = grant_override(p, route_key(req.route_params, "userKey"), json_body(req.get_body()))
        return Reply(201, s.enrollment.grant_override(command).as_json())
    return _respond(run)


@bp.route(route="admin/users/{userKey}/revoke", methods=["POST"], auth_level=ANON)
def admin_revoke(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.commands import RequestRevocation

        s, p = _ctx(req, admin="revoke another user's enrollment")
        command = RequestRevocation(p, route_key(req.route_params, "userKey"), "revoked by an administrator")
        return Reply(202, s.revocation.request(command).as_json())
    return _respond(run)


@bp.route(route="admin/receipts/{receiptId}", methods=["GET"], auth_level=ANON)
def receipt(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.commands import ReadReceipt

        s, p = _ctx(req, admin="read deletion receipts")
        return Reply(200, s.revocation.receipt(ReadReceipt(p, route_key(req.route_params, "receiptId"))).as_json())
    return _respond(run)


@bp.route(route="admin/users/{userKey}/footprint", methods=["GET"], auth_level=ANON)
def footprint(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.commands import ReadFootprint

        s, p = _ctx(req, admin="read a user's footprint")
        return Reply(200, s.footprint.view(ReadFootprint(p, route_key(req.route_params, "userKey"))).as_json())
    return _respond(run)


@bp.route(route="admin/users/{userKey}/export", methods=["GET"], auth_level=ANON)
def export_user(req: func.HttpRequest) -> func.HttpResponse:
    """The access bundle of a user as a JSON download (audited)."""
    def run() -> Reply:
        from shared.commands import ExportUser

        s, p = _ctx(req, admin="export a user's data")
        body = s.access.export(ExportUser(p, route_key(req.route_params, "userKey")))
        day = str(body["generatedAt"])[:10].replace("-", "")
        # The file name carries no user key: downloads folders and proxies log file names.
        return Reply(200, body, {"Content-Disposition": f'attachment; filename="face-enrollment-export-{day}.json"',
                                 "Cache-Control": "no-store"})
    return _respond(run)


@bp.route(route="admin/purge", methods=["POST"], auth_level=ANON)
def purge_now(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.http_api import json_body, run_purge

        s, _p = _ctx(req, admin="run the purge")
        return Reply(200, s.purge.run(run_purge(json_body(req.get_body()))).as_json())
    return _respond(run)


@bp.route(route="admin/readiness", methods=["GET"], auth_level=ANON)
def readiness(req: func.HttpRequest) -> func.HttpResponse:
    """Exercises every dependency and says what to do about each (200 with ready true/false; admin, MFA)."""
    def run() -> Reply:
        from shared.bootstrap import services, settings
        from shared.http_api import principal_from

        # Not _ctx: its quota charge writes to Table storage, which may be the very dependency that is down.
        # The service charges it within its time bound instead (a 429 still comes back as a 429).
        p = principal_from(req.headers, settings(), admin="read the readiness report")
        s = services()
        report = s.readiness.check(actor=p.user_key, charge=lambda: s.quotas.charge_request(p.user_key))
        return Reply(200, report.as_json())
    return _respond(run)


@bp.route(route="admin/ledger/verify", methods=["POST"], auth_level=ANON)
def verify_ledger(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        s, p = _ctx(req, admin="verify the consent ledger")
        return Reply(200, s.ledger.verify(actor=p.user_key).as_json())
    return _respond(run)


@bp.route(route="admin/reenrollments", methods=["POST"], auth_level=ANON)
def start_reenrollment(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.http_api import json_body, start_reenrollment

        s, p = _ctx(req, admin="start a re-enrollment")
        command = start_reenrollment(p, json_body(req.get_body()), supported=s.settings.recognition_models)
        return Reply(202, s.reenrollment.start(command).as_json())
    return _respond(run)


@bp.route(route="admin/reenrollments/{runId}", methods=["GET"], auth_level=ANON)
def reenrollment_progress(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        s, _p = _ctx(req, admin="read re-enrollment progress")
        return Reply(200, s.reenrollment.progress(route_key(req.route_params, "runId")).as_json())
    return _respond(run)


@bp.route(route="admin/reenrollments/{runId}/resume", methods=["POST"], auth_level=ANON)
def resume_reenrollment(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.commands import ResumeReenrollment

        s, p = _ctx(req, admin="resume a re-enrollment")
        return Reply(202, s.reenrollment.resume(ResumeReenrollment(p, route_key(req.route_params, "runId"))).as_json())
    return _respond(run)


@bp.route(route="admin/reenrollments/{runId}/cancel", methods=["POST"], auth_level=ANON)
def cancel_reenrollment(req: func.HttpRequest) -> func.HttpResponse:
    def run() -> Reply:
        from shared.commands import CancelReenrollment

        s, p = _ctx(req, admin="cancel a re-enrollment")
        return Reply(202, s.reenrollment.cancel(CancelReenrollment(p, route_key(req.route_params, "runId"))).as_json())
    return _respond(run)
