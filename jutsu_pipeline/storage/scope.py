"""Scoped reads: one asset's rows are one timeframe and a bound list of symbols.

Every reader of `bars`, `bars_adjusted`, `indicators` and the result tables selects them with
`scope_filter()` and binds `scope_params()`, so the scope is written once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import duckdb
import pyarrow as pa

BAR_COLUMNS = ("open", "high", "low", "close", "volume", "adj_close")
OHLCV = BAR_COLUMNS[:5]  # what `bars_adjusted` has besides the keys (no adj_close)
RELATIONS = ("bars", "bars_adjusted", "indicators")
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # the only column names formatted into SQL


def scope_filter(alias: str = "", *, timeframe: bool = True) -> str:
    """The condition selecting one asset's rows (columns of `alias` when given); bind `scope_params`.
    `timeframe=False` selects the symbols at every timeframe (a market-wide table)."""
    column = f"{alias}." if alias else ""
    symbols = f"{column}symbol IN (SELECT unnest($symbols::VARCHAR[]))"
    return f"{column}timeframe = $timeframe AND {symbols}" if timeframe else symbols


def scope_params(timeframe: str | None, symbols: Iterable[str]) -> dict[str, object]:
    return {"symbols": list(symbols), **({"timeframe": timeframe} if timeframe is not None else {})}


def read_bars(con: duckdb.DuckDBPyConnection, timeframe: str, symbols: Iterable[str], *,
              relation: str = "bars", columns: Iterable[str] = BAR_COLUMNS) -> pa.Table:
    """symbol, ts and `columns` of the asset's rows in `relation`, sorted by symbol and ts."""
    columns = tuple(columns)
    allowed = BAR_COLUMNS if relation != "indicators" else columns
    if relation not in RELATIONS or not all(c in allowed and IDENTIFIER.match(c) for c in columns):
        raise ValueError(f"read_bars reads {RELATIONS} (bars: columns {BAR_COLUMNS}), not {relation} {columns}")
    selected = "".join(f', "{c}"' for c in columns)
    statement = f"SELECT symbol, ts{selected} FROM {relation} WHERE {scope_filter()} ORDER BY symbol, ts"
    return con.sql(statement, params=scope_params(timeframe, symbols)).to_arrow_table()
