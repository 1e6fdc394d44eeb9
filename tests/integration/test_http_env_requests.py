"""Against Azurite and the Face emulator: with nothing in the environment for requests, the storage and Face
clients make their requests without looking the environment up each time (the lookups were 13 % of the
re-enrollment host's CPU); with a proxy setting they look it up as requests defines, and still work."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests.sessions
import requests.utils

from shared.adapters.azure_storage import StorageClients
from shared.adapters.face_rest import FaceRestClient
from shared.adapters.table_records import TableRecords
from shared.settings import Settings
from tests.fixtures.azurite import Azurite

pytestmark = pytest.mark.integration

ENV_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "NETRC")


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Counts requests' per-request environment lookups (proxies and netrc)."""
    seen: list[str] = []
    original_proxies, original_netrc = requests.utils.get_environ_proxies, requests.utils.get_netrc_auth

    def proxies(*args: Any, **kwargs: Any) -> Any:
        seen.append("proxies")
        return original_proxies(*args, **kwargs)

    def netrc(*args: Any, **kwargs: Any) -> Any:
        seen.append("netrc")
        return original_netrc(*args, **kwargs)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", proxies)
    monkeypatch.setattr(requests.sessions, "get_netrc_auth", netrc)
    yield seen


def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc


def _table_round_trips(azurite: Azurite) -> None:
    records = TableRecords(StorageClients(Settings.from_env({"PhotoStorage": azurite.connection_string})),
                           prefix="e" + uuid.uuid4().hex[:8])
    for i in range(5):
        records.insert("things", {"PartitionKey": "p", "RowKey": str(i)})
    assert len(records.partition("things", "p")) == 5


def test_storage_and_face_requests_do_not_read_the_environment_each_time(
        azurite: Azurite, face_api: Any, lookups: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    _clean_environment(monkeypatch, tmp_path)
    _table_round_trips(azurite)
    face = FaceRestClient(endpoint=face_api.endpoint, key="k")
    face.create_group("g" + uuid.uuid4().hex[:8], name="n", recognition_model="recognition_04")
    assert lookups == []


def test_with_a_proxy_setting_requests_looks_it_up_as_before(
        azurite: Azurite, lookups: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    _clean_environment(monkeypatch, tmp_path)
    # A proxy for everything but this host: requests must decide per request, and does.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    _table_round_trips(azurite)
    assert "proxies" in lookups
