"""Derived timeframes: higher-timeframe bars computed in DuckDB from the stored base bars."""

from jutsu_pipeline.derive.engine import DeriveOutcome, derive_partitions, derived_source

__all__ = ["DeriveOutcome", "derive_partitions", "derived_source"]
