# jutsu-pipeline: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed-runtime
TEST_STAMP := $(VENV)/.installed-test
# Your own JUTSU_CONFIG / DAGSTER_HOME win (made absolute, as Dagster requires). Without DAGSTER_HOME the
# instance is the config's `dagster_home` (data/dagster_home): `jutsu` reads it from the config, and
# `dagster`/`dg` run from this folder find it in .env (written below).
export JUTSU_CONFIG := $(abspath $(or $(JUTSU_CONFIG),jutsu.yaml))
ifdef DAGSTER_HOME
export DAGSTER_HOME := $(abspath $(DAGSTER_HOME))
endif

.PHONY: demo test test-slow test-all dev install bench coverage report clean lint typecheck

# The runtime dependencies only: what `make demo` and `make dev` need.
$(RUNTIME_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Plus the test extras (reference oracles TA-Lib and backtesting.py, pytest, dagster-postgres).
$(TEST_STAMP): $(RUNTIME_STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# DAGSTER_HOME for `dagster ...` and `dg ...` run from this folder (Dagster loads ./.env); yours wins.
.env: $(RUNTIME_STAMP) $(JUTSU_CONFIG)
	$(BIN)/jutsu env --write .env

## Everything a developer needs (runtime and test dependencies).
install: $(TEST_STAMP) .env

## Sync every missing partition of the sample market into data/jutsu.duckdb (with everything downstream,
## the HTML report included), then print coverage and the leaderboard.
demo: $(RUNTIME_STAMP) .env
	$(BIN)/jutsu sync
	$(BIN)/jutsu coverage
	$(BIN)/jutsu leaderboard

## The test suite without the slow end-to-end tests (target: under 2 minutes on 2 busy cores).
test: $(TEST_STAMP) .env
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q -m "not slow"

## The slow end-to-end tests: dagster dev, the CLI in subprocesses, whole histories, a fresh clone running the
## README, headless Chromium.
test-slow: $(TEST_STAMP) .env
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q -m slow

## Lint with ruff (the package, the fake exchange, the tests and the benchmarks), then type-check (run by .ci/run).
lint: $(TEST_STAMP) typecheck
	$(BIN)/ruff check jutsu_pipeline jutsu_fake_exchange jutsu_pipeline_tests benchmarks

## Type-check the package with mypy and the pydantic plugin (configured in pyproject.toml).
typecheck: $(TEST_STAMP)
	$(BIN)/mypy

## Everything, as .ci/run does.
test-all: lint test test-slow

## The Dagster UI on http://127.0.0.1:3000 with the same instance as `make demo`.
dev: $(RUNTIME_STAMP) .env
	$(BIN)/python -m jutsu_pipeline.instance
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

coverage: $(RUNTIME_STAMP)
	$(BIN)/jutsu coverage

## Write each market's HTML report to data/reports/<market>/report.html.
report: $(RUNTIME_STAMP) .env
	$(BIN)/jutsu report

## Benchmarks (print side-by-side ratios; figures go to docs/performance.md).
bench: $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) data/jutsu.duckdb data/jutsu.duckdb.wal
	find data/dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
