"""The HTTP clients read the process environment once, when they are built (shared/adapters/http_env.py):
requests' per-request lookups (proxies, NO_PROXY, CA bundle, netrc) stay on only when the environment sets
something they would apply, and a CA bundle alone is set on the client itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.adapters.http_env import configure_session, read_http_environment, sdk_client_options


def test_an_environment_with_nothing_for_requests_turns_the_lookups_off(tmp_path: Path) -> None:
    env = read_http_environment({"PATH": "/usr/bin", "HOME": str(tmp_path), "HTTPS_PROXY": ""}, home=tmp_path)
    assert env.per_request is False and env.ca_bundle is None


@pytest.mark.parametrize("name", ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "no_proxy", "NETRC"])
def test_a_proxy_or_netrc_setting_keeps_them_on(name: str, tmp_path: Path) -> None:
    assert read_http_environment({name: "x"}, home=tmp_path).per_request is True


def test_a_netrc_file_keeps_them_on(tmp_path: Path) -> None:
    (tmp_path / ".netrc").write_text("machine example.com login a password b\n")
    assert read_http_environment({}, home=tmp_path).per_request is True


def test_a_ca_bundle_alone_is_set_on_the_client_in_requests_order(tmp_path: Path) -> None:
    env = read_http_environment({"CURL_CA_BUNDLE": "/curl.pem", "REQUESTS_CA_BUNDLE": "/requests.pem"}, home=tmp_path)
    assert env.per_request is False and env.ca_bundle == "/requests.pem"
    assert read_http_environment({"CURL_CA_BUNDLE": "/curl.pem"}, home=tmp_path).ca_bundle == "/curl.pem"


def test_sdk_options_and_session(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import requests

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "NETRC", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/bundle.pem")
    assert sdk_client_options() == {"use_env_settings": False, "connection_verify": "/bundle.pem"}
    session = requests.Session()
    configure_session(session)
    assert session.trust_env is False and session.verify == "/bundle.pem"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert sdk_client_options() == {"use_env_settings": True}
    session = requests.Session()
    configure_session(session)
    assert session.trust_env is True and session.verify is True  # requests decides per request, as before
