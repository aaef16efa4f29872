"""Backtests per symbol and a per-market leaderboard, computed in DuckDB."""

from jutsu_pipeline.assets.backtest.assets import build_backtest_asset, build_leaderboard_asset

__all__ = ["build_backtest_asset", "build_leaderboard_asset"]
