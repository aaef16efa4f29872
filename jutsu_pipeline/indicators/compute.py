"""Full-history recomputation of indicators for a set of symbols, replaced in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import duckdb
import polars as pl

from jutsu_pipeline.indicators import sql
from jutsu_pipeline.indicators.frame import as_specs, indicator_frame
from jutsu_pipeline.indicators.params import IndicatorParams
from jutsu_pipeline.indicators.registry import IndicatorSpec
from jutsu_pipeline.indicators.schema import ensure_indicator_schema
from jutsu_pipeline.storage.transactions import retry_conflicts, transaction


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
    bound = {"timeframe": timeframe, "symbols": symbols}

    def replace() -> int:
        with transaction(con):
            select = sql.SELECT_BARS.format(source="bars_adjusted" if adjusted else "bars")
            bars = pl.from_arrow(con.sql(select, params=bound).to_arrow_table())
            assert isinstance(bars, pl.DataFrame)
            staged = indicator_frame(bars, specs).to_arrow()
            con.register("staged_indicators", staged)
            try:
                con.execute(sql.DELETE_SYMBOLS, bound)
                con.execute(sql.INSERT_STAGED, {"timeframe": timeframe})
            finally:
                con.unregister("staged_indicators")
        return staged.num_rows

    return retry_conflicts(replace, f"indicators {timeframe}")
