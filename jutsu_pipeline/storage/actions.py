"""Append-only writes of corporate actions: only new, changed or withdrawn actions become rows."""

from __future__ import annotations

import datetime as dt
from typing import cast

import duckdb
import polars as pl

from jutsu_pipeline.storage.scope import fetch_arrow, registered, scope_filter, scope_params

# One row per action as providers, files and inference publish it; storage adds source and ingested_at.
ACTION_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "ex_date": pl.Date(),
    "kind": pl.String(),  # 'split' or 'dividend'
    "ratio": pl.Float64(),  # split: new shares per old share (2:1 -> 2.0; 1:10 reverse -> 0.1)
    "cash_amount": pl.Float64(),  # dividend per share in the raw prices before the ex-date
    "currency": pl.String(),
}
KEY_COLUMNS = ("symbol", "ex_date", "kind")

# The latest version per (symbol, ex_date, kind) of the given sources, withdrawn ones included.
LATEST_OF_SOURCE = f"""
SELECT symbol, ex_date, kind, ratio, cash_amount, currency
FROM corporate_actions
WHERE source = $source AND {scope_filter(timeframe=False)}
QUALIFY row_number() OVER (PARTITION BY symbol, ex_date, kind ORDER BY ingested_at DESC) = 1
"""

INSERT_STAGED_ACTIONS = """
INSERT INTO corporate_actions (symbol, ex_date, kind, ratio, cash_amount, currency, source, ingested_at)
SELECT symbol, ex_date, kind, ratio, cash_amount, currency, $source, $ingested_at FROM staged_actions
"""

# Daily bars with the provider's adjusted close, what inference reads.
ADJUSTED_CLOSES = f"""
SELECT symbol, ts, close, adj_close
FROM bars
WHERE {scope_filter()} AND adj_close IS NOT NULL
ORDER BY symbol, ts
"""

SYMBOL_ACTIONS = f"""
SELECT symbol, ex_date, kind, ratio, cash_amount, currency, source, ingested_at
FROM corporate_actions_current
WHERE {scope_filter(timeframe=False)}
ORDER BY symbol, ex_date, kind
"""

_TOLERANCE = 1e-9  # relative; a re-published action with the same values is no new version


def read_adjusted_closes(con: duckdb.DuckDBPyConnection, symbols: list[str]) -> pl.DataFrame:
    return cast(pl.DataFrame, pl.from_arrow(fetch_arrow(con, ADJUSTED_CLOSES, scope_params("1d", symbols))))


def read_actions(con: duckdb.DuckDBPyConnection, symbols: list[str]) -> pl.DataFrame:
    """The actions in force (one source per action) for `symbols`."""
    return cast(pl.DataFrame, pl.from_arrow(fetch_arrow(con, SYMBOL_ACTIONS, {"symbols": symbols})))


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= _TOLERANCE * max(abs(a), abs(b), 1e-12)


def changes(stored: pl.DataFrame, published: pl.DataFrame) -> pl.DataFrame:
    """Rows to append so that `stored` (latest per key) becomes `published`: new and changed actions, and
    tombstones (NULL ratio and cash) for actions the source no longer publishes."""
    before = {tuple(r[c] for c in KEY_COLUMNS): r for r in stored.iter_rows(named=True)}
    after = {tuple(r[c] for c in KEY_COLUMNS): r for r in published.iter_rows(named=True)}
    rows = []
    for key, row in after.items():
        old = before.get(key)
        if old is None or not (_same(old["ratio"], row["ratio"]) and _same(old["cash_amount"], row["cash_amount"])
                               and old["currency"] == row["currency"]):
            rows.append(row)
    for key, old in before.items():
        if key not in after and (old["ratio"] is not None or old["cash_amount"] is not None):
            rows.append({**old, "ratio": None, "cash_amount": None})
    return pl.DataFrame(rows, schema=ACTION_SCHEMA, orient="row") if rows else pl.DataFrame(schema=ACTION_SCHEMA)


def record_actions(con: duckdb.DuckDBPyConnection, *, source: str, symbols: list[str], actions: pl.DataFrame,
                   ingested_at: dt.datetime | None = None) -> int:
    """Make `actions` the whole publication of `source` for `symbols` (inside or outside a transaction);
    returns the rows appended (0 when nothing changed: `ingested_at` stays when it became known)."""
    from jutsu_pipeline.storage.ddl import ensure_schema

    ensure_schema(con)
    ingested_at = ingested_at or dt.datetime.now(dt.timezone.utc)
    published = actions.select(list(ACTION_SCHEMA)).cast(ACTION_SCHEMA)  # type: ignore[arg-type]
    stored = cast(pl.DataFrame, pl.from_arrow(fetch_arrow(con, LATEST_OF_SOURCE, {"source": source, "symbols": symbols})))
    stored = stored.cast(ACTION_SCHEMA) if stored.height else pl.DataFrame(schema=ACTION_SCHEMA)  # type: ignore[arg-type]
    delta = changes(stored, published.filter(pl.col("symbol").is_in(symbols)))
    if delta.height:
        with registered(con, staged_actions=delta.to_arrow()):
            con.execute(INSERT_STAGED_ACTIONS, {"source": source, "ingested_at": ingested_at})
    return delta.height
