"""Derive one timeframe for a run's partitions: replace its bars in those sessions in one transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import polars as pl

from jutsu_pipeline.calendars import session_table
from jutsu_pipeline.derive import derived_source, sql
from jutsu_pipeline.partitions import BarsPartitioning, split_partition_key
from jutsu_pipeline.storage.ddl import ensure_schema
from jutsu_pipeline.storage.scope import registered
from jutsu_pipeline.storage.transactions import retry_conflicts, transaction
from jutsu_pipeline.timeframes import Timeframe

UTC = dt.timezone.utc
TS = pl.Datetime("us", "UTC")
US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class DeriveOutcome:
    bars: int  # derived bars now stored in the run's partitions
    incomplete: int  # of them marked incomplete
    windows: pl.DataFrame  # symbol, date_key, start, end: the span each partition's derived bars occupy


def sessions_frame(partitioning: BarsPartitioning, partition_keys: Iterable[str], daily: bool) -> pl.DataFrame:
    """symbol, date_key, session, open, close and the [start, end) its derived bars occupy (daily: the
    session date's UTC day) of every session inside the run's partitions."""
    rows = [(symbol, date_key, day) for date_key, symbol in map(split_partition_key, partition_keys)
            for day in partitioning.sessions(date_key)]
    keys = pl.DataFrame(rows, orient="row", schema={"symbol": pl.String, "date_key": pl.String, "session": pl.Date})
    if keys.is_empty():
        return keys.with_columns(*(pl.lit(None, TS).alias(c) for c in ("open", "close", "start", "end")))
    days = [day for *_, day in rows]
    frame = keys.join(session_table(partitioning.calendar, min(days), max(days)),
                      on="session", how="inner")  # closed days (no session) derive nothing
    if daily:
        start = pl.col("session").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        frame = frame.with_columns(start.alias("start"), (start + pl.duration(days=1)).alias("end"))
    else:
        frame = frame.with_columns(pl.col("open").alias("start"), pl.col("close").alias("end"))
    return frame.select("symbol", "date_key", "session", "open", "close", "start", "end").sort("symbol", "open")


def session_days(sessions: pl.DataFrame) -> pl.DataFrame | None:
    """day, s_open, s_close (epoch us) per session for the join on the UTC day; None when some session
    does not open and close on its own date in UTC (then the ASOF statement applies)."""
    days = sessions.select("session", "open", "close").unique().with_columns(
        (pl.col("open").dt.epoch("us") // US_PER_DAY).alias("day"),
        ((pl.col("close").dt.epoch("us") - 1) // US_PER_DAY).alias("last_day"),
        ((pl.col("session") - pl.date(1970, 1, 1)).dt.total_days()).alias("session_day"),
    )
    same_day = (pl.col("day") == pl.col("last_day")) & (pl.col("day") == pl.col("session_day"))
    if days.is_empty() or not days.select(same_day.all()).item():
        return None
    return days.select("day", pl.col("open").dt.epoch("us").alias("s_open"),
                       pl.col("close").dt.epoch("us").alias("s_close"))


def derive_partitions(con: duckdb.DuckDBPyConnection, partitioning: BarsPartitioning, base: Timeframe,
                      partition_keys: Iterable[str]) -> DeriveOutcome:
    """Recompute `partitioning.timeframe` bars from `base` bars for the partitions, atomically."""
    timeframe = partitioning.timeframe
    daily = not timeframe.is_intraday
    sessions = sessions_frame(partitioning, partition_keys, daily)
    ensure_schema(con)
    params = {"timeframe": timeframe.value, "base": base.value}
    bounds = {"lo": sessions["open"].min(), "hi": sessions["close"].max(),
              "symbols": sessions["symbol"].unique().sort().to_list()} if sessions.height else {}
    insert = {**params, **bounds, "daily": daily, "step_us": int(timeframe.duration.total_seconds() * 1_000_000),
              "base_us": int(base.duration.total_seconds() * 1_000_000), "source": derived_source(base),
              "ingested_at": dt.datetime.now(UTC)}

    def derive() -> tuple[int, int]:
        with transaction(con):
            con.execute(sql.DELETE_DERIVED, {"timeframe": timeframe.value})
            bars = incomplete = 0
            if sessions.height:
                days = session_days(sessions)
                if days is None:
                    ((bars,),) = con.execute(sql.INSERT_DERIVED_BY_ASOF, insert).fetchall()
                else:
                    with registered(con, derive_days=days.to_arrow()):
                        ((bars,),) = con.execute(sql.INSERT_DERIVED_BY_DAY, insert).fetchall()
                ((incomplete,),) = con.execute(sql.COUNT_INCOMPLETE, {"timeframe": timeframe.value,
                                                                      "ingested_at": insert["ingested_at"]}).fetchall()
        return bars, incomplete

    with registered(con, derive_sessions=sessions.to_arrow()):
        bars, incomplete = retry_conflicts(derive, f"derive {timeframe.value} bars")  # DuckLake: another writer won
    windows = sessions.group_by("symbol", "date_key").agg(pl.col("start").min(), pl.col("end").max())
    return DeriveOutcome(int(bars), int(incomplete or 0), windows)
