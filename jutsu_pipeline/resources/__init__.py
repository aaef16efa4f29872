"""Dagster resources: one per external system (the DuckDB file, the market-data providers)."""

from jutsu_pipeline.resources.duckdb import DuckDBLockedError, JutsuDuckDBResource
from jutsu_pipeline.resources.market_data import MarketDataResource

__all__ = ["DuckDBLockedError", "JutsuDuckDBResource", "MarketDataResource"]
