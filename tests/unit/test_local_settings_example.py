"""local.settings.example.json (for people who have Core Tools) names only settings the code knows."""

from __future__ import annotations

import json

from shared.settings import SETTING_NAMES
from tests.fixtures.azurite import ROOT

CORE_TOOLS_ONLY = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"}


def test_example_settings_are_known() -> None:
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    unknown = set(values) - SETTING_NAMES - CORE_TOOLS_ONLY
    assert not unknown, f"settings the code does not read: {sorted(unknown)}"
    # Every %NAME% a binding uses has a value there too, so `func start` resolves every binding.
    for name in ("UPLOADS_CONTAINER", "REVOCATIONS_QUEUE", "MODEL_UPDATES_QUEUE", "REENROLL_WORK_QUEUE",
                 "HR_EVENTS_TOPIC", "HR_EVENTS_SUBSCRIPTION", "PURGE_SCHEDULE"):
        assert name in values
