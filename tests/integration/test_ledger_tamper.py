"""The consent ledger against a real Azurite: a row edited or deleted in Table storage behind the
app's back is named by verify (the service, and ``python -m local.ledger verify``), by user and position."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest

from shared.bootstrap import Services, build
from shared.commands import GrantConsent, Revoke, RunPurge
from shared.settings import Settings
from tests.fakes import FakeFace, FakePublisher
from tests.fixtures.azurite import Azurite
from tests.fixtures.paths import ROOT
from tests.service.support import ManualClock, principal

pytestmark = pytest.mark.integration


@pytest.fixture
def env(azurite: Azurite) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {"PhotoStorage": azurite.connection_string, "TABLE_PREFIX": f"led{tag}",
            "LEDGER_ANCHORS_CONTAINER": f"anchors-{tag}", "UPLOADS_CONTAINER": f"up-{tag}",
            "KEPT_PHOTOS_CONTAINER": f"kept-{tag}"}


@pytest.fixture
def app(env: dict[str, str]) -> Services:
    services = build(Settings.from_env(env), clock=ManualClock(), face=FakeFace(), publisher=FakePublisher())
    terms = services.consent.terms()
    for user in ("alice", "bob"):
        services.consent.grant(GrantConsent(principal(user), terms.version, True, "test"))
        services.consent.grant(GrantConsent(principal(user), terms.version, False, "test"))
    services.revocation.erase(Revoke("alice", "req-alice", reason="test"))
    assert services.purge.run(RunPurge(False, "test")) \
        .ledger_anchor["written"] is True
    assert services.ledger.verify(actor="test").ok
    return services


def table(env: dict[str, str]) -> Any:
    from azure.data.tables import TableServiceClient

    return TableServiceClient.from_connection_string(env["PhotoStorage"]).get_table_client(f"{env['TABLE_PREFIX']}consent")


def alice_rows(env: dict[str, str]) -> list[Any]:
    return sorted(table(env).query_entities("PartitionKey eq 'alice'"), key=lambda e: e["RowKey"])


def cli_verify(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "local.ledger", "verify"], cwd=ROOT, env={**env, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads(done.stdout)


def test_an_edited_row_in_azurite_is_named(app: Services, env: dict[str, str]) -> None:
    from azure.data.tables import UpdateMode

    rows = alice_rows(env)
    assert [r["seq"] for r in rows] == [1, 2, 3]
    first = rows[0]
    first["storePhotos"] = False  # alice "never agreed to keep photos"
    table(env).update_entity(first, mode=UpdateMode.REPLACE)
    report = app.ledger.verify(actor="test")
    assert [(f.user_key, f.position, f.problem) for f in report.findings] == [("alice", 1, "edited")]
    code, out = cli_verify(env)
    assert code == 1 and out["ok"] is False
    assert [(f["userKey"], f["position"], f["problem"]) for f in out["findings"]] == [("alice", 1, "edited")]


def test_a_deleted_row_in_azurite_is_named(app: Services, env: dict[str, str]) -> None:
    second = alice_rows(env)[1]
    table(env).delete_entity(second["PartitionKey"], second["RowKey"])
    report = app.ledger.verify(actor="test")
    assert [(f.user_key, f.position, f.problem) for f in report.findings] == [("alice", 2, "deleted")]
    code, out = cli_verify(env)
    assert code == 1 and [(f["userKey"], f["position"], f["problem"]) for f in out["findings"]] == [("alice", 2, "deleted")]


def test_a_deleted_last_row_in_azurite_is_named_through_the_anchor(app: Services, env: dict[str, str]) -> None:
    last = alice_rows(env)[-1]  # the revocation's tombstone: no later entry links to it
    table(env).delete_entity(last["PartitionKey"], last["RowKey"])
    report = app.ledger.verify(actor="test")
    assert [(f.user_key, f.position, f.problem) for f in report.findings] == [("alice", 3, "deleted")]


def test_the_untouched_ledger_verifies_from_the_cli(app: Services, env: dict[str, str]) -> None:
    code, out = cli_verify(env)
    assert code == 0 and out["ok"] is True and out["chains"] == 2 and out["entries"] == 5 and out["anchors"] == 1
