"""POST /api/admin/ledger/verify through the local host: admin with MFA only; an intact ledger
verifies against the anchor purge wrote; a row edited in Azurite is named by user and position."""

from __future__ import annotations

import uuid

import pytest
from azure.data.tables import TableServiceClient, UpdateMode

from tests.fixtures.app_stack import AppStack

pytestmark = pytest.mark.e2e

ADMIN = "ledger-admin"


def test_verify_is_admin_only_and_names_an_edited_row(app_stack: AppStack) -> None:
    user = f"led-{uuid.uuid4().hex[:6]}"
    app_stack.consent(user, store_photos=True)
    app_stack.consent(user, store_photos=False)
    assert app_stack.call("POST", "admin/ledger/verify", user=user).status_code == 403
    assert app_stack.call("POST", "admin/ledger/verify", user=ADMIN, admin=True, mfa=False).status_code == 403
    purge = app_stack.call("POST", "admin/purge", user=ADMIN, admin=True, json={"dryRun": False})
    assert purge.status_code == 200 and purge.json()["ledgerAnchor"]["anchor"].endswith(".json")
    report = app_stack.call("POST", "admin/ledger/verify", user=ADMIN, admin=True).json()
    assert report["ok"] is True and report["anchors"] >= 1, report

    tables = TableServiceClient.from_connection_string(app_stack.env["PhotoStorage"])
    ledger = tables.get_table_client(f"{app_stack.env['TABLE_PREFIX']}consent")
    first = sorted(ledger.query_entities("PartitionKey eq @u", parameters={"u": user}), key=lambda e: e["RowKey"])[0]
    first["termsVersion"] = "1999-01"
    ledger.update_entity(first, mode=UpdateMode.REPLACE)
    report = app_stack.call("POST", "admin/ledger/verify", user=ADMIN, admin=True).json()
    assert report["ok"] is False
    assert [(f["userKey"], f["position"], f["problem"]) for f in report["findings"]] == [(user, 1, "edited")]
