# face-enrollment: the two commands are `make demo` and `make test`; both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
DEMO_PHOTOS := .local/demo-photos

.PHONY: setup demo test test-fast up check bench bench-load bench-chaos bench-soak clean lint typecheck package

setup: $(VENV)/.installed node_modules/.installed $(CHECKOV_VENV)/.installed $(DEMO_PHOTOS)/.fetched

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov pins its own dependencies, which would fight the app's: it gets a virtualenv of its own.
$(CHECKOV_VENV)/.installed: requirements-infra.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	touch $@

# The demo's photos: the sample images in face_recognition 1.3.0's source distribution (never committed).
$(DEMO_PHOTOS)/.fetched: $(VENV)/.installed
	$(PY) scripts/fetch_demo_photos.py --dest $(DEMO_PHOTOS)
	touch $@

up: setup
	$(PY) -m local.stack

demo: setup
	$(PY) -m local.demo --photos $(DEMO_PHOTOS)

test: setup
	scripts/check.sh

# Lint, types, and the unit and service tiers (in memory, on the fakes): under a minute, for every change.
test-fast: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m mypy shared function_app.py functions local
	$(PY) -m pytest -q tests/unit tests/service

# The deployment zip exactly as `azd deploy` builds it (.funcignore honoured); tests/e2e/test_package.py runs it.
package: $(VENV)/.installed
	$(PY) scripts/package.py --out .local/package/face-enrollment.zip

bench: setup
	$(PY) bench/run_all.py

# Long runs of the whole local stack, one command each (not part of `make bench`): 200 users x 3 photos
# (about 10 min), the same under Face faults with the invariants checked, and 30 minutes of mixed
# traffic with memory sampled every minute. Figures go to .local/bench/results.json.
bench-load: setup
	$(PY) bench/bench_load.py

bench-chaos: setup
	$(PY) bench/bench_chaos.py

bench-soak: setup
	$(PY) bench/bench_soak.py --minutes $(or $(MINUTES),30)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .local .pytest_cache .mypy_cache .ruff_cache
