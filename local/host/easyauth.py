"""A local stand-in for App Service Authentication (Easy Auth), only with ``PRINCIPAL_SOURCE=local``.

In Azure, App Service signs the user in with Entra ID, keeps the session in a cookie and adds the
``X-MS-CLIENT-PRINCIPAL`` header to every request of a signed-in user. Locally there is no App
Service, so the local host offers the same endpoints with test users instead of Entra ID:

* ``GET /.auth/login/aad[?post_login_redirect_uri=/path]``: a sign-in page that picks a test user,
  with or without multi-factor authentication; its form POSTs back and sets the session cookie;
* ``GET /.auth/me``: the signed-in user's claims as App Service returns them, or 401;
* ``GET /.auth/logout[?post_logout_redirect_uri=/path]``: ends the session, then redirects;
* requests with the session cookie get the ``X-MS-CLIENT-PRINCIPAL`` header Easy Auth would add.

Sessions live in memory only: restarting the host signs everyone out.
Reference: https://learn.microsoft.com/azure/app-service/configure-authentication-user-identities
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from shared.domain.principal import encode_principal

__all__ = ["COOKIE", "TEST_USERS", "EasyAuthStandIn", "TestUser", "enabled_for"]

COOKIE = "AppServiceAuthSession"
LOCAL_TENANT_ID = "00000000-0000-4000-8000-00000000face"
SESSION_SECONDS = 8 * 3600
PRINCIPAL_HEADERS = ("x-ms-client-principal", "x-ms-client-principal-id", "x-ms-client-principal-name",
                     "x-ms-client-principal-idp")
_NAMESPACE = uuid.UUID("6f1c7a52-2b0e-4c1e-9a57-6a0f0d5e0c11")


@dataclass(frozen=True)
class TestUser:
    key: str
    name: str
    employee_id: str
    roles: tuple[str, ...] = ()

    @property
    def oid(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"local-test-user:{self.key}"))


TEST_USERS: tuple[TestUser, ...] = (
    TestUser("ada", "Ada Lovelace", "E1001"),
    TestUser("grace", "Grace Hopper", "E1002"),
    TestUser("alan", "Alan Turing", "E1003"),
    TestUser("katherine", "Katherine Johnson (administrator)", "E1004", ("FaceEnrollment.Admin",)),
    TestUser("margaret", "Margaret Hamilton", "E1005"),
)


@dataclass(frozen=True)
class Session:
    user: TestUser
    mfa: bool
    expires: float

    def claims(self) -> list[tuple[str, str]]:
        claims = [("oid", self.user.oid), ("tid", LOCAL_TENANT_ID), ("name", self.user.name),
                  ("employeeid", self.user.employee_id), ("amr", "pwd")]
        if self.mfa:
            claims.append(("amr", "mfa"))
        claims += [("roles", r) for r in self.user.roles]
        return claims


def enabled_for(env: Mapping[str, str]) -> bool:
    """The stand-in exists only where the principal header is trusted as is: the local stack."""
    return (env.get("PRINCIPAL_SOURCE") or "").strip().lower() == "local"


def _local_path(value: str | None, default: str) -> str:
    """A redirect target on this origin only (an open redirect would hand the session page to anyone)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or any(
            ord(c) < 0x20 for c in value):
        return default
    return value


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]


def _page(title: str, body: str) -> bytes:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body{{font:1.125rem/1.5 system-ui,sans-serif;margin:0;padding:1rem;color:#1a1a1a;background:#fff}}
main{{max-width:36rem;margin:0 auto}} fieldset{{border:1px solid #595959;margin:0 0 1rem;padding:.5rem 1rem}}
label{{display:block;padding:.35rem 0}} input{{width:1.25rem;height:1.25rem;vertical-align:middle}}
button{{font:inherit;padding:.6rem 1.4rem;background:#0b5394;color:#fff;border:2px solid #0b5394;border-radius:.3rem}}
:focus-visible{{outline:3px solid #b5400b;outline-offset:3px}}
.note{{background:#fff4ce;border-left:4px solid #8a6d00;padding:.5rem 1rem}}
</style></head><body><main>{body}</main></body></html>""".encode()


class EasyAuthStandIn:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._clock = clock

    # --- sessions -------------------------------------------------------------------------------
    def _session(self, cookie_header: str | None) -> tuple[str, Session] | None:
        if not cookie_header:
            return None
        try:
            jar = SimpleCookie(cookie_header)
        except CookieError:
            return None
        morsel = jar.get(COOKIE)
        if morsel is None:
            return None
        with self._lock:
            found = self._sessions.get(morsel.value)
            if found is None:
                return None
            if found.expires < self._clock():
                del self._sessions[morsel.value]
                return None
            return morsel.value, found

    def sign_in(self, user_key: str, *, mfa: bool) -> str:
        user = next(u for u in TEST_USERS if u.key == user_key)
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = Session(user, mfa, self._clock() + SESSION_SECONDS)
        return token

    def request_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The headers the app sees: with a session, Easy Auth's principal headers replace any the
        client sent. Without one the request passes as it came (PRINCIPAL_SOURCE=local trusts the
        header, which is how the API tests and the demo call the app)."""
        out = dict(headers)
        found = self._session(next((v for k, v in headers.items() if k.lower() == "cookie"), None))
        if found is None:
            return out
        session = found[1]
        out = {k: v for k, v in out.items() if k.lower() not in PRINCIPAL_HEADERS}
        out["X-MS-CLIENT-PRINCIPAL"] = encode_principal(session.claims())
        out["X-MS-CLIENT-PRINCIPAL-ID"] = session.user.oid
        out["X-MS-CLIENT-PRINCIPAL-NAME"] = session.user.name
        out["X-MS-CLIENT-PRINCIPAL-IDP"] = "aad"
        return out

    # --- endpoints ------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> Answer | None:
        """Answers a ``/.auth/...`` request, or None when the path is not one of the stand-in's."""
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        cookie = next((v for k, v in headers.items() if k.lower() == "cookie"), None)
        path = path.rstrip("/") or "/"
        if path == "/.auth/login/aad" and method in ("GET", "HEAD"):
            return self._login_page(_local_path(params.get("post_login_redirect_uri"), "/"))
        if path == "/.auth/login/aad" and method == "POST":
            return self._login(body)
        if path == "/.auth/me" and method in ("GET", "HEAD"):
            return self._me(cookie)
        if path == "/.auth/logout" and method in ("GET", "HEAD", "POST"):
            return self._logout(cookie, _local_path(params.get("post_logout_redirect_uri"), "/.auth/logout/complete"))
        if path == "/.auth/logout/complete" and method in ("GET", "HEAD"):
            return Answer(200, _page("Signed out", "<h1>You are signed out</h1>"), self._html_headers())
        if path.startswith("/.auth/"):
            return Answer(404, b'{"error": "not a local Easy Auth endpoint"}', {"Content-Type": "application/json"})
        return None

    @staticmethod
    def _html_headers() -> dict[str, str]:
        return {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                           "frame-ancestors 'none'; base-uri 'none'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

    def _login_page(self, redirect: str) -> Answer:
        users = "\n".join(
            f'<label><input type="radio" name="user" value="{html.escape(u.key)}"{" checked" if i == 0 else ""}> '
            f"{html.escape(u.name)}</label>" for i, u in enumerate(TEST_USERS))
        body = f"""<h1>Local sign-in</h1>
<p class="note">This page stands in for Microsoft Entra ID sign-in on the local stack only. It does not exist in Azure.</p>
<form method="post" action="/.auth/login/aad">
<input type="hidden" name="post_login_redirect_uri" value="{html.escape(redirect)}">
<fieldset><legend>Test user</legend>
{users}
</fieldset>
<fieldset><legend>How did you sign in?</legend>
<label><input type="radio" name="mfa" value="yes" checked> Password and multi-factor authentication</label>
<label><input type="radio" name="mfa" value="no"> Password only (no multi-factor authentication)</label>
</fieldset>
<button type="submit">Sign in</button>
</form>"""
        return Answer(200, _page("Local sign-in", body), self._html_headers())

    def _login(self, body: bytes) -> Answer:
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        if form.get("user") not in {u.key for u in TEST_USERS}:
            return Answer(400, _page("Sign-in failed", "<h1>Pick a test user</h1>"), self._html_headers())
        token = self.sign_in(form["user"], mfa=form.get("mfa", "yes") == "yes")
        redirect = _local_path(form.get("post_login_redirect_uri"), "/")
        cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_SECONDS}"
        return Answer(302, b"", {"Location": redirect, "Set-Cookie": cookie, "Cache-Control": "no-store"})

    def _me(self, cookie: str | None) -> Answer:
        found = self._session(cookie)
        if found is None:
            return Answer(401, b"", {"Cache-Control": "no-store"})
        session = found[1]
        doc = [{
            "provider_name": "aad",
            "user_id": session.user.name,
            "expires_on": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(session.expires)),
            "user_claims": [{"typ": t, "val": v} for t, v in session.claims()],
        }]
        return Answer(200, json.dumps(doc).encode(), {"Content-Type": "application/json", "Cache-Control": "no-store"})

    def _logout(self, cookie: str | None, redirect: str) -> Answer:
        found = self._session(cookie)
        if found is not None:
            with self._lock:
                self._sessions.pop(found[0], None)
        return Answer(302, b"", {"Location": redirect, "Cache-Control": "no-store",
                                 "Set-Cookie": f"{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"})
