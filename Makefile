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

# limits' own storage suite, run against our `dynamodb` and `async+dynamodb` schemes: the pinned
# sdist is fetched once from PyPI into the cache, its tests/ unpacked there (never into git) and
# run unmodified; tests/limits_plugin.py substitutes our storage in their list of storages.
LIMITS_VERSION := 5.8.0
LIMITS_CACHE := $(HOME)/.cache/dynamodb-counters/limits
LIMITS_SDIST := $(LIMITS_CACHE)/limits-$(LIMITS_VERSION).tar.gz
LIMITS_RUN := $(LIMITS_CACHE)/run-$(LIMITS_VERSION)
LIMITS_TESTS := tests/test_strategy.py tests/test_storage.py tests/aio/test_strategy.py \
	tests/aio/test_storage.py tests/integration/test_concurrency.py

.PHONY: demo test test-fast lint install local-engine limits-suite clean readme-figures

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
	$(MAKE) --no-print-directory limits-suite

$(LIMITS_SDIST): | $(STAMP)
	mkdir -p $(LIMITS_CACHE)
	$(PY) -m pip download --quiet --no-binary :all: --no-deps limits==$(LIMITS_VERSION) \
		-d $(LIMITS_CACHE)

limits-suite: local-engine $(LIMITS_SDIST)
	rm -rf $(LIMITS_RUN) && mkdir -p $(LIMITS_RUN)
	tar xzf $(LIMITS_SDIST) -C $(LIMITS_RUN) --strip-components=1 limits-$(LIMITS_VERSION)/tests
	cd $(LIMITS_RUN) && PYTHONPATH=$(CURDIR)/tests $(abspath $(PY)) -m pytest -q \
		-c $(CURDIR)/tests/limits_suite.ini --rootdir . --noconftest -p limits_plugin \
		$(LIMITS_TESTS)

# The fast part only (skips the slow fault matrix and model-based tests).
test-fast: local-engine
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -q -m 'not slow'

# For maintainers: re-measure every figure the README shows (docs/figures.json, then the README's
# marked blocks; about 8 minutes). tests/test_readme.py checks the README against that file.
readme-figures: local-engine
	$(PY) benchmarks/readme_figures.py

clean:
	rm -rf $(VENV) counter-report .pytest_cache .mypy_cache .ruff_cache
