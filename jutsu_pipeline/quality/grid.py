"""The calendar grid of a market × timeframe: every bar timestamp the calendar expects, with its partition."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl

from jutsu_pipeline.calendars import session_table
from jutsu_pipeline.partitions import BarsPartitioning, split_partition_key

UTC = dt.timezone.utc


def calendar_grid(partitioning: BarsPartitioning, today: dt.date | None = None) -> pl.DataFrame:
    """partition_date (date), ts (UTC): daily, each session at 00:00 UTC in its period's partition
    (the grain's period, of the base timeframe for a derived one); intraday, every bar start anchored to the
    session's open (open + k * step, XNYS 1h: 09:30 ... 15:30) with open <= ts < close.
    """
    cfg = partitioning.config
    sessions = session_table(partitioning.calendar, cfg.start, cfg.end or today or dt.datetime.now(UTC).date())
    every = partitioning.grain.polars_every
    partition = (pl.col("session").dt.truncate(every) if every else pl.col("session")).alias("partition_date")
    if not partitioning.timeframe.is_intraday:
        midnight = pl.col("session").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        return sessions.select(partition, midnight.alias("ts"))
    starts = pl.datetime_ranges("open", "close", interval=partitioning.timeframe.duration, closed="left").alias("ts")
    return sessions.select(partition, starts).explode("ts").drop_nulls("ts")


def materialized_frame(keys: Iterable[str]) -> pl.DataFrame:
    """symbol, partition_date of materialised multi-partition keys such as `2012-05-01|FB`."""
    pairs = [split_partition_key(key) for key in keys]
    return pl.DataFrame(
        {"symbol": [s for _, s in pairs], "partition_date": [d for d, _ in pairs]},
        schema={"symbol": pl.String, "partition_date": pl.String},
    ).with_columns(pl.col("partition_date").str.to_date())
