"""Scoped reads of `bars` / `bars_adjusted`: one asset's rows are one timeframe and a bound list of symbols.

Every reader selects them with `scope_filter()` and binds `scope_params()`, so the scope is written once.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pyarrow as pa

BAR_COLUMNS = ("open", "high", "low", "close", "volume", "adj_close")
RELATIONS = ("bars", "bars_adjusted")


def scope_filter(alias: str = "") -> str:
    """The condition selecting one asset's rows (columns of `alias` when given); bind `scope_params`."""
    column = f"{alias}." if alias else ""
    return f"{column}timeframe = $timeframe AND {column}symbol IN (SELECT unnest($symbols::VARCHAR[]))"


def scope_params(timeframe: str, symbols: Iterable[str]) -> dict[str, object]:
    return {"timeframe": timeframe, "symbols": list(symbols)}


def read_bars(con: duckdb.DuckDBPyConnection, timeframe: str, symbols: Iterable[str], *,
              relation: str = "bars", columns: tuple[str, ...] = BAR_COLUMNS) -> pa.Table:
    """symbol, ts and `columns` of the asset's rows in `relation`, sorted by symbol and ts."""
    if relation not in RELATIONS or not set(columns) <= set(BAR_COLUMNS):
        raise ValueError(f"read_bars reads {RELATIONS} columns {BAR_COLUMNS}, not {relation} {columns}")
    statement = f"SELECT symbol, ts, {', '.join(columns)} FROM {relation} WHERE {scope_filter()} ORDER BY symbol, ts"
    return con.sql(statement, params=scope_params(timeframe, symbols)).to_arrow_table()
