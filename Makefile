# Rapport — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check lint typecheck contracts unit integration e2e bench install clean chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Start the whole stack on the embedded default (PostgreSQL + Kafka-protocol broker + 3 services).
run: $(STAMP)
	$(BIN)/rapport dev

## Headless Chromium for the report's screenshot check: from Debian's packages when missing
## (these machines run as root), so that check runs everywhere and is never skipped.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium (Debian package, about two minutes)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq >/dev/null && \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	}
	@command -v chromium >/dev/null 2>&1 || { echo "error: chromium could not be installed" >&2; exit 1; }

## Static checks, then the whole suite against real PostgreSQL and a real broker.
test: check chromium
	$(BIN)/pytest -q -p no:cacheprovider tests

check: lint typecheck contracts

lint: $(STAMP)
	$(BIN)/ruff check shared services rapport tools tests
	$(BIN)/ruff format --check shared services rapport tools tests

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

## Throughput, latency, lag and replay, measured on this machine (not part of `make test`);
## writes bench.json. BENCH_ARGS passes options, e.g. BENCH_ARGS="--project ../other-tree".
bench: $(STAMP)
	$(BIN)/python -m tools.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .rapport .mypy_cache .ruff_cache .pytest_cache
