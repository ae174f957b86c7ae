# Every target installs what it needs on first use: a clean clone needs only python3 (3.11+).
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint format serve demo bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml packages/clearhouse-client/pyproject.toml uv.lock
	UV_PYTHON_DOWNLOADS=never $(UV) sync --frozen --python $(PYTHON)
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

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

clean:
	rm -rf $(VENV) $(TOOLS)
