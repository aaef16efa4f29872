"""The calendar grid of a market × timeframe: every bar timestamp the calendar expects, with its partition."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

import pandas as pd
import polars as pl

from jutsu_pipeline.calendars import SessionCalendar
from jutsu_pipeline.partitions import BarsPartitioning, split_partition_key

UTC = dt.timezone.utc
TS = pl.Datetime("us", "UTC")


@lru_cache(maxsize=16)
def _exchange(code: str, first: dt.date, last: dt.date):  # noqa: ANN202 - exchange_calendars.ExchangeCalendar
    import exchange_calendars as xc

    return xc.get_calendar(code, start=pd.Timestamp(first), end=pd.Timestamp(last))


def session_table(calendar: SessionCalendar, first: dt.date, last: dt.date) -> pl.DataFrame:
    """session (date), open, close (UTC) of every session in [first, last]; early closes honoured."""
    sessions = calendar.sessions(first, last)
    if calendar.always_open or not sessions:
        opens = [dt.datetime.combine(day, dt.time(), UTC) for day in sessions]
        return pl.DataFrame({"session": sessions, "open": opens, "close": [o + dt.timedelta(days=1) for o in opens]},
                            schema={"session": pl.Date, "open": TS, "close": TS})
    exchange = _exchange(calendar.code, calendar.first, calendar.last)
    index = pd.DatetimeIndex(sessions)
    return pl.DataFrame({
        "session": sessions,
        "open": _utc(exchange.opens.loc[index]),
        "close": _utc(exchange.closes.loc[index]),
    })


def _utc(times: pd.Series) -> pl.Series:
    series = pl.from_pandas(times.reset_index(drop=True))
    if series.dtype.time_zone is None:  # type: ignore[union-attr]
        series = series.dt.replace_time_zone("UTC")
    return series.dt.convert_time_zone("UTC").dt.cast_time_unit("us")


def history_bounds(partitioning: BarsPartitioning, today: dt.date) -> tuple[dt.date, dt.date]:
    """The market's configured history [start, end] (end: today when open-ended)."""
    cfg = partitioning.config
    return cfg.start, cfg.end or today


def calendar_grid(partitioning: BarsPartitioning, today: dt.date | None = None) -> pl.DataFrame:
    """partition_date (date), ts (UTC): daily, each session at 00:00 UTC in its month's partition;
    intraday, every bar start aligned to the timeframe (in UTC epoch time) with open <= ts < close.
    """
    today = today or dt.datetime.now(UTC).date()
    first, last = history_bounds(partitioning, today)
    sessions = session_table(partitioning.calendar, first, last)
    if not partitioning.timeframe.is_intraday:
        return sessions.select(
            pl.col("session").dt.truncate("1mo").alias("partition_date"),
            pl.col("session").cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("ts"),
        )
    step = int(partitioning.timeframe.duration.total_seconds() * 1_000_000)
    aligned = ((pl.col("open").dt.epoch("us") + step - 1) // step * step).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return (
        sessions.with_columns(aligned.alias("first_bar"))
        .filter(pl.col("first_bar") < pl.col("close"))
        .select(
            pl.col("session").alias("partition_date"),
            pl.datetime_ranges("first_bar", "close", interval=partitioning.timeframe.duration, closed="left").alias("ts"),
        )
        .explode("ts")
        .drop_nulls("ts")
    )


def materialized_frame(keys: Iterable[str]) -> pl.DataFrame:
    """symbol, partition_date of materialised multi-partition keys such as `2012-05-01|FB`."""
    pairs = [split_partition_key(key) for key in keys]
    return pl.DataFrame(
        {"symbol": [s for _, s in pairs], "partition_date": [d for d, _ in pairs]},
        schema={"symbol": pl.String, "partition_date": pl.String},
    ).with_columns(pl.col("partition_date").str.to_date())
