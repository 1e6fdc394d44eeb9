#!/usr/bin/env bash
# The one check script: lint, types, infrastructure, then the whole test suite. CI runs this too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

echo "== ruff"
$PY -m ruff check .
echo "== mypy (strict on shared/)"
$PY -m mypy shared function_app.py functions local
echo "== pytest (unit, integration, e2e)"
$PY -m pytest -q "$@"
