# stripemeter: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home

.PHONY: setup browser loadgen demo test ui bench clean-data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/stripemeter demo

# Headless Chromium renders the HTML reconciliation report in the tests; it
# comes from Debian's packages when this machine can install them.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
	  echo "chromium not installed: the tests that render a page will fail"

# The suite's scratch files (warehouses, Dagster homes, landing folders) go to
# RAM when /dev/shm is writable: the tests make thousands of small DuckDB and
# SQLite commits, and waiting for a disk to sync them took a fifth of their time.
TEST_TMPDIR := $(shell [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo $${TMPDIR:-/tmp})

# The Node SDK's tests (node's own runner) start the real API server from $(VENV).
test: $(STAMP) browser
	TMPDIR=$(TEST_TMPDIR) $(BIN)/pytest -n 2 -q
	cd sdk/node && TMPDIR=$(TEST_TMPDIR) STRIPEMETER_PYTHON=$(CURDIR)/$(BIN)/python node --test test/*.test.js

$(DAGSTER_HOME)/dagster.yaml: data/config/dagster.yaml
	mkdir -p $(DAGSTER_HOME) && cp $< $@

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

# bench/api_ingest.py drives the HTTP API with `hey`, a load generator from Debian's packages.
loadgen:
	@command -v hey >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hey) >/dev/null 2>&1; } || \
	  echo "hey not installed: bench/api_ingest.py will say so"

bench: $(STAMP) loadgen
	$(BIN)/python bench/run_all.py

clean-data:
	rm -rf data/landing data/warehouse.duckdb* data/analytics.duckdb* data/reports
	rm -rf data/dagster_home
