"""Derived timeframes: higher-timeframe bars computed in DuckDB from the stored base bars.

The engine's names load on first use: the definitions need only `derived_source` (the engine imports polars).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jutsu_pipeline.timeframes import Timeframe

__all__ = ["DeriveOutcome", "derive_partitions", "derived_source"]


def derived_source(base: Timeframe) -> str:
    """The `source` of bars derived from `base` bars, e.g. `derived:1m`."""
    return f"derived:{base.value}"


def __getattr__(name: str) -> Any:
    if name not in ("DeriveOutcome", "derive_partitions"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.engine"), name)
