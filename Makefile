# Two entry points for users: `make demo` and `make test`. Each sets itself up (venv, install,
# DynamoDB Local fetched once into ~/.cache/dynamodb-counters) and is idempotent.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Two workers, each with its own DynamoDB Local and whole files (--dist loadfile: the timing
# tests of a file never share a machine with their own file's heavy tests). More workers were
# slower on 2 cores: the engines and botocore keep both busy.
PYTEST_WORKERS ?= 2

.PHONY: demo test test-fast lint install local-engine clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

local-engine: $(STAMP)
	$(PY) -m dynamodb_counters.local install >/dev/null

demo: local-engine
	$(VENV)/bin/dynamodb-counters demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts
	$(VENV)/bin/mypy

test: lint local-engine
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -q --durations=20

# The fast part only (skips the slow fault matrix and model-based tests).
test-fast: local-engine
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -q -m 'not slow'

clean:
	rm -rf $(VENV) counter-report .pytest_cache .mypy_cache .ruff_cache
