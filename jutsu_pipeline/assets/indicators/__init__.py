"""Technical indicators per symbol, recomputed from the symbol's bars in DuckDB."""

from jutsu_pipeline.assets.indicators.assets import build_indicators_asset

__all__ = ["build_indicators_asset"]
