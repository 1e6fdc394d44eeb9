"""Test tiers: tests/unit (pure logic, fakes), tests/integration (adapters against Azurite and the
Face emulator started on free ports), tests/e2e (the whole app through the local host), tests/browser (the reference front end in Chromium)."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.paths",
    "tests.fixtures.azurite",
    "tests.fixtures.face_emulator",
    "tests.fixtures.local_host",
    "tests.fixtures.app_stack",
]
