# autoprotect developer commands. The README's quick start is `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
SERVERS ?= 1000
SWEEP ?= 0

.PHONY: setup demo run test lint fmt typecheck audit clean bench chaos

## setup: create .venv, install Python and npm (Azurite) dependencies; quick when nothing changed
setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml tests/infra/requirements-iac.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@# checkov pins packaging<24, which pytest 9 refuses: it gets a venv of its own.
	@test -x $(VENV)/iac/bin/python || $(PYTHON) -m venv $(VENV)/iac
	$(VENV)/iac/bin/python -m pip install --quiet --disable-pip-version-check -r tests/infra/requirements-iac.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## demo: the whole flow locally on the embedded emulator, ending in a report
demo: setup
	$(PY) -m scripts.demo

## run: start Azurite, the emulator and the dev host, and leave them running
run: setup
	$(PY) -m scripts.demo --keep-running

## test: lint (incl. ruff's bandit rules), format check, type check, dependency audit and the whole test suite
test: setup lint typecheck audit
	$(PY) -m pytest -q

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy .

## bench: speed and cost against ARM's limit (make bench SERVERS=1000, SWEEP=1 for 100/1000/5000)
bench: setup
	$(PY) -m scripts.bench --servers $(SERVERS) $(if $(filter 1,$(SWEEP)),--sweep,)

## chaos: a large estate under faults, host kills and a storage restart; ends with one JSON line
chaos: setup
	$(PY) -m scripts.chaos --servers $(or $(CHAOS_SERVERS),2000)

audit:
	$(PY) -m scripts.audit

fmt:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf .demo .bench .pytest_cache .mypy_cache .ruff_cache
