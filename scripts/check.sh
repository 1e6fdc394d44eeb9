#!/usr/bin/env bash
# The one check script: lint, types, infrastructure, then the whole test suite. CI runs this too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

echo "== ruff"
$PY -m ruff check .
echo "== mypy (strict on shared/)"
$PY -m mypy shared function_app.py functions local
echo "== pytest (unit, service, contract, integration, e2e), with branch coverage of shared/"
# The service tier's properties run at least 2,000 examples each here (tests/service/support.py).
# Two workers, one file at a time each (a module's stack is started once), longest files first (the order
# tests/conftest.py sets from tests/file_costs.json; xdist would otherwise order files by test count);
# each worker starts its own Azurite and Face emulator. PYTEST_WORKERS=0 runs everything in this process.
HYPOTHESIS_PROFILE=ci $PY -m pytest -q -n "${PYTEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder --cov=shared --cov-branch --cov-report=term:skip-covered --cov-fail-under=90 "$@"
echo "== schemathesis: the API against docs/openapi.json, as a user, an admin and anonymous (reports in .local/schemathesis)"
$PY scripts/fuzz_api.py --max-examples  25
