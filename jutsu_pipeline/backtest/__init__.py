"""Backtests equal to backtesting.py 0.6.6: strategies as data, vectorised fills, SQL statistics."""

from jutsu_pipeline.backtest.runner import BacktestResult, backtest_bars, run_backtests
from jutsu_pipeline.backtest.stats import STAT_COLUMNS
from jutsu_pipeline.backtest.strategies import StrategyConfig

__all__ = ["STAT_COLUMNS", "BacktestResult", "StrategyConfig", "backtest_bars", "run_backtests"]
