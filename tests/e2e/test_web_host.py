"""The front end's server side through the local host: static files (types, CSP, caching, path
traversal), the local Easy Auth stand-in, and CORS on Azurite for the browser's SAS upload."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from local.host.easyauth import COOKIE, TEST_USERS
from local.storage_cors import allow_browser_uploads, app_origins
from tests.fixtures.app_stack import AppStack, app_env
from tests.fixtures.azurite import Azurite
from tests.fixtures.local_host import HostProcess, start_host

pytestmark = pytest.mark.e2e


def raw_get(base: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET with the path sent exactly as written (requests would normalise ``..`` away)."""
    split = urlsplit(base)
    conn = http.client.HTTPConnection(split.hostname, split.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def sign_in(base: str, user: str = "ada", *, mfa: bool = True) -> requests.Session:
    s = requests.Session()
    r = s.post(f"{base}/.auth/login/aad", data={"user": user, "mfa": "yes" if mfa else "no",
                                                "post_login_redirect_uri": "/api/web/"}, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == "/api/web/"
    return s


# --- static files ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "ctype"), [
    ("/api/web/", "text/html; charset=utf-8"),
    ("/api/web/index.html", "text/html; charset=utf-8"),
    ("/api/web/app.js", "text/javascript; charset=utf-8"),
    ("/api/web/styles.css", "text/css; charset=utf-8"),
    ("/api/web/i18n/en.json", "application/json; charset=utf-8"),
    ("/api/web/favicon.svg", "image/svg+xml"),
])
def test_web_files_are_served_with_their_types_and_a_strict_policy(app_stack: AppStack, path: str, ctype: str) -> None:
    status, headers, body = raw_get(app_stack.host.url, path)
    assert status == 200 and body
    assert headers["content-type"] == ctype
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    blob_port = app_stack.azurite.blob_port
    assert f"connect-src 'self' http://127.0.0.1:{blob_port}" in csp  # the SAS upload, and nothing else
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] in ("no-store", "no-cache")
    assert headers["permissions-policy"].startswith("camera=(self)")


def test_the_page_address_without_a_slash_redirects_and_the_root_leads_to_the_page(app_stack: AppStack) -> None:
    status, headers, _ = raw_get(app_stack.host.url, "/api/web")
    assert status == 301 and headers["location"] == "web/"
    status, headers, _ = raw_get(app_stack.host.url, "/")
    assert status == 302 and headers["location"] == "/api/web/"


@pytest.mark.parametrize("path", [
    "/api/web/../host.json",
    "/api/web/../../etc/passwd",
    "/api/web/i18n/../../host.json",
    "/api/web/..%2fhost.json",
    "/api/web/%2e%2e/host.json",
    "/api/web/..%5chost.json",
    "/api/web/..\\host.json",
    "/api/web//etc/passwd",
    "/api/web/./index.html",
    "/api/web/.gitignore",
    "/api/web/%00index.html",
    "/api/web/C:/Windows/win.ini",
    "/api/web/nope.html",
    "/api/web/i18n",
])
def test_path_traversal_and_unknown_files_are_refused(app_stack: AppStack, path: str) -> None:
    status, _, body = raw_get(app_stack.host.url, path)
    assert status == 404, (path, status, body[:200])
    assert b"localhost" not in body and b"root:" not in body and b"extensionBundle" not in body


def test_only_listed_file_types_are_served_even_inside_web(app_stack: AppStack) -> None:
    status, _, _ = raw_get(app_stack.host.url, "/api/web/i18n.js")
    assert status == 200
    status, _, _ = raw_get(app_stack.host.url, "/api/web/config.json")
    assert status == 200
    # a Python file reached through the web root's parent is refused however it is spelled
    for path in ("/api/web/../function_app.py", "/api/web/%2e%2e%2ffunction_app.py"):
        assert raw_get(app_stack.host.url, path)[0] == 404


def test_the_signed_out_page_clears_the_sites_cache_and_storage(app_stack: AppStack) -> None:
    status, headers, _ = raw_get(app_stack.host.url, "/api/web/signed-out.html")
    assert status == 200
    assert headers["clear-site-data"] == '"cache", "storage"'
    assert headers["cache-control"] == "no-store"


def test_api_replies_are_never_cached(app_stack: AppStack) -> None:
    r = app_stack.call("GET", "enrollment", user="u-cache")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert app_stack.call("GET", "enrollment").headers["Cache-Control"] == "no-store"  # 401 too


# --- the Easy Auth stand-in -----------------------------------------------------------------------

def test_sign_in_page_me_and_logout_behave_like_app_service(app_stack: AppStack) -> None:
    base = app_stack.host.url
    page = requests.get(f"{base}/.auth/login/aad?post_login_redirect_uri=/api/web/", timeout=10)
    assert page.status_code == 200 and "Local sign-in" in page.text
    assert all(u.name in page.text for u in TEST_USERS) and "multi-factor" in page.text
    assert requests.get(f"{base}/.auth/me", timeout=10).status_code == 401

    s = sign_in(base, "grace")
    cookie = next(c for c in s.cookies if c.name == COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly")
    me = s.get(f"{base}/.auth/me", timeout=10).json()
    claims = {(c["typ"], c["val"]) for c in me[0]["user_claims"]}
    grace = next(u for u in TEST_USERS if u.key == "grace")
    assert me[0]["provider_name"] == "aad"
    assert {("oid", grace.oid), ("amr", "pwd"), ("amr", "mfa"), ("employeeid", "E1002"), ("name", grace.name)} <= claims
    assert any(t == "tid" for t, _ in claims)

    r = s.get(f"{base}/.auth/logout?post_logout_redirect_uri=/api/web/signed-out.html", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/api/web/signed-out.html"
    assert s.get(f"{base}/.auth/me", timeout=10).status_code == 401
    assert s.get(f"{base}/api/enrollment", timeout=10).status_code == 401


def test_a_session_becomes_the_principal_header_and_replaces_a_forged_one(app_stack: AppStack) -> None:
    base = app_stack.host.url
    s = sign_in(base, "alan", mfa=False)
    forged = base64.b64encode(json.dumps({"claims": [{"typ": "oid", "val": "someone-else"},
                                                     {"typ": "amr", "val": "mfa"}]}).encode()).decode()
    terms = s.get(f"{base}/api/consent/terms", timeout=10).json()
    # No MFA in the session: consent is refused even though the forged header claims MFA.
    r = s.post(f"{base}/api/consent", headers={"X-MS-CLIENT-PRINCIPAL": forged}, timeout=10,
               json={"termsVersion": terms["termsVersion"], "accepted": True, "storePhotos": False})
    assert r.status_code == 403 and "multi-factor" in r.json()["error"]["message"]
    assert app_stack.call("GET", "enrollment", user="someone-else").json()["consent"] is None
    s2 = sign_in(base, "alan", mfa=True)
    r = s2.post(f"{base}/api/consent", headers={"X-MS-CLIENT-PRINCIPAL": forged}, timeout=10,
                json={"termsVersion": terms["termsVersion"], "accepted": True, "storePhotos": False})
    assert r.status_code == 201
    alan = next(u for u in TEST_USERS if u.key == "alan")
    assert app_stack.call("GET", "enrollment", user=alan.oid).json()["consent"] is not None
    assert app_stack.call("GET", "enrollment", user="someone-else").json()["consent"] is None


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"])
def test_redirects_stay_on_this_origin(app_stack: AppStack, target: str) -> None:
    base = app_stack.host.url
    r = requests.post(f"{base}/.auth/login/aad", data={"user": "ada", "mfa": "yes", "post_login_redirect_uri": target},
                      allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    r = requests.get(f"{base}/.auth/logout", params={"post_logout_redirect_uri": target}, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/.auth/logout/complete"


def test_unknown_user_and_forged_cookie_sign_in_nobody(app_stack: AppStack) -> None:
    base = app_stack.host.url
    r = requests.post(f"{base}/.auth/login/aad", data={"user": "mallory"}, allow_redirects=False, timeout=10)
    assert r.status_code == 400 and COOKIE not in r.headers.get("Set-Cookie", "")
    r = requests.get(f"{base}/.auth/me", cookies={COOKIE: "guessed-token"}, timeout=10)
    assert r.status_code == 401
    r = requests.get(f"{base}/api/enrollment", cookies={COOKIE: "guessed-token"}, timeout=10)
    assert r.status_code == 401


@pytest.fixture(scope="module")
def appservice_host(azurite: Azurite, face_emulator: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    env = app_env(azurite, "http://127.0.0.1:9")
    env["PRINCIPAL_SOURCE"] = "appservice"
    host = start_host(env=env, log_path=tmp_path_factory.mktemp("host") / "host.log", extra_args=["--no-timers"])
    yield host
    host.stop()


def test_the_stand_in_does_not_exist_outside_principal_source_local(appservice_host: HostProcess) -> None:
    base = appservice_host.url
    for path in ("/.auth/login/aad", "/.auth/me", "/.auth/logout"):
        assert requests.get(f"{base}{path}", allow_redirects=False, timeout=10).status_code == 404, path
    r = requests.post(f"{base}/.auth/login/aad", data={"user": "ada"}, allow_redirects=False, timeout=10)
    assert r.status_code == 404 and "Set-Cookie" not in r.headers


# --- CORS on Azurite for the SAS upload -----------------------------------------------------------

def preflight(azurite: Azurite, origin: str, method: str, headers: str) -> requests.Response:
    return requests.options(f"http://127.0.0.1:{azurite.blob_port}/devstoreaccount1/uploads/some-blob",
                            headers={"Origin": origin, "Access-Control-Request-Method": method,
                                     "Access-Control-Request-Headers": headers}, timeout=10)


def test_cors_lets_only_the_apps_origin_put_with_the_upload_headers(app_stack: AppStack) -> None:
    azurite = app_stack.azurite
    origin = app_stack.host.url
    allow_browser_uploads(azurite.connection_string, app_origins(origin))
    ok = preflight(azurite, origin, "PUT", "x-ms-blob-type,content-type")
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == origin
    same_app_other_name = origin.replace("127.0.0.1", "localhost")
    assert preflight(azurite, same_app_other_name, "PUT", "x-ms-blob-type").status_code == 200
    assert preflight(azurite, "http://evil.example", "PUT", "x-ms-blob-type").status_code == 403
    assert preflight(azurite, origin.rsplit(":", 1)[0] + ":1", "PUT", "x-ms-blob-type").status_code == 403
    for method in ("GET", "DELETE", "POST", "HEAD"):
        assert preflight(azurite, origin, method, "x-ms-blob-type").status_code == 403, method
    assert preflight(azurite, origin, "PUT", "x-ms-blob-type,x-ms-meta-owner").status_code == 403


# --- make up --------------------------------------------------------------------------------------

def test_make_up_prints_the_page_and_lets_it_upload(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from local.stack import _print_table, running_stack

    with running_stack(log_dir=tmp_path) as stack:
        _print_table(stack)
        printed = capsys.readouterr().out
        assert f"{stack.host_url}/api/web/" in printed
        status, _, body = raw_get(stack.host_url, "/api/web/")
        assert status == 200 and b"app.js" in body
        r = requests.options(f"http://127.0.0.1:{stack.azurite_ports[0]}/devstoreaccount1/uploads/x", timeout=10,
                             headers={"Origin": stack.host_url, "Access-Control-Request-Method": "PUT",
                                      "Access-Control-Request-Headers": "x-ms-blob-type,content-type"})
        assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == stack.host_url
