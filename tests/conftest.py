"""Test tiers, one folder each (the marker follows the folder): tests/unit (pure logic), tests/service
(the services on the in-memory fakes of tests/fakes.py), tests/contract (each fake and its real adapter
on the same cases), tests/integration (adapters against Azurite and the Face emulator started on free
ports), tests/e2e (the whole app through the local host), tests/browser (the reference front end in
Chromium)."""

from __future__ import annotations

import json
import os
from collections import Counter
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
#: Seconds each test file took in the last recorded two-worker run (RECORD_TEST_COSTS=1 make test).
FILE_COSTS = TESTS / "file_costs.json"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers follow folders: a test in tests/<tier>/ carries the marker <tier>, so ``-m`` selects tiers."""
    for item in items:
        try:
            tier = Path(item.path).resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _longest_files_first(items)


def _longest_files_first(items: list[pytest.Item]) -> None:
    """xdist hands files out in collection order, one at a time to whichever worker is free. In
    alphabetical order the longest files came last and one worker ran them alone while the other sat
    idle; longest first (the classic LPT schedule) lets the short files fill in at the end. The sort is
    stable, so the tests of a file keep their order; files with no recorded cost go last."""
    try:
        costs: dict[str, float] = json.loads(FILE_COSTS.read_text())
    except (OSError, ValueError):
        return
    items.sort(key=lambda item: -costs.get(_file_of(item), 0.0))


def _file_of(item: pytest.Item) -> str:
    return item.nodeid.partition("::")[0]


_recorded: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if os.environ.get("RECORD_TEST_COSTS"):
        _recorded[report.nodeid.partition("::")[0]] += report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    """RECORD_TEST_COSTS=1 rewrites tests/file_costs.json from this run (in the controller, which sees
    every worker's reports): the order above then follows the suite as it is."""
    if os.environ.get("RECORD_TEST_COSTS") and not os.environ.get("PYTEST_XDIST_WORKER") and _recorded:
        costs = {name: round(seconds, 1) for name, seconds in _recorded.most_common()}
        FILE_COSTS.write_text(json.dumps(costs, indent=1) + "\n")
