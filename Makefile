# jutsu-pipeline: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/data/dagster_home
export JUTSU_CONFIG ?= $(CURDIR)/jutsu.yaml

.PHONY: demo test dev install bench coverage clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## Sync every missing partition of the sample market into data/jutsu.duckdb, then print coverage.
demo: $(STAMP)
	$(BIN)/jutsu sync
	$(BIN)/jutsu coverage
	$(BIN)/jutsu leaderboard

## Run the test suite.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

## The Dagster UI on http://127.0.0.1:3000 with the same instance as `make demo`.
dev: $(STAMP)
	$(BIN)/python -m jutsu_pipeline.instance
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

coverage: $(STAMP)
	$(BIN)/jutsu coverage

## Benchmarks (print side-by-side ratios; figures go to docs/performance.md).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) data/jutsu.duckdb data/jutsu.duckdb.wal
	find data/dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
