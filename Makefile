# The two commands a newcomer needs: `make run` and `make test`. Everything else is a tier of those.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest

.PHONY: help install run demo test lint test-unit test-service test-contract test-integration test-e2e test-browser test-fast verify bench lock clean-stack

help:
	@echo "make run     start PostgreSQL, the broker, all seven services and the dashboard (Ctrl-C stops everything)"
	@echo "make demo    bill a sandbox MSP's month end to end, print its invoices (DEMO_ARGS=--stop to stop after)"
	@echo "make test    lint, type-check and run every test tier against the real embedded stack"
	@echo "make bench   end-to-end throughput / latency against a raw aiokafka + COPY baseline"
	@echo "make verify  the long checks: SEEDS=20 simulated MSPs, 3 months each, invoices against the reference model"
	@echo "tiers: test-unit test-service test-contract test-integration test-e2e test-browser; lint"

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[local,dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/msp run

# Uses a running `make run` stack, else starts one and keeps it running until Ctrl-C (DEMO_ARGS=--stop).
demo: $(STAMP)
	$(BIN)/msp demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services

test-unit: $(STAMP)
	$(PYTEST) tests/unit -q

test-service: $(STAMP)
	$(PYTEST) tests/service -q

test-contract: $(STAMP)
	$(PYTEST) tests/contract -q

test-integration: $(STAMP)
	$(PYTEST) tests/integration -q

test-e2e: $(STAMP)
	$(PYTEST) tests/e2e -q

# Headless Chromium (Debian's `chromium` package) against the whole platform; screenshots in build/screenshots/.
test-browser: $(STAMP)
	$(PYTEST) tests/browser -q

test-fast: $(STAMP)
	$(PYTEST) tests/unit tests/service tests/contract -q

# One pytest session for every tier, so the embedded stack starts once.
test: lint
	$(PYTEST) tests -q -p no:cacheprovider --durations=25

# The long checks. The simulator (tests/simulation): SEEDS seeded MSP scenarios through the real stack, every
# invoice against the reference model of docs/billing-rules.md (SEED_BASE=<seed> SEEDS=1 reruns one). The fuzz
# tier (tests/fuzz): FUZZ_EXAMPLES requests per operation of every service's OpenAPI document, none may get a 5xx
# or an undocumented answer. The chaos tier (tests/chaos): CHAOS_RECORDS records per seed of CHAOS_SEEDS while
# CHAOS_FAULTS kills, graceful restarts and replicas hit the consuming services; 0 lost, 0 doubled.
SEEDS ?= 20
FUZZ_EXAMPLES ?= 50
CHAOS_RECORDS ?= 50000
CHAOS_FAULTS ?= 30
CHAOS_SEEDS ?= 1,2,3
verify: $(STAMP)
	SIM_SEEDS=$(SEEDS) $(if $(SEED_BASE),SIM_SEED_BASE=$(SEED_BASE)) $(PYTEST) tests/simulation -q -s -p no:cacheprovider
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PYTEST) tests/fuzz -q -p no:cacheprovider
	CHAOS_RECORDS=$(CHAOS_RECORDS) CHAOS_FAULTS=$(CHAOS_FAULTS) CHAOS_SEED=$(CHAOS_SEEDS) $(PYTEST) tests/chaos -q -s -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m tests.bench.pipeline
	$(BIN)/python -m tests.bench.invoicing

lock:
	rm -rf .lock-venv && $(PY) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet ".[local,dev]"
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^msp-billing' > requirements.lock
	rm -rf .lock-venv

clean-stack:
	rm -rf .local
