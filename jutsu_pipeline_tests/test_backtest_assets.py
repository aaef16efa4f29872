"""Backtest and leaderboard assets through Dagster: tables, charts, ranking, metadata."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from jutsu_pipeline.assets.backtest.assets import build_leaderboard_asset
from jutsu_pipeline.backtest import backtest_bars
from jutsu_pipeline.config import load_config
from jutsu_pipeline.definitions import build_definitions
from jutsu_pipeline.resources import JutsuDuckDBResource
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, query, write_config
from jutsu_pipeline_tests.helpers import partitioning, run_backtest, run_bars, run_indicators

STRATEGIES = [
    {"name": "sma_10_30", "type": "sma_cross", "params": {"fast": 10, "slow": 30}, "sizing": "all_in",
     "fractional": False, "commission_bps": 0, "initial_cash": 10000},
    {"name": "rsi_30_70", "type": "rsi_reversion", "params": {"period": 14, "lower": 30, "upper": 70}},
]


def test_backtests_and_leaderboard(tmp_path: Path, instance) -> None:
    config = load_config(write_config(tmp_path, {"us_stocks": {**SAMPLE_MARKET, "start": "2010-01-01",
                                                               "strategies": STRATEGIES}}))
    dg.Definitions.validate_loadable(build_definitions(config))
    assert run_bars(config, instance, start="2010-01-01|AAPL", end="2013-03-01|MSFT").success
    assert run_indicators(config, instance, ["AAPL", "FB", "GOOG", "IBM", "MSFT"]).success
    result = run_backtest(config, instance, ["AAPL", "FB", "GOOG", "IBM", "MSFT"])
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["strategies_x_symbols"].value == 10
    assert "| sma_10_30 | AAPL |" in meta["results"].value

    # What is stored equals the in-memory engine on the same adjusted bars.
    bars = pl.from_arrow(_arrow(config, "SELECT symbol, ts, open, high, low, close, volume FROM bars_adjusted "
                                        "WHERE symbol = 'IBM' ORDER BY ts"))
    expected = backtest_bars(bars, config.markets["us_stocks"].strategies).trades.filter(pl.col("strategy") == "sma_10_30")
    stored = query(config, "SELECT entry_ts, exit_ts, size FROM backtest_trades WHERE symbol = 'IBM' "
                           "AND strategy = 'sma_10_30' ORDER BY entry_ts")
    assert len(stored) == expected.height > 0
    assert [r[2] for r in stored] == expected.sort("entry_ts")["size"].to_list()
    reports = tmp_path / "data" / "reports" / "us_stocks"
    assert not list(reports.glob("*.png"))  # charts are drawn for the leaderboard's best five only
    # Dagster conventions: the table, its columns as stored, the scope's row count, a data version of the bars read.
    assert meta["dagster/row_count"].value == 10
    assert "sharpe_ratio" in {c.name for c in meta["dagster/column_schema"].schema.columns}
    version = result.get_asset_materialization_events()[0].materialization.tags["dagster/data_version"]
    again = run_backtest(config, instance, ["AAPL", "FB", "GOOG", "IBM", "MSFT"])
    assert again.get_asset_materialization_events()[0].materialization.tags["dagster/data_version"] == version

    leaderboard = build_leaderboard_asset(config, [partitioning(config)])
    ranked = dg.materialize([leaderboard], instance=instance, selection=[leaderboard.key],
                            resources={"duckdb": JutsuDuckDBResource(database=str(config.database))})
    assert ranked.success
    board_meta = ranked.get_asset_materialization_events()[0].materialization.metadata
    best_five = board_meta["best_five"].value  # the five compared in one chart, then each one's chart
    assert best_five.count("data:image/png;base64,") == 6 and (reports / "best_curves.png").is_file()
    assert len(list(reports.glob("*.png"))) == 6 and board_meta["dagster/row_count"].value == 10
    assert "report.html" in best_five
    rows = query(config, "SELECT rank, sharpe_ratio FROM backtest_leaderboard ORDER BY rank")
    sharpes = [r[1] for r in rows if r[1] is not None]
    assert [r[0] for r in rows] == list(range(1, 11)) and sharpes == sorted(sharpes, reverse=True)
    assert board_meta["leaderboard"].value.startswith("| Rank | Strategy | Symbol | Sharpe")


def _arrow(config, sql: str):  # noqa: ANN001, ANN202
    import duckdb

    with duckdb.connect(str(config.database), read_only=True) as con:
        return con.sql(sql).to_arrow_table()
