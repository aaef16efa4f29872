"""Backtests equal to backtesting.py 0.6.6: strategies as data, vectorised fills, SQL statistics.

Names load on first use, so reading the configuration (which needs only `StrategyConfig`) does not
import polars, DuckDB and the engine (`jutsu coverage` stays fast).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "BacktestResult": "runner", "backtest_bars": "runner", "run_backtests": "runner",
    "STAT_COLUMNS": "stats", "StrategyConfig": "strategies",
}
__all__ = ["STAT_COLUMNS", "BacktestResult", "StrategyConfig", "backtest_bars", "run_backtests"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
