"""Authentication fails closed: forged, foreign and under-authenticated principals are refused.

The HTTP functions are called directly (the decorated user functions, with real ``func.HttpRequest``
objects), with the settings the Bicep sets; no stack is needed because the refusal comes first.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest

import functions.api as api
from shared import bootstrap
from shared.domain.principal import TID_URI, PrincipalError, encode_principal, parse_principal
from shared.http_api import AuthenticationNotConfigured, handle, principal_from
from shared.settings import Settings

pytestmark = pytest.mark.unit

OID = "7d0f0bd5-90b1-4d67-a1a1-4a4d1e8c0c11"
TENANT = "0a1b2c3d-0000-4000-8000-00000000beef"
ADMIN = "FaceEnrollment.Admin"


def header(*claims: tuple[str, str], auth_typ: str = "aad") -> dict[str, str]:
    return {"X-MS-CLIENT-PRINCIPAL": encode_principal(list(claims), auth_typ=auth_typ)}


def admin_claims(*, mfa: bool = True, tid: str = TENANT) -> tuple[tuple[str, str], ...]:
    claims = [("oid", OID), ("tid", tid), ("roles", ADMIN), ("amr", "pwd")]
    if mfa:
        claims.append(("amr", "mfa"))
    return tuple(claims)


# --- every route, called directly ------------------------------------------------------------------
def http_functions() -> list[tuple[str, Any, str, str]]:
    """(name, user function, method, url) for every HTTP route of functions/api."""
    found = []
    for name in dir(api):
        builder = getattr(api, name)
        if isinstance(builder, func.decorators.function_app.FunctionBuilder):
            function = builder.build()
            trigger = function.get_trigger()
            route = trigger.route.replace("{userKey}", "u1").replace("{receiptId}", "r1").replace("{runId}", "run1")
            method = str(trigger.methods[0].value if hasattr(trigger.methods[0], "value") else trigger.methods[0])
            found.append((name, function.get_user_function(), method, f"http://localhost/api/{route}"))
    return sorted(found, key=lambda f: f[0])


ROUTES = http_functions()


@pytest.fixture
def deployed_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The settings the Bicep sets (PRINCIPAL_SOURCE unset = appservice), without App Service itself."""
    for name in ("PRINCIPAL_SOURCE", "WEBSITE_AUTH_ENABLED", "AUTH_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTH_TENANT_ID", TENANT)
    bootstrap.reset()

    def no_services() -> Any:
        raise AssertionError("a refused request must not build any client")

    monkeypatch.setattr(bootstrap, "services", no_services)
    yield
    bootstrap.reset()


def call(user_function: Any, method: str, url: str, headers: dict[str, str], body: bytes = b"{}") -> func.HttpResponse:
    route_params = {"userKey": "u1", "receiptId": "r1", "runId": "run1"}
    req = func.HttpRequest(method=method, url=url, headers=headers, body=body, route_params=route_params)
    response: func.HttpResponse = user_function(req)
    return response


def test_every_route_is_discovered() -> None:
    assert len(ROUTES) >= 13 and "health" in {r[0] for r in ROUTES}


@pytest.mark.parametrize(("name", "user_function", "method", "url"), ROUTES, ids=[r[0] for r in ROUTES])
def test_without_easy_auth_every_route_but_health_answers_503(deployed_env: None, name: str, user_function: Any,
                                                              method: str, url: str) -> None:
    # A forged admin principal with MFA: exactly what an attacker would send.
    response = call(user_function, method, url, header(*admin_claims()))
    if name == "health":
        assert response.status_code == 200
        return
    assert response.status_code == 503, response.get_body()
    assert json.loads(response.get_body())["error"]["code"] == "AuthenticationNotConfigured"


def test_the_missing_easy_auth_is_logged_once(deployed_env: None, caplog: pytest.LogCaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.http_api as http_api

    monkeypatch.setattr(http_api, "_not_configured_logged", False)
    _name, user_function, method, url = next(r for r in ROUTES if r[0] == "enrollment_status")
    for _ in range(3):
        call(user_function, method, url, header(*admin_claims()))
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "WEBSITE_AUTH_ENABLED" in r.getMessage()]
    assert len(errors) == 1


ADMIN_ROUTES = [r for r in ROUTES if r[3].startswith("http://localhost/api/admin/")]


@pytest.mark.parametrize(("name", "user_function", "method", "url"), ADMIN_ROUTES, ids=[r[0] for r in ADMIN_ROUTES])
def test_with_easy_auth_admin_routes_need_mfa_first(deployed_env: None, monkeypatch: pytest.MonkeyPatch, name: str,
                                                    user_function: Any, method: str, url: str) -> None:
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    bootstrap.reset()
    # Authorization comes before the body is read: a bad body still gets 403, not 400.
    response = call(user_function, method, url, header(*admin_claims(mfa=False)), body=b"{not json")
    assert response.status_code == 403, response.get_body()
    assert "multi-factor" in json.loads(response.get_body())["error"]["message"]
    # Not an admin, with MFA: 403 too.
    response = call(user_function, method, url, header(("oid", OID), ("tid", TENANT), ("amr", "mfa")), body=b"{}")
    assert response.status_code == 403
    # Another tenant's admin: 401.
    response = call(user_function, method, url, header(*admin_claims(tid="11111111-0000-4000-8000-000000000000")))
    assert response.status_code == 401


@pytest.mark.parametrize(("name", "user_function", "method", "url"), [r for r in ROUTES if r[0] != "health"],
                         ids=[r[0] for r in ROUTES if r[0] != "health"])
def test_with_easy_auth_foreign_principals_get_401(deployed_env: None, monkeypatch: pytest.MonkeyPatch, name: str,
                                                   user_function: Any, method: str, url: str) -> None:
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    bootstrap.reset()
    for headers in (
        {},  # no principal
        header(*admin_claims(), auth_typ="google"),  # another identity provider
        header(("oid", OID), ("roles", ADMIN), ("amr", "mfa")),  # no tenant claim at all
        {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"[" * 5000).decode()},  # recursion bomb
    ):
        response = call(user_function, method, url, headers)
        assert response.status_code == 401, (headers, response.get_body())


# --- the rules themselves ---------------------------------------------------------------------------
def test_local_source_trusts_the_header_and_appservice_needs_easy_auth() -> None:
    headers = header(("oid", OID))
    assert principal_from(headers, Settings(principal_source="local")).user_key == OID
    assert principal_from(headers, Settings(principal_source="appservice", website_auth_enabled=True)).user_key == OID
    with pytest.raises(AuthenticationNotConfigured):
        principal_from(headers, Settings(principal_source="appservice", website_auth_enabled=False))
    reply = handle(lambda: (_ for _ in ()).throw(AuthenticationNotConfigured()))
    assert reply.status == 503 and reply.body["error"]["code"] == "AuthenticationNotConfigured"


def test_settings_default_to_appservice_and_refuse_unknown_sources() -> None:
    assert Settings.from_env({}).principal_source == "appservice"
    assert Settings.from_env({}).website_auth_enabled is False
    assert Settings.from_env({"WEBSITE_AUTH_ENABLED": "True"}).website_auth_enabled is True
    assert Settings.from_env({"WEBSITE_AUTH_ENABLED": "true"}).website_auth_enabled is True
    assert Settings.from_env({"WEBSITE_AUTH_ENABLED": "1"}).website_auth_enabled is False
    with pytest.raises(ValueError, match="PRINCIPAL_SOURCE"):
        Settings.from_env({"PRINCIPAL_SOURCE": "header"})


def test_tenant_claim_short_or_long_must_match() -> None:
    assert parse_principal(encode_principal([("oid", OID), ("tid", TENANT)]), tenant_id=TENANT).user_key == OID
    assert parse_principal(encode_principal([("oid", OID), (TID_URI, TENANT.upper())]), tenant_id=TENANT).user_key == OID
    for claims in ([("oid", OID)], [("oid", OID), ("tid", "other")], [("oid", OID), ("tid", TENANT), (TID_URI, "x")]):
        with pytest.raises(PrincipalError) as caught:
            parse_principal(encode_principal(claims), tenant_id=TENANT)
        assert caught.value.status == 401
        assert TENANT not in caught.value.reason


def test_only_aad_principals_are_accepted() -> None:
    for auth_typ in ("google", "facebook", "twitter", "github", "apple", "", "aad2"):
        with pytest.raises(PrincipalError) as caught:
            parse_principal(encode_principal([("oid", OID)], auth_typ=auth_typ))
        assert caught.value.status == 401
    assert parse_principal(encode_principal([("oid", OID)], auth_typ=" AAD ")).user_key == OID
    document = {"claims": [{"typ": "oid", "val": OID}]}  # no auth_typ at all
    with pytest.raises(PrincipalError):
        parse_principal(base64.b64encode(json.dumps(document).encode()).decode())


def test_nested_json_header_is_401_not_500() -> None:
    for bomb in (b"[" * 5000, b'{"a":' * 5000, b"[" * 100_000):
        with pytest.raises(PrincipalError) as caught:
            parse_principal(base64.b64encode(bomb).decode())
        assert caught.value.status == 401


@pytest.mark.parametrize("amr", ["mfa", "ngcmfa", "fido", "MFA", "Fido"])
def test_default_settings_count_passwordless_and_hello_sign_ins_as_mfa(amr: str) -> None:
    accepted = Settings.from_env({}).mfa_amr_values
    assert parse_principal(encode_principal([("oid", OID), ("amr", amr)]), mfa_amr_values=accepted).mfa


@pytest.mark.parametrize("amr", ["pwd", "rsa", "otp", "wia", "wiaormfa", "fed", "kba", "none", "face", "swk"])
def test_single_factor_methods_are_not_mfa(amr: str) -> None:
    accepted = Settings.from_env({}).mfa_amr_values
    assert not parse_principal(encode_principal([("oid", OID), ("amr", amr)]), mfa_amr_values=accepted).mfa


def test_mfa_values_are_a_setting() -> None:
    accepted = Settings.from_env({"MFA_AMR_VALUES": "mfa, otp"}).mfa_amr_values
    assert accepted == frozenset({"mfa", "otp"})
    assert parse_principal(encode_principal([("oid", OID), ("amr", "otp")]), mfa_amr_values=accepted).mfa
    assert not parse_principal(encode_principal([("oid", OID), ("amr", "fido")]), mfa_amr_values=accepted).mfa
