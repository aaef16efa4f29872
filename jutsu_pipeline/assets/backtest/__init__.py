"""Backtests per symbol and a per-market leaderboard, computed in DuckDB."""
