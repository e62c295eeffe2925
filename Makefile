# Rapport — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check lint typecheck contracts unit integration e2e bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Start the whole stack on the embedded default (PostgreSQL + Kafka-protocol broker + 3 services).
run: $(STAMP)
	$(BIN)/rapport dev

## Static checks, then the whole suite against real PostgreSQL and a real broker.
test: check
	$(BIN)/pytest -q -p no:cacheprovider tests

check: lint typecheck contracts

lint: $(STAMP)
	$(BIN)/ruff check shared services rapport tests
	$(BIN)/ruff format --check shared services rapport tests

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

## Throughput and latency, measured on this machine (not part of `make test`).
bench: $(STAMP)
	$(BIN)/python -m rapport.bench

clean:
	rm -rf $(VENV) .rapport .mypy_cache .ruff_cache .pytest_cache
