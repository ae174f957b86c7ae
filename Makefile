# Every target installs what it needs on first use: a clean clone needs only python3 (3.11+).
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-browser browser-deps lint format serve demo bench bench-deps bench-api test-bench-api clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml packages/clearhouse-client/pyproject.toml uv.lock
	UV_PYTHON_DOWNLOADS=never $(UV) sync --frozen --python $(PYTHON)
	touch $(STAMP)

install: $(STAMP)

# Everything but the tests that need a browser and an office suite from Debian.
test: $(STAMP)
	$(BIN)/pytest --ignore=tests/browser --ignore=tests/print --ignore=tests/bench/test_api_bench_run.py

# Debian's Chromium (the console, driven by Playwright) and LibreOffice (workbooks printed to
# PDF), installed when missing: this needs root and Debian's package mirror.
DEBIAN_PACKAGES := chromium libreoffice-calc-nogui poppler-utils fonts-dejavu-core
browser-deps:
	@if ! command -v chromium >/dev/null || ! command -v soffice >/dev/null || ! command -v pdftoppm >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEBIAN_PACKAGES); \
	fi

test-browser: $(STAMP) browser-deps
	$(BIN)/pytest tests/browser $(wildcard tests/print)

lint: $(STAMP)
	$(BIN)/ruff check src packages tests
	$(BIN)/ruff format --check src packages tests
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src packages tests
	$(BIN)/ruff check --fix src packages tests

# A sandbox coalition (settable clock, published master key): for trying Clearhouse out.
serve: $(STAMP)
	CLEARHOUSE_SANDBOX=1 $(BIN)/clearhouse db upgrade
	CLEARHOUSE_SANDBOX=1 $(BIN)/clearhouse serve

# A whole coalition month on the embedded PostgreSQL, from a clean start; see the README.
demo: $(STAMP)
	CLEARHOUSE_SANDBOX=1 $(BIN)/clearhouse demo

bench: $(STAMP)
	$(BIN)/clearhouse bench ledger

# wrk from Debian, the compiled load generator that replays bench api's pre-signed requests,
# installed when missing: this needs root and Debian's package mirror.
BENCH_PACKAGES := wrk
bench-deps:
	@if ! command -v wrk >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(BENCH_PACKAGES); \
	fi

# The signed API under wrk and under the Python client, beside pgbench: a few minutes.
bench-api: $(STAMP) bench-deps
	$(BIN)/clearhouse bench api

# The API benchmark run end to end at its smallest, with wrk.
test-bench-api: $(STAMP) bench-deps
	$(BIN)/pytest tests/bench -k api_bench

clean:
	rm -rf $(VENV) $(TOOLS)
