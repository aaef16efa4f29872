"""Full-history recomputation of indicators for a set of symbols, replaced in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

import duckdb
import polars as pl

from jutsu_pipeline.indicators.frame import as_specs, column_names, indicator_frame
from jutsu_pipeline.indicators.params import IndicatorParams
from jutsu_pipeline.indicators.registry import IndicatorSpec
from jutsu_pipeline.storage.indicators import ensure_indicator_table, replace_indicators
from jutsu_pipeline.storage.scope import OHLCV, read_bars
from jutsu_pipeline.storage.transactions import retry_conflicts, transaction


def ensure_indicator_schema(con: duckdb.DuckDBPyConnection, params: IndicatorParams | Iterable[IndicatorSpec]) -> list[str]:
    """Create `indicators` and its view; add the columns `params` needs (one DOUBLE per output).

    Columns of other parameter sets are kept (markets and strategies may need different periods).
    Returns the columns added. Idempotent; issues no DDL when nothing is missing.
    """
    return ensure_indicator_table(con, column_names(as_specs(params)))


def compute_indicators(
    con: duckdb.DuckDBPyConnection,
    *,
    timeframe: str,
    symbols: Sequence[str],
    params: IndicatorParams | Iterable[IndicatorSpec],
    adjusted: bool = True,
) -> int:
    """Recompute the indicators `params` lists (a config block or specs) of `symbols` at `timeframe` from
    `bars_adjusted` and replace their rows.

    One read, one in-memory pass over all symbols, then (in the read's transaction) DELETE of the
    symbols' rows and INSERT of every computed row via Arrow: afterwards the symbols' rows are exactly
    the new ones. Symbols without bars lose their rows. Reads `bars_adjusted` unless `adjusted` is
    False (then the raw `bars`). Returns rows written.
    """
    specs = as_specs(params)
    ensure_indicator_schema(con, specs)
    symbols = list(dict.fromkeys(symbols))
    relation = "bars_adjusted" if adjusted else "bars"

    def replace() -> int:
        with transaction(con):
            bars = cast(pl.DataFrame, pl.from_arrow(read_bars(con, timeframe, symbols, relation=relation, columns=OHLCV)))
            staged = indicator_frame(bars, specs).to_arrow()
            replace_indicators(con, timeframe=timeframe, symbols=symbols, staged=staged)
        return staged.num_rows

    return retry_conflicts(replace, f"indicators {timeframe}")
