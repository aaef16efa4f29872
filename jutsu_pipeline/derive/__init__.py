"""Derived timeframes: higher-timeframe bars computed in DuckDB from the stored base bars (the engine's
names load on first use: the definitions need only `derived_source`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jutsu_pipeline.lazy import lazy_names

if TYPE_CHECKING:
    from jutsu_pipeline.timeframes import Timeframe

__all__ = ["DeriveOutcome", "derive_partitions", "derived_source"]


def derived_source(base: Timeframe) -> str:
    """The `source` of bars derived from `base` bars, e.g. `derived:1m`."""
    return f"derived:{base.value}"


__getattr__ = lazy_names(__name__, dict.fromkeys(("DeriveOutcome", "derive_partitions"), "engine"))
