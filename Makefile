# One target per habit. uv is bootstrapped with pip into .tools/ when it is not on PATH, and always
# uses this machine's Python (a managed-Python download cannot work offline).
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --locked --no-sync

.PHONY: help install postgres chromium prometheus demo test test-fast lint format typecheck bench clean

help:
	@echo "make demo | test | lint | format | bench | clean"

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet --disable-pip-version-check uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --all-extras
	@touch $@

install: .venv/.synced

# The PostgreSQL server binaries the tests start a throwaway server from (apt; needs root or sudo).
postgres:
	scripts/install-postgres

# Debian's Chromium, which the dashboard's browser test drives through Playwright (apt; root or sudo).
chromium:
	scripts/install-chromium

# Debian's Prometheus, which the Prometheus gate's tests start a throwaway server from (apt; root
# or sudo).
prometheus:
	scripts/install-prometheus

demo: install
	$(RUN) baton demo

# Tests run in parallel (pytest-xdist), each worker with its own dev server and model server.
# Most of a test's time is waiting on servers, so four workers fill two cores (measured: 3 workers
# 584 s, 4 workers 536 s, 5 workers no better: the run is CPU-bound). xdist hands tests out one at
# a time, longest first (tests/conftest.py).
TEST_WORKERS ?= 4
PYTEST_PARALLEL = -n $(TEST_WORKERS) --dist load --maxschedchunk 1

test: install
	$(RUN) pytest $(PYTEST_PARALLEL)

test-fast: install
	$(RUN) pytest $(PYTEST_PARALLEL) -m "not integration"

lint: install
	$(RUN) ruff check src tests bench examples
	$(RUN) ruff format --check src tests bench examples
	$(RUN) mypy src
	@$(RUN) python -c 'import tomllib; c = tomllib.load(open("pyproject.toml", "rb"))["tool"]["importlinter"]["contracts"][0]; print("layers, top to bottom: " + c["name"]); print("\n".join("  " + layer for layer in c["layers"]))'
	$(RUN) lint-imports --no-cache --no-logo

format: install
	$(RUN) ruff format src tests bench examples
	$(RUN) ruff check --fix src tests bench examples

bench: install
	$(RUN) python bench/latency.py
	$(RUN) python bench/throughput.py
	$(RUN) python bench/replay.py
	$(RUN) python bench/canary.py
	$(RUN) python bench/gates.py
	$(RUN) python bench/shadow.py
	$(RUN) python bench/drain.py
	$(RUN) python bench/overhead.py

clean:
	rm -rf .venv .tools .modelbaton .pytest_cache .mypy_cache .ruff_cache
