"""Backtests equal to backtesting.py 0.6.6: strategies as data, vectorised fills, SQL statistics.

Names load on first use, so reading the configuration (which needs only `StrategyConfig`) does not
import polars, DuckDB and the engine (`jutsu coverage` stays fast).
"""

from __future__ import annotations

from jutsu_pipeline.lazy import lazy_names

_WHERE = {
    "BacktestResult": "runner", "backtest_bars": "runner", "run_backtests": "runner",
    "STAT_COLUMNS": "stats", "StrategyConfig": "strategies",
}
__all__ = ["STAT_COLUMNS", "BacktestResult", "StrategyConfig", "backtest_bars", "run_backtests"]
__getattr__ = lazy_names(__name__, _WHERE)
