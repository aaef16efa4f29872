"""`jutsu sync` plans what Dagster would: failed partitions are retried, held-back symbols are named, a
re-materialisation from another path makes its symbol stale, and a moved `end` re-syncs its window."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import dagster as dg
import exchange_calendars as xc
import polars as pl
import pytest

from jutsu_pipeline import cli
from jutsu_pipeline.config import load_config
from jutsu_pipeline.definitions import build_definitions
from jutsu_pipeline.status import partition_status
from jutsu_pipeline.sync.planner import plan_sync
from jutsu_pipeline_tests.conftest import query, write_config
from jutsu_pipeline_tests.helpers import partitioning

SYMBOLS = ["AAA", "BBB", "CCC"]
BARS = dg.AssetKey(["desk", "bars_1d"])
INDICATORS = dg.AssetKey(["desk", "indicators_1d"])
BACKTEST = dg.AssetKey(["desk", "backtest_1d"])
STRATEGY = {"name": "sma_5_20", "type": "sma_cross", "params": {"fast": 5, "slow": 20}}


def _write_bars(folder: Path, symbol: str, start: str, end: str, *, bad_day: str | None = None,
                bump: float = 0.0) -> None:
    sessions = xc.get_calendar("XNYS", start="2023-01-01").sessions_in_range(start, end)
    base = 50 + 10 * SYMBOLS.index(symbol)
    closes = [base + 5 * math.sin(i / 4) + i * 0.05 for i in range(len(sessions))]
    if bump:
        closes[10] += bump
    rows = []
    for day, close in zip(sessions, closes, strict=True):
        high, low = close + 1, close - 1
        if bad_day and day.strftime("%Y-%m-%d") == bad_day:
            high, low = low, high  # high below low: an invalid bar
        rows.append((day.strftime("%Y-%m-%d"), close - 0.2, high, low, close, 1000))
    pl.DataFrame(rows, schema=["date", "open", "high", "low", "close", "volume"], orient="row").write_csv(
        folder / f"{symbol}.csv")


@pytest.fixture
def desk(tmp_path: Path):  # noqa: ANN201
    files = tmp_path / "csv"
    files.mkdir()
    for symbol in SYMBOLS:
        _write_bars(files, symbol, "2024-01-02", "2024-03-28")

    def build(end: str = "2024-03-28"):  # noqa: ANN202
        market = {"provider": "files", "options": {"path": str(files)}, "calendar": "XNYS", "timeframes": ["1d"],
                  "start": "2024-01-02", "end": end, "symbols": SYMBOLS, "strategies": [STRATEGY],
                  "partition_grain": {"1d": "year"}}
        config = load_config(write_config(tmp_path, {"desk": market}))
        return config, build_definitions(config)

    return files, build


@pytest.fixture
def instance(persistent_instance):  # noqa: ANN001, ANN201 - partition status needs an on-disk instance
    return persistent_instance


def _indicator_symbols(config) -> list[str]:  # noqa: ANN001
    return [r[0] for r in query(config, "SELECT DISTINCT symbol FROM indicators ORDER BY symbol")]


def test_unknown_market_or_timeframe_is_an_error_listing_the_valid_ones(desk, monkeypatch, capsys) -> None:
    _, build = desk
    config, _ = build()
    monkeypatch.setenv("JUTSU_CONFIG", str(config.source_path))
    assert cli.main(["sync", "--market", "us_stock"]) == 2
    assert "unknown market 'us_stock' (--market): the configuration has desk" in capsys.readouterr().err
    assert cli.main(["sync", "--market", "desk", "--timeframe", "5m"]) == 2
    assert "unknown timeframe '5m' (--timeframe): market desk has 1d" in capsys.readouterr().err


class _Loader:
    """Definitions handed to `run_sync` as `jutsu sync` does: loaded only when asked for (counted)."""

    def __init__(self, defs: dg.Definitions) -> None:
        self.defs, self.loads = defs, 0

    def __call__(self) -> dg.Definitions:
        self.loads += 1
        return self.defs


def test_sync_stores_computes_and_then_has_nothing_to_do(desk, instance, capsys) -> None:
    _, build = desk
    config, defs = build()
    assert cli.run_sync(config, defs, instance) == 0
    assert _indicator_symbols(config) == SYMBOLS
    assert instance.get_materialized_partitions(BACKTEST) == set(SYMBOLS)
    for attempt in range(2):  # the first evaluates (requesting nothing); the second knows nothing happened since
        capsys.readouterr()
        loader = _Loader(defs)
        assert cli.run_sync(config, loader, instance) == 0
        out = capsys.readouterr().out
        assert "all 3 partitions are materialised and final; nothing to fetch" in out
        assert "Downstream (indicators, backtests, leaderboards): up to date." in out
        assert loader.loads == (1 if attempt == 0 else 0), attempt
    # Another configuration may mean other definitions: evaluated again, though no event was recorded.
    config.source_path.write_text(config.source_path.read_text() + "report_bars: 100\n")
    loader = _Loader(defs)
    assert cli.run_sync(load_config(config.source_path), loader, instance) == 0
    assert loader.loads == 1 and "Downstream (indicators, backtests, leaderboards): up to date." in capsys.readouterr().out


@pytest.mark.slow  # several `jutsu sync`s with their downstream runs (end-to-end, ~15 s)
def test_a_failed_partition_holds_back_only_its_symbol_and_is_retried(desk, instance, capsys) -> None:
    files, build = desk
    _write_bars(files, "BBB", "2024-01-02", "2024-03-28", bad_day="2024-02-14")
    config, defs = build()
    assert cli.run_sync(config, defs, instance) == 1
    out = capsys.readouterr().out
    assert "desk/bars_1d: BBB held back (its indicators and backtests are not computed): " \
           "1 bars partition(s) failed (first: 2024-01-01|BBB)" in out
    assert "AAA held back" not in out and "CCC held back" not in out
    assert _indicator_symbols(config) == ["AAA", "CCC"]
    assert instance.get_materialized_partitions(INDICATORS) == {"AAA", "CCC"}
    assert instance.get_materialized_partitions(BACKTEST) == {"AAA", "CCC"}
    # Nothing left to compute downstream, yet not "up to date": BBB is still held back.
    assert cli.run_sync(config, defs, instance) == 1
    out = capsys.readouterr().out
    assert "Downstream (indicators, backtests, leaderboards): up to date except the symbols held back below." in out
    assert "up to date.\n" not in out and "desk/bars_1d: BBB held back" in out

    _write_bars(files, "BBB", "2024-01-02", "2024-03-28")  # the source is fixed
    assert cli.run_sync(config, defs, instance) == 0
    out = capsys.readouterr().out
    assert "1 of 3 partitions to sync in 1 run(s)" in out and "to sync: 1 failed." in out
    assert _indicator_symbols(config) == SYMBOLS
    assert instance.get_materialized_partitions(BACKTEST) == set(SYMBOLS)


@pytest.mark.slow  # several `jutsu sync`s with their downstream runs (end-to-end, ~15 s)
def test_a_rematerialisation_from_another_path_makes_that_symbol_stale(desk, instance, capsys) -> None:
    files, build = desk
    config, defs = build()
    assert cli.run_sync(config, defs, instance) == 0
    assert cli.run_sync(config, defs, instance) == 0  # nothing to do: remembered as quiet
    before = query(config, "SELECT symbol, sma_20 FROM indicators WHERE ts = '2024-03-28' ORDER BY symbol")
    # The user re-materialises AAA's window with changed data, as `dagster asset materialize` would.
    frame = pl.read_csv(files / "AAA.csv").with_columns(pl.col("close", "open", "high", "low") * 2)
    frame.write_csv(files / "AAA.csv")
    job = defs.resolve_job_def("sync_desk_bars_1d")
    assert job.execute_in_process(instance=instance, partition_key="2024-01-01|AAA").success
    capsys.readouterr()
    loader = _Loader(defs)
    assert cli.run_sync(config, loader, instance) == 0
    out = capsys.readouterr().out
    assert loader.loads and "desk/indicators_1d: computing AAA...AAA." in out
    after = query(config, "SELECT symbol, sma_20 FROM indicators WHERE ts = '2024-03-28' ORDER BY symbol")
    assert after[0][1] == pytest.approx(2 * before[0][1]) and after[1:] == before[1:]


@pytest.mark.slow  # several `jutsu sync`s with their downstream runs (end-to-end, ~15 s)
def test_a_moved_end_inside_a_stored_window_resyncs_it(desk, instance, capsys) -> None:
    _, build = desk
    config, defs = build(end="2024-03-15")
    assert cli.run_sync(config, defs, instance) == 0
    assert query(config, "SELECT max(ts)::DATE FROM bars") == [(dt.date(2024, 3, 15),)]
    config, defs = build(end="2024-03-28")  # one more fortnight, inside the same (yearly) window
    p = partitioning(config, "desk")
    plan = plan_sync(p, partition_status(instance, BARS, p), dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    assert plan.moved == ["2024-01-01|AAA", "2024-01-01|BBB", "2024-01-01|CCC"] and plan.missing == []
    assert [r.tail for r in plan.ranges] == [True]  # only the end moved: fetch after the last stored bar
    capsys.readouterr()
    assert cli.run_sync(config, defs, instance) == 0
    assert "to sync: 3 window moved." in capsys.readouterr().out
    assert query(config, "SELECT max(ts)::DATE, count(*) FROM bars") == [(dt.date(2024, 3, 28), 3 * 61)]
