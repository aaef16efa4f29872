"""Atomic, idempotent replacement of bar windows (DuckDB file or DuckLake)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import duckdb
import polars as pl

from jutsu_pipeline.storage.ddl import ADD_BARS_KEY, ensure_schema, relation_exists, unkey_bars_for_fill
from jutsu_pipeline.storage.scope import BAR_COLUMNS, read_bars
from jutsu_pipeline.storage.transactions import retry_conflicts, transaction

DELETE_STAGED_WINDOWS = """
DELETE FROM bars
USING staged_windows AS w
WHERE bars.symbol = w.symbol AND bars.timeframe = $timeframe AND bars.ts >= w.start AND bars.ts < w.end
"""

INSERT_STAGED = """
INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume, adj_close, source, ingested_at)
SELECT symbol, $timeframe, ts, open, high, low, close, volume, adj_close, $source, $ingested_at
FROM staged_bars
"""

Window = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True)
class WindowReplacement:
    """Everything of `symbol` inside `windows` becomes `frame` (validated rows inside those windows)."""

    symbol: str
    windows: Sequence[Window]
    frame: pl.DataFrame


def replace_windows(
    con: duckdb.DuckDBPyConnection,
    *,
    timeframe: str,
    source: str,
    replacements: Sequence[WindowReplacement],
    in_transaction: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> int:
    """Apply all replacements in ONE transaction (delete windows, insert via Arrow); returns rows written.

    `in_transaction(con)` runs after the insert inside the same transaction (e.g. recording the corporate
    actions the new bars imply), so bars and what is derived from them land together or not at all.
    On DuckLake a commit conflict with a concurrent writer re-runs the whole transaction."""
    ensure_schema(con)
    ingested_at = dt.datetime.now(dt.timezone.utc)
    frames = [r.frame.select("ts", "open", "high", "low", "close", "volume", "adj_close")
              .with_columns(pl.lit(r.symbol).alias("symbol")) for r in replacements]
    # One contiguous Arrow chunk in key order: DuckDB inserts it in full vectors and fills the primary-key
    # index in order (a concat of one small frame per window took ~2x as long to insert).
    staged = pl.concat(frames, how="vertical").sort("symbol", "ts").rechunk() if frames else pl.DataFrame()
    windows = pl.DataFrame(
        [(r.symbol, start, end) for r in replacements for start, end in r.windows],
        schema={"symbol": pl.String, "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC")},
        orient="row",
    )
    con.register("staged_windows", windows.to_arrow())
    con.register("staged_bars", staged.to_arrow())

    def replace() -> None:
        with transaction(con):
            unkeyed = unkey_bars_for_fill(con, staged.height)
            con.execute(DELETE_STAGED_WINDOWS, {"timeframe": timeframe})
            if staged.height:
                con.execute(INSERT_STAGED, {"timeframe": timeframe, "source": source, "ingested_at": ingested_at})
            if unkeyed:
                con.execute(ADD_BARS_KEY)
            if in_transaction is not None:
                in_transaction(con)

    try:
        retry_conflicts(replace, f"replace {len(replacements)} symbol(s) of bars {timeframe}")
    finally:
        con.unregister("staged_windows")
        con.unregister("staged_bars")
    return staged.height


LAST_FINAL_BARS = """
SELECT w.symbol, w.date_key, max(b.ts) AS last_ts
FROM tail_windows AS w
JOIN bars AS b ON b.symbol = w.symbol AND b.timeframe = $timeframe AND b.ts >= w.start AND b.ts < w."end"
WHERE b.ts <= $final_before
GROUP BY w.symbol, w.date_key
"""


def last_final_bars(con: duckdb.DuckDBPyConnection, *, timeframe: str, windows: pl.DataFrame,
                    final_before: dt.datetime) -> dict[tuple[str, str], dt.datetime]:
    """(symbol, date_key) -> start of the last stored bar that started at or before `final_before`
    inside each window of `windows` (symbol, date_key, start, end); windows without one are absent."""
    if windows.is_empty() or not relation_exists(con, "bars"):
        return {}
    con.register("tail_windows", windows.to_arrow())
    try:
        rows = con.execute(LAST_FINAL_BARS, {"timeframe": timeframe, "final_before": final_before}).fetchall()
    finally:
        con.unregister("tail_windows")
    return {(symbol, date_key): last_ts.astimezone(dt.timezone.utc) for symbol, date_key, last_ts in rows}


WINDOW_STATS = """
SELECT w.symbol, w.date_key, count(*) AS bars, min(b.ts) AS first_ts, max(b.ts) AS last_ts
FROM stat_windows AS w
JOIN bars AS b ON b.symbol = w.symbol AND b.timeframe = $timeframe AND b.ts >= w.start AND b.ts < w."end"
GROUP BY w.symbol, w.date_key
"""


def window_stats(con: duckdb.DuckDBPyConnection, *, timeframe: str,
                 windows: pl.DataFrame) -> dict[tuple[str, str], tuple[int, dt.datetime, dt.datetime]]:
    """(symbol, date_key) -> (stored bars, first and last bar start) of each window of `windows` (symbol,
    date_key, start, end); windows without bars are absent."""
    if windows.is_empty() or not relation_exists(con, "bars"):
        return {}
    con.register("stat_windows", windows.to_arrow())
    try:
        rows = con.execute(WINDOW_STATS, {"timeframe": timeframe}).fetchall()
    finally:
        con.unregister("stat_windows")
    utc = dt.timezone.utc
    return {(symbol, key): (int(n), first.astimezone(utc), last.astimezone(utc)) for symbol, key, n, first, last in rows}


def read_symbol_bars(con: duckdb.DuckDBPyConnection, *, timeframe: str, symbol: str) -> pl.DataFrame:
    """Every stored bar of one symbol × timeframe (canonical columns, ts in UTC), oldest first."""
    schema = pl.Schema({"ts": pl.Datetime("us", "UTC"), **{c: pl.Float64() for c in BAR_COLUMNS}})
    if not relation_exists(con, "bars"):
        return pl.DataFrame(schema=schema)
    frame = cast(pl.DataFrame, pl.from_arrow(read_bars(con, timeframe, [symbol]))).drop("symbol")
    return frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC").dt.cast_time_unit("us")).cast(schema)
