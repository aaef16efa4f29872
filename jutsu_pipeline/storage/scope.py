"""Scoped reads: one asset's rows are one timeframe and a bound list of symbols.

Every reader of `bars`, `bars_adjusted`, `indicators` and the result tables selects them with
`scope_filter()` and binds `scope_params()`, so the scope is written once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import duckdb

from jutsu_pipeline.storage.identifiers import IDENTIFIER  # noqa: F401 - re-exported: readers check names with it

if TYPE_CHECKING:  # the readers return DuckDB's Arrow tables; pyarrow itself loads with them
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


def changed_join(alias: str = "b") -> str:
    """Join of `alias`'s rows to the registered `changed_scope` (as `c`): the symbols that changed."""
    return f"JOIN {CHANGED_RELATION} AS c ON c.symbol = {alias}.symbol"


def changed_filter(alias: str = "b") -> str:
    """With `changed_join`: the asset's rows from each changed symbol's `since` on; bind `$timeframe`."""
    return f"{alias}.timeframe = $timeframe AND {alias}.ts >= c.since"


def fetch_arrow(con: duckdb.DuckDBPyConnection, statement: str, params: dict[str, object]) -> pa.Table:
    """A parameterised read as Arrow. `con.execute(...)`, not `con.sql(..., params=...)`: the latter took
    10-20x as long for the same 2.5M-row scoped read (duckdb 1.5.5, measured 2026-12-02)."""
    return con.execute(statement, params).to_arrow_table()


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
              relation: str = "bars", columns: Iterable[str] = BAR_COLUMNS,
              since: Mapping[str, dt.datetime] | None = None, row_hash: bool = False, resolved: bool = False) -> pa.Table:
    """symbol, ts and `columns` of the asset's rows in `relation`, sorted by symbol and ts; with `since`,
    only a symbol's rows from its `since` ts on (symbols absent from it: every row); with `row_hash`, a
    last column `row_hash`, DuckDB's `hash(ts, open, high, low, close, volume)` of each bar. `resolved`: the
    caller passes what `bars_relation` returned in this transaction (not asked again)."""
    columns = tuple(columns)
    symbols = list(symbols)
    allowed = BAR_COLUMNS if relation != "indicators" else columns
    if relation not in RELATIONS or not all(c in allowed and IDENTIFIER.match(c) for c in columns):
        raise ValueError(f"read_bars reads {RELATIONS} (bars: columns {BAR_COLUMNS}), not {relation} {columns}")
    relation = relation if resolved else bars_relation(con, symbols, relation)
    selected = "".join(f', "{c}"' for c in columns) + (f", {ROW_HASH} AS row_hash" if row_hash else "")
    if not since:
        statement = f"SELECT symbol, ts{selected} FROM {relation} WHERE {scope_filter()} ORDER BY symbol, ts"
        return fetch_arrow(con, statement, scope_params(timeframe, symbols))
    statement = (f"SELECT symbol, ts{selected} FROM {relation} JOIN (SELECT unnest($symbols::VARCHAR[]) AS symbol, "
                 "unnest($since::TIMESTAMPTZ[]) AS since) USING (symbol) WHERE timeframe = $timeframe AND ts >= since "
                 "ORDER BY symbol, ts")
    return fetch_arrow(con, statement, {**scope_params(timeframe, symbols), "since": [since.get(s, EARLIEST) for s in symbols]})


JUDGED = "_judged"  # False on the context row before a symbol's `since`


CONTEXT_LOOKBACK = dt.timedelta(days=31)  # a symbol's previous bar is nearly always this close to its `since`


def read_changed_bars(con: duckdb.DuckDBPyConnection, timeframe: str, columns: Iterable[str] = BAR_COLUMNS) -> pa.Table:
    """symbol, ts, `columns` and `_judged` of the rows in the registered `changed_scope`, sorted by symbol and
    ts, with each symbol's last row before its `since` as context (`_judged` false): rules comparing a bar
    with the previous one judge the first changed bar too.

    The context rows are looked up within `CONTEXT_LOOKBACK` before the earliest `since` (a bound DuckDB
    applies while scanning), and only for symbols without a row there (a gap longer than that, a listing)
    over their whole history: a daily close read the whole table to find 500 previous bars."""
    columns = tuple(columns)
    if not all(c in BAR_COLUMNS for c in columns):
        raise ValueError(f"read_changed_bars reads bars columns {BAR_COLUMNS}, not {columns}")
    ((earliest,),) = con.execute(f"SELECT min(since) FROM {CHANGED_RELATION}").fetchall()
    before = (f"SELECT b.symbol, max(b.ts) AS ts FROM bars AS b {changed_join()} "
              "WHERE b.timeframe = $timeframe AND b.ts < c.since{bound} GROUP BY b.symbol")
    context: dict[str, dt.datetime] = {}
    if earliest is not None:
        floor = max(earliest, EARLIEST + CONTEXT_LOOKBACK) - CONTEXT_LOOKBACK
        context = dict(con.execute(before.format(bound=" AND b.ts >= $floor"),
                                   {"timeframe": timeframe, "floor": floor}).fetchall())
        # Symbols with no row in the lookback: the rest of their history (symbols with no row at all before
        # their `since` have no context, e.g. a listing inside the window).
        further = [symbol for (symbol,) in con.execute(f"SELECT symbol FROM {CHANGED_RELATION}").fetchall()
                   if symbol not in context]  # (one row per symbol: `Changed.frame`)
        if further:
            context.update(con.execute(before.format(bound=" AND b.symbol IN (SELECT unnest($symbols::VARCHAR[]))"),
                                       {"timeframe": timeframe, "symbols": further}).fetchall())
    selected = "".join(f', b."{c}"' for c in columns)
    statement = f"""
    SELECT b.symbol, b.ts{selected}, b.ts >= c.since AS {JUDGED}
    FROM bars AS b JOIN (
        SELECT s.symbol, s.since, coalesce(p.first_ts, s.since) AS first_ts FROM {CHANGED_RELATION} AS s
        LEFT JOIN (SELECT unnest($context_symbols::VARCHAR[]) AS symbol, unnest($context_ts::TIMESTAMPTZ[]) AS first_ts)
            AS p USING (symbol)
    ) AS c ON c.symbol = b.symbol
    WHERE b.timeframe = $timeframe AND b.ts >= $lowest AND b.ts >= c.first_ts
    ORDER BY b.symbol, b.ts"""
    lowest = min([*context.values(), earliest] if earliest is not None else [EARLIEST])
    return fetch_arrow(con, statement, {"timeframe": timeframe, "lowest": lowest,
                                        "context_symbols": list(context), "context_ts": list(context.values())})
