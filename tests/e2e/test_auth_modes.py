"""The local stack authenticates as Azure would when told to: local defaults yield to the environment.

`PRINCIPAL_SOURCE=appservice` without `WEBSITE_AUTH_ENABLED` is the deployed app without Easy Auth:
it must refuse a forged admin principal with 503. With Easy Auth "on" and a tenant, only principals
of that tenant pass.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from local.stack import stack_app_env
from tests.fixtures.app_stack import app_env
from tests.fixtures.azurite import Azurite
from tests.fixtures.local_host import start_host

pytestmark = pytest.mark.e2e
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def forged(*, tid: str | None = None) -> dict[str, str]:
    claims = [{"typ": "oid", "val": "victim"}, {"typ": "roles", "val": "FaceEnrollment.Admin"},
              {"typ": "amr", "val": "mfa"}]
    if tid:
        claims.append({"typ": "tid", "val": tid})
    doc = {"auth_typ": "aad", "claims": claims}
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(doc).encode()).decode()}


def test_appservice_source_without_easy_auth_refuses_everything_but_health(
        azurite: Azurite, face_emulator: Any, tmp_path: Path) -> None:
    env = app_env(azurite, face_emulator.endpoint) | {"PRINCIPAL_SOURCE": "appservice"}
    host = start_host(env=env, log_path=tmp_path / "host.log", extra_args=["--no-timers"])
    try:
        assert requests.get(f"{host.url}/api/health", timeout=10).status_code == 200
        for method, path in (("GET", "enrollment"), ("POST", "admin/purge"), ("DELETE", "enrollment"),
                             ("POST", "admin/users/victim/revoke"), ("GET", "consent/terms")):
            r = requests.request(method, f"{host.url}/api/{path}", headers=forged(), json={"dryRun": False}, timeout=10)
            assert r.status_code == 503, (path, r.text)
            assert r.json()["error"]["code"] == "AuthenticationNotConfigured"
        assert host.log().count("WEBSITE_AUTH_ENABLED is not True") == 1
    finally:
        host.stop()


def test_easy_auth_on_accepts_only_the_configured_tenant(azurite: Azurite, face_emulator: Any, tmp_path: Path) -> None:
    env = app_env(azurite, face_emulator.endpoint) | {"PRINCIPAL_SOURCE": "appservice", "WEBSITE_AUTH_ENABLED": "True",
                                                      "AUTH_TENANT_ID": TENANT}
    host = start_host(env=env, log_path=tmp_path / "host.log", extra_args=["--no-timers"])
    try:
        assert requests.get(f"{host.url}/api/enrollment", headers=forged(), timeout=10).status_code == 401
        other = forged(tid="00000000-0000-0000-0000-000000000001")
        assert requests.get(f"{host.url}/api/enrollment", headers=other, timeout=10).status_code == 401
        ok = requests.get(f"{host.url}/api/enrollment", headers=forged(tid=TENANT), timeout=10)
        assert ok.status_code == 200, ok.text
    finally:
        host.stop()


def test_stack_defaults_yield_to_the_environment() -> None:
    ports = {"blob": 1, "queue": 2, "table": 3, "face_port": 4}
    assert stack_app_env(**ports, environ={})["PRINCIPAL_SOURCE"] == "local"
    env = stack_app_env(**ports, environ={"PRINCIPAL_SOURCE": "appservice", "FACE_KEY": "mine"})
    assert env["PRINCIPAL_SOURCE"] == "appservice" and env["FACE_KEY"] == "mine"
    assert "127.0.0.1:1" in env["PhotoStorage"]
    # What a test passes explicitly wins over both.
    assert stack_app_env(**ports, environ={"PRINCIPAL_SOURCE": "appservice"},
                         extra_env={"PRINCIPAL_SOURCE": "local"})["PRINCIPAL_SOURCE"] == "local"


def test_per_user_request_quota_answers_429_with_retry_after(azurite: Azurite, face_emulator: Any, tmp_path: Path) -> None:
    env = app_env(azurite, face_emulator.endpoint) | {"QUOTA_REQUESTS_PER_MINUTE": "4"}
    host = start_host(env=env, log_path=tmp_path / "host.log", extra_args=["--no-timers"])
    try:
        me = {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(
            {"auth_typ": "aad", "claims": [{"typ": "oid", "val": "quota-user"}]}).encode()).decode()}
        codes = [requests.get(f"{host.url}/api/enrollment", headers=me, timeout=10).status_code for _ in range(6)]
        assert codes[:4] == [200] * 4 and codes[4:] == [429, 429], codes
        r = requests.get(f"{host.url}/api/enrollment", headers=me, timeout=10)
        assert 1 <= int(r.headers["Retry-After"]) <= 61 and r.json()["error"]["code"] == "TooManyRequests"
        assert requests.get(f"{host.url}/api/health", timeout=10).status_code == 200  # health is never counted
    finally:
        host.stop()
