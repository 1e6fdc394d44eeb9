"""Importing the app builds nothing: SDKs and services load on first use (cold start stays lean)."""

from __future__ import annotations

import subprocess
import sys

from tests.fixtures.azurite import ROOT

HEAVY = ["azure.storage.blob", "azure.data.tables", "azure.servicebus", "azure.identity", "requests", "PIL",
         "jsonschema", "tenacity", "shared.bootstrap", "shared.services.enrollment"]


def test_function_app_import_loads_no_sdk_or_service() -> None:
    code = f"import sys, function_app; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_folder_registers_its_blueprint() -> None:
    code = ("import json, function_app; "
            "print(sorted({f.get_user_function().__module__ for f in function_app.app.get_functions()}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(sorted(["functions.api", "functions.enroll", "functions.events", "functions.purge_timer",
                                             "functions.reenroll", "functions.revoke", "functions.web"]))
