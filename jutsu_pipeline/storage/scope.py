"""Scoped reads: one asset's rows are one timeframe and a bound list of symbols, selected everywhere with
`scope_filter()` and `scope_params()`, so the scope is written once."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import duckdb

from jutsu_pipeline.storage.identifiers import IDENTIFIER  # noqa: F401 - re-exported: readers check names with it

if TYPE_CHECKING:  # the readers return DuckDB's Arrow tables or numpy columns; both load with them
    import numpy as np
    import pyarrow as pa

BAR_COLUMNS = ("open", "high", "low", "close", "volume", "adj_close")
OHLCV = BAR_COLUMNS[:5]  # what `bars_adjusted` has besides the keys (no adj_close)
RELATIONS = ("bars", "bars_adjusted", "indicators")
EARLIEST = dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc)  # before any bar
ROW_HASH = "hash(ts, open, high, low, close, volume)"  # a bar's content (indicator_inputs, data versions)


def scope_filter(alias: str = "", *, timeframe: bool = True) -> str:
    """The condition selecting one asset's rows (columns of `alias` when given); bind `scope_params`.
    `timeframe=False` selects the symbols at every timeframe (a market-wide table)."""
    column = f"{alias}." if alias else ""
    symbols = f"{column}symbol IN (SELECT unnest($symbols::VARCHAR[]))"
    return f"{column}timeframe = $timeframe AND {symbols}" if timeframe else symbols


CHANGED_RELATION = "changed_scope"  # registered by a caller: symbol VARCHAR, since TIMESTAMPTZ


# The rows of `bars AS b` joined to the registered `changed_scope` (as `c`): the symbols that changed; with
# CHANGED_FILTER, from each one's `since` on (bind `$timeframe`).
CHANGED_JOIN = f"JOIN {CHANGED_RELATION} AS c ON c.symbol = b.symbol"
CHANGED_FILTER = "b.timeframe = $timeframe AND b.ts >= c.since"


# A row's symbol as its 0-based position in $symbols (runs found on an integer), and the scope as a filter: a
# scan with filters returns rows in storage order, where `IN (SELECT unnest(...))`, a join, does not.
SYMBOL_NO = "list_position($symbols::VARCHAR[], symbol)::INTEGER - 1"
IN_SCOPE_STORAGE_ORDER = "timeframe = $timeframe AND list_contains($symbols::VARCHAR[], symbol)"


def fetch_arrow(con: duckdb.DuckDBPyConnection, statement: str, params: dict[str, object]) -> pa.Table:
    """A parameterised read as Arrow. `con.execute(...)`, not `con.sql(..., params=...)`: the latter took
    10-20x as long for the same 2.5M-row scoped read (duckdb 1.5.5, measured 2026-12-02)."""
    return con.execute(statement, params).to_arrow_table()


def fetch_numpy_parallel(con: duckdb.DuckDBPyConnection, statement: str, params: dict[str, object]) -> dict[str, np.ndarray]:
    """A large parameterised read as numpy columns (TIMESTAMPTZ as UTC datetime64[us], a column with NULLs
    masked): the parameters bound as session variables and `statement` (its `$name`s read as `getvariable`) run
    as a relation, whose result DuckDB's threads convert. `con.execute(...)` hands the result to one thread, and
    Arrow chunks cost a concatenation per column (1.26 M bars: ~66 against ~92 ms wall for Arrow then numpy,
    and a sixth of the fresh pages, 2026-12-02)."""
    variables = {name: f"jutsu_{name}" for name in params}
    for name, value in params.items():
        con.execute(f"SET VARIABLE {variables[name]} = $value", {"value": value})
    columns = con.sql(re.sub(r"\$(\w+)", lambda m: f"getvariable('{variables[m[1]]}')", statement)).fetchnumpy()
    for variable in variables.values():  # after a failure they stay (an aborted transaction refuses RESET)
        con.execute(f"RESET VARIABLE {variable}")
    return columns


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, **relations: object) -> Iterator[None]:
    """`relations` (Arrow tables, frames) registered in `con` under their names while the block runs."""
    for name, relation in relations.items():
        con.register(name, relation)
    try:
        yield
    finally:
        for name in relations:
            con.unregister(name)


def scope_params(timeframe: str | None, symbols: Iterable[str]) -> dict[str, object]:
    return {"symbols": list(symbols), **({"timeframe": timeframe} if timeframe is not None else {})}


# Any row (a withdrawn action too) sends the symbols through the adjusting view.
HAS_ACTIONS = f"SELECT count(*) > 0 FROM corporate_actions WHERE {scope_filter(timeframe=False)}"


def bars_relation(con: duckdb.DuckDBPyConnection, symbols: Iterable[str], relation: str) -> str:
    """`relation`, except `bars_adjusted` of symbols without corporate actions, which is `bars` (every
    factor is 1.0, so the values are identical): the view's ASOF join costs 2-3x a plain scan even with
    nothing to adjust."""
    if relation == "bars_adjusted" and not con.execute(HAS_ACTIONS, scope_params(None, symbols)).fetchall()[0][0]:
        return "bars"
    return relation


def read_bars(con: duckdb.DuckDBPyConnection, timeframe: str, symbols: Iterable[str], *,
              relation: str = "bars", columns: Iterable[str] = BAR_COLUMNS, row_hash: bool = False,
              positions: bool = False) -> pa.Table:
    """symbol, ts and `columns` of the asset's rows in `relation`, sorted by symbol and ts; with `row_hash`, a
    last column `row_hash`, DuckDB's `hash(ts, open, high, low, close, volume)` of each bar. With `positions`,
    symbol_no (the symbol's 0-based position in `symbols`) instead of symbol and the rows in storage order:
    the ORDER BY was two thirds of the read, and the caller sorts only rows that are not already grouped by
    symbol in ts order (`indicators.frame.sorted_runs`), which stored rows mostly are."""
    columns = tuple(columns)
    symbols = list(symbols)
    allowed = BAR_COLUMNS if relation != "indicators" else columns
    if relation not in RELATIONS or not all(c in allowed and IDENTIFIER.match(c) for c in columns):
        raise ValueError(f"read_bars reads {RELATIONS} (bars: columns {BAR_COLUMNS}), not {relation} {columns}")
    relation = bars_relation(con, symbols, relation)
    selected = "".join(f', "{c}"' for c in columns) + (f", {ROW_HASH} AS row_hash" if row_hash else "")
    if positions:
        statement = f"SELECT {SYMBOL_NO} AS symbol_no, ts{selected} FROM {relation} WHERE {IN_SCOPE_STORAGE_ORDER}"
    else:
        statement = f"SELECT symbol, ts{selected} FROM {relation} WHERE {scope_filter()} ORDER BY symbol, ts"
    return fetch_arrow(con, statement, scope_params(timeframe, symbols))


JUDGED = "_judged"  # False on the context row before a symbol's `since`
CONTEXT_LOOKBACK = dt.timedelta(days=31)  # a symbol's previous bar is nearly always this close to its `since`

# The context row is looked up within CONTEXT_LOOKBACK of the earliest `since` (a bound DuckDB applies while
# scanning) and over the whole history only for the symbols without one there (a long gap; a listing has
# none): aggregating every earlier row read the whole table on each close. With no such symbol the `far`
# join's build side is empty and DuckDB skips its scan.
_CHANGED_BARS = f"""
WITH near AS (
    SELECT b.symbol, max(b.ts) AS ts FROM bars AS b {CHANGED_JOIN}
    WHERE b.timeframe = $timeframe AND b.ts < c.since
      AND b.ts >= (SELECT min(since) FROM {CHANGED_RELATION}) - $lookback
    GROUP BY b.symbol
), far AS (
    SELECT b.symbol, max(b.ts) AS ts
    FROM bars AS b JOIN (SELECT * FROM {CHANGED_RELATION} WHERE symbol NOT IN (SELECT symbol FROM near)) AS c
        ON c.symbol = b.symbol
    WHERE b.timeframe = $timeframe AND b.ts < c.since
    GROUP BY b.symbol
), scope AS (
    SELECT s.symbol, s.since, coalesce(n.ts, f.ts, s.since) AS first_ts FROM {CHANGED_RELATION} AS s
    LEFT JOIN near AS n USING (symbol) LEFT JOIN far AS f USING (symbol)
)
SELECT b.symbol, b.ts{{selected}}, b.ts >= c.since AS {JUDGED}
FROM bars AS b JOIN scope AS c ON c.symbol = b.symbol
WHERE b.timeframe = $timeframe AND b.ts >= c.first_ts AND b.ts >= (SELECT min(first_ts) FROM scope)
ORDER BY b.symbol, b.ts
"""


def read_changed_bars(con: duckdb.DuckDBPyConnection, timeframe: str, columns: Iterable[str] = BAR_COLUMNS) -> pa.Table:
    """symbol, ts, `columns` and `_judged` of the rows in the registered `changed_scope`, sorted by symbol and
    ts, with each symbol's last row before its `since` as context (`_judged` false): rules comparing a bar
    with the previous one judge the first changed bar too."""
    columns = tuple(columns)
    if not all(c in BAR_COLUMNS for c in columns):
        raise ValueError(f"read_changed_bars reads bars columns {BAR_COLUMNS}, not {columns}")
    statement = _CHANGED_BARS.format(selected="".join(f', b."{c}"' for c in columns))
    return fetch_arrow(con, statement, {"timeframe": timeframe, "lookback": CONTEXT_LOOKBACK})
