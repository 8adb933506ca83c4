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
LIMITS_TESTS := tests/test_strategy.py tests/test_storage.py tests/aio/test_strategy.py \
	tests/aio/test_storage.py tests/integration/test_concurrency.py
LIMITS_PYTEST = PYTHONPATH=$(CURDIR)/tests $(abspath $(PY)) -m pytest -q \
	-c $(CURDIR)/tests/limits_suite.ini --rootdir . --noconftest -p limits_plugin
# Their timing-bound tests (a few round trips within 30 ms of a computed time) can fail on a
# loaded machine even after the reruns their `flaky` marks get. Then the failed tests, and only
# they, run once more, and the output says which; never when a concurrency test failed (exactly
# the limit from 100 threads: a failure there is a failure) nor when more than 5 failed.
LIMITS_RERUN_OK = import json, sys; failed = list(json.load(open('.pytest_cache/v/cache/lastfailed'))); \
	ok = 0 < len(failed) <= 5 and not any('integration/' in t for t in failed); \
	print('limits-suite: ' + ('a second run of only the tests that failed:' if ok else \
	'no second run for these failures:'), *failed, sep='\n  '); sys.exit(not ok)

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

# Unpacked into a directory of this run's own: runs from other checkouts share the cache.
limits-suite: local-engine $(LIMITS_SDIST)
	run=$$(mktemp -d) && trap 'rm -rf "$$run"' EXIT && \
	tar xzf $(LIMITS_SDIST) -C "$$run" --strip-components=1 limits-$(LIMITS_VERSION)/tests && \
	cd "$$run" && { $(LIMITS_PYTEST) $(LIMITS_TESTS) || { \
		$(abspath $(PY)) -c "$(LIMITS_RERUN_OK)" && \
		$(LIMITS_PYTEST) --last-failed --last-failed-no-failures none $(LIMITS_TESTS); }; }

# The fast part only (skips the slow fault matrix and model-based tests).
test-fast: local-engine
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -q -m 'not slow'

# For maintainers: re-measure every figure the README shows (docs/figures.json, then the README's
# marked blocks; about 8 minutes). tests/test_readme.py checks the README against that file.
readme-figures: local-engine
	$(PY) benchmarks/readme_figures.py

clean:
	rm -rf $(VENV) counter-report .pytest_cache .mypy_cache .ruff_cache
