"""Atomic, idempotent replacement of bar windows in DuckDB."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb
import polars as pl

from jutsu_pipeline.storage.ddl import ensure_schema

DELETE_WINDOW = """
DELETE FROM bars
WHERE symbol = $symbol AND timeframe = $timeframe AND ts >= $start AND ts < $end
"""

INSERT_STAGED = """
INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume, adj_close, source, ingested_at)
SELECT $symbol, $timeframe, ts, open, high, low, close, volume, adj_close, $source, $ingested_at
FROM staged_bars
"""

Window = tuple[dt.datetime, dt.datetime]


def replace_windows(
    con: duckdb.DuckDBPyConnection,
    *,
    symbol: str,
    timeframe: str,
    source: str,
    windows: Sequence[Window],
    frame: pl.DataFrame,
) -> int:
    """Replace everything of `symbol`/`timeframe` inside `windows` with `frame`, in one transaction.

    `frame` is a validated canonical frame whose rows all lie inside `windows`. Returns rows written.
    """
    ensure_schema(con)
    ingested_at = dt.datetime.now(dt.timezone.utc)
    staged = frame.select("ts", "open", "high", "low", "close", "volume", "adj_close").to_arrow()
    con.execute("BEGIN TRANSACTION")
    try:
        for start, end in windows:
            con.execute(DELETE_WINDOW, {"symbol": symbol, "timeframe": timeframe, "start": start, "end": end})
        con.register("staged_bars", staged)
        try:
            con.execute(
                INSERT_STAGED,
                {"symbol": symbol, "timeframe": timeframe, "source": source, "ingested_at": ingested_at},
            )
        finally:
            con.unregister("staged_bars")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return frame.height
