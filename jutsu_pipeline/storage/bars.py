"""Atomic, idempotent replacement of bar windows in DuckDB."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb
import polars as pl

from jutsu_pipeline.storage.ddl import ensure_schema

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
    actions the new bars imply), so bars and what is derived from them land together or not at all."""
    ensure_schema(con)
    ingested_at = dt.datetime.now(dt.timezone.utc)
    frames = [r.frame.select("ts", "open", "high", "low", "close", "volume", "adj_close")
              .with_columns(pl.lit(r.symbol).alias("symbol")) for r in replacements]
    staged = pl.concat(frames, how="vertical") if frames else pl.DataFrame()
    windows = pl.DataFrame(
        [(r.symbol, start, end) for r in replacements for start, end in r.windows],
        schema={"symbol": pl.String, "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC")},
        orient="row",
    )
    con.register("staged_windows", windows.to_arrow())
    con.register("staged_bars", staged.to_arrow())
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(DELETE_STAGED_WINDOWS, {"timeframe": timeframe})
            if staged.height:
                con.execute(INSERT_STAGED, {"timeframe": timeframe, "source": source, "ingested_at": ingested_at})
            if in_transaction is not None:
                in_transaction(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.unregister("staged_windows")
        con.unregister("staged_bars")
    return staged.height
