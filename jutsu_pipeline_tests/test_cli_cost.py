"""What the cheap paths load: `jutsu coverage` reads the DuckDB file without Dagster or the market
libraries; reading the configuration and a `jutsu sync` with nothing to do import none of the market
libraries; definitions with coarse grains never build an exchange calendar (structural, no timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jutsu_pipeline_tests.conftest import DEFAULT_GRAIN_MARKET, fresh_home, write_config

REPO = Path(__file__).parents[1]
# Each import was measured on the way of a cheap path (`python -X importtime`, docs/performance.md).
MARKET_LIBRARIES = ("pandas", "polars", "numpy", "pyarrow", "talib", "pandera", "exchange_calendars", "httpx",
                    "tenacity", "matplotlib")
HEAVY = ("dagster", "sqlalchemy", *MARKET_LIBRARIES)
PROBE = """
import json, sys
from jutsu_pipeline.cli import main
code = main(sys.argv[1:])
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.stdin.readline())))
print(json.dumps({"code": code, "loaded": loaded}))
"""


def _probe(tmp_path: Path, config: Path, *args: str) -> tuple[dict, str, str]:
    env = {**os.environ, "JUTSU_CONFIG": str(config)}
    result = subprocess.run([sys.executable, "-c", PROBE, *args], input=json.dumps(HEAVY) + "\n", env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    *printed, last = result.stdout.strip().splitlines()
    return json.loads(last), "\n".join(printed), result.stderr


def test_coverage_reads_the_file_without_dagster_or_market_libraries(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"us_stocks": DEFAULT_GRAIN_MARKET})
    import duckdb

    with duckdb.connect(str(tmp_path / "jutsu.duckdb")) as con:  # a stored coverage view, as a sync leaves it
        con.execute("CREATE TABLE bars AS SELECT 'IBM' AS symbol, '1d' AS timeframe, TIMESTAMPTZ '2012-01-03' AS ts")
        con.execute("CREATE VIEW coverage AS SELECT symbol, timeframe, min(ts) AS first_ts, max(ts) AS last_ts, "
                    "count(*) AS bars, 'sample' AS source FROM bars GROUP BY ALL")
    outcome, printed, _ = _probe(tmp_path, config, "coverage")
    assert outcome == {"code": 0, "loaded": []}, outcome
    assert "IBM" in printed and "2012-01-03" in printed
    for command in ("leaderboard", "sql"):  # the same light path; a missing table is a one-line message
        outcome, _, _ = _probe(tmp_path, config, *((command,) if command == "leaderboard" else (command, "SELECT 1")))
        assert outcome["loaded"] == [], (command, outcome)


@pytest.mark.parametrize("storage", [None, {"kind": "duckdb", "path": "elsewhere.duckdb"}])
def test_coverage_finds_the_configured_file_without_validating_markets(tmp_path: Path, storage: dict | None) -> None:
    config = write_config(tmp_path, {"us_stocks": DEFAULT_GRAIN_MARKET}, storage=storage)
    outcome, _, error = _probe(tmp_path, config, "coverage")
    assert outcome == {"code": 1, "loaded": []}  # the file does not exist yet: said once, nothing heavy loaded
    name = "elsewhere.duckdb" if storage else "jutsu.duckdb"
    assert f"{tmp_path / name} does not exist yet" in error and not (tmp_path / name).exists()


def test_definitions_of_a_large_minute_market_build_no_long_exchange_calendar(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """500 symbols x 10 years of 1m bars (default grain: quarters): the partitions definition needs only
    the exchange's timezone, the close schedule its regular close and weekdays, all read from the calendar
    class; the freshness policy builds only the calendar's last ~2.7 years. Ten years of holiday rules are
    computed only when a run asks for sessions."""
    import exchange_calendars as xc

    from jutsu_pipeline.calendars import _exchange_calendar
    from jutsu_pipeline.config import load_config
    from jutsu_pipeline.definitions import bars_partitionings, build_definitions

    market = {"provider": "sample", "calendar": "XNYS", "timeframes": ["1m"], "start": "2015-01-02",
              "end": "2024-12-31", "symbols": [f"S{i:03d}" for i in range(500)]}
    config = load_config(write_config(tmp_path, {"big": market}))
    built: list[int] = []
    real = xc.get_calendar

    def spy(name: str, start, end):  # noqa: ANN001, ANN202
        built.append((end - start).days)
        return real(name, start=start, end=end)

    monkeypatch.setattr(xc, "get_calendar", spy)
    monkeypatch.setenv("JUTSU_CACHE_DIR", str(tmp_path / "cache"))  # built here, not read from an earlier test's cache
    _exchange_calendar.cache_clear()
    try:
        defs = build_definitions(config)
        defs.get_repository_def()  # what a code server resolves: jobs, schedules, sensors, the asset graph
    finally:
        _exchange_calendar.cache_clear()
    assert built and max(built) <= 1000, built
    [partitioning] = bars_partitionings(config)
    assert len(partitioning.all_partition_keys()) == 500 * 40  # ten years of quarters
    schedule = next(s for s in defs.get_repository_def().schedule_defs if s.name.startswith("big_bars_1m"))
    assert schedule.execution_timezone == "America/New_York"


def test_reading_the_configuration_imports_no_market_library(tmp_path: Path) -> None:
    """Every provider's options, indicators and strategies are validated from tables and pydantic models:
    TA-Lib, pandas, polars, httpx, tenacity, exchange_calendars, DuckDB and Dagster load only when used."""
    daily = {"timeframes": ["1d"], "start": "2020-01-02", "end": "2020-12-31"}
    markets = {
        "stocks": {**daily, "provider": "files", "options": {"path": "csv"}, "calendar": "XNYS", "symbols": ["IBM"],
                   "indicators": {"sma_period": 10}, "strategies": [
                       {"name": "cross", "type": "sma_cross", "params": {"fast": 5, "slow": 20}},
                       {"name": "rsi", "type": "rsi_reversion"}, {"name": "bands", "type": "bollinger_reversion"}]},
        "crypto": {**daily, "provider": "binance", "options": {"market": "usdm_futures", "http": {"burst": 2}},
                   "calendar": "24/7", "symbols": ["BTCUSDT"]},
        "alpaca": {**daily, "provider": "alpaca", "options": {"feed": "iex"}, "calendar": "XNAS", "symbols": ["AAPL"]},
        "yahoo": {**daily, "provider": "yahoo", "calendar": "XTKS", "symbols": ["7203.T"]},
        "schwab": {**daily, "provider": "schwab", "calendar": "XNYS", "symbols": ["MSFT"]},
        "sample": {**daily, "provider": "sample", "calendar": "NYSE", "symbols": ["GOOG"]},
    }
    config = write_config(tmp_path, markets)
    probe = ("import json, sys\nfrom jutsu_pipeline.config import load_config\nconfig = load_config(sys.argv[1])\n"
             "print(json.dumps([len(config.markets), sorted({n.split('.')[0] for n in sys.modules} & set(sys.argv[2:]))]))")
    result = subprocess.run([sys.executable, "-c", probe, str(config), *HEAVY, "duckdb"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [6, []]


def test_a_sync_with_nothing_to_do_imports_no_market_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Steady state (everything stored and computed, Dagster's automation evaluated once since): the plan
    reads the instance's partition status with Dagster and SQLAlchemy only; the configuration, the
    partitions' timezone and the downstream decision need no market library and no definitions."""
    market = {**DEFAULT_GRAIN_MARKET, "start": "2012-01-03", "end": "2012-02-29", "symbols": ["IBM"]}
    config = write_config(tmp_path, {"us_stocks": market})
    home = fresh_home(tmp_path, (REPO / "data" / "dagster_home" / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the probe's instance (the shipped instance class)
    from jutsu_pipeline.cli import run_sync
    from jutsu_pipeline.config import load_config
    from jutsu_pipeline.definitions import build_definitions
    from jutsu_pipeline.instance import open_instance

    loaded = load_config(config)
    defs, instance = build_definitions(loaded), open_instance(home)
    assert run_sync(loaded, defs, instance) == 0  # stores the bars, then what Dagster's automation requests
    assert run_sync(loaded, defs, instance) == 0  # evaluates once more: requests nothing, which is remembered
    instance.dispose()
    outcome, printed, _ = _probe(tmp_path, config, "sync")
    assert outcome == {"code": 0, "loaded": ["dagster", "sqlalchemy"]}, outcome
    assert "nothing to fetch" in printed and "Downstream (indicators, backtests, leaderboards): up to date." in printed


# What runs inside an asset, check or run, never while the definitions build.
ENGINES = ("jutsu_pipeline.sync.engine", "jutsu_pipeline.quality.stored", "jutsu_pipeline.quality.expressions",
           "jutsu_pipeline.indicators.compute", "jutsu_pipeline.backtest.runner", "jutsu_pipeline.report.page",
           "jutsu_pipeline.derive.engine", "jutsu_pipeline.providers.base")


def test_building_the_definitions_imports_no_engine(tmp_path: Path) -> None:
    """As a code server loads them: the sync engine, the checks' logic, pandera, polars, TA-Lib, httpx and
    the charts load inside the assets' bodies. (pandas and exchange_calendars do load: the bars assets'
    freshness policy reads the calendar's recent sessions.)"""
    minute = {"provider": "files", "options": {"path": "csv"}, "calendar": "XNYS", "timeframes": ["1m"],
              "derive": ["1h"], "start": "2015-01-02", "end": "2024-12-31",
              "symbols": [f"S{i:03d}" for i in range(500)]}
    daily = {**DEFAULT_GRAIN_MARKET, "strategies": [{"name": "cross", "type": "sma_cross",
                                                     "params": {"fast": 5, "slow": 20}}]}
    config = write_config(tmp_path, {"big": minute, "us_stocks": daily})
    probe = ("import json, sys\nfrom jutsu_pipeline.definitions import defs\nrepository = defs.get_repository_def()\n"
             "print(json.dumps([len(repository.assets_defs_by_key), "
             "sorted(n for n in sys.argv[1:] if n in sys.modules or n in {m.split('.')[0] for m in sys.modules})]))")
    heavy = ("polars", "pandera", "talib", "httpx", "matplotlib")
    result = subprocess.run([sys.executable, "-c", probe, *heavy, *ENGINES], cwd=tmp_path,
                            env={**os.environ, "JUTSU_CONFIG": str(config)}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assets, loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert assets >= 8 and loaded == [], loaded  # bars, derived, actions, indicators, backtests, leaderboard, report
