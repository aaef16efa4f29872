"""Partitioned OHLCV bars assets, one per market × timeframe."""

from jutsu_pipeline.assets.bars.assets import build_bars_asset

__all__ = ["build_bars_asset"]
