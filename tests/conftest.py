"""Test tiers: tests/unit (pure logic, fakes), tests/integration (adapters against Azurite and the
Face emulator started on free ports), tests/e2e (the whole app through the local host), tests/browser (the reference front end in Chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.paths",
    "tests.fixtures.azurite",
    "tests.fixtures.face_emulator",
    "tests.fixtures.local_host",
    "tests.fixtures.app_stack",
]

TIERS = ("unit", "service", "contract", "integration", "e2e", "browser")
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers follow folders: a test in tests/<tier>/ carries the marker <tier>, so ``-m`` selects tiers."""
    for item in items:
        try:
            tier = Path(item.path).resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
