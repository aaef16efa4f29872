"""Turning provider rows into the canonical frame: dedupe, window filter, daily keys and finality."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from jutsu_pipeline.providers.base import FetchRequest, empty_frame, to_canonical
from jutsu_pipeline.timeframes import Timeframe

UTC = dt.timezone.utc
_VALUES = ("open", "high", "low", "close", "volume")


def query_window(request: FetchRequest) -> tuple[dt.datetime, dt.datetime]:
    """The instants to ask a provider for: daily bars are stamped in local time, so widen by a day each side."""
    if request.timeframe.is_intraday:
        return request.start, request.end
    return request.start - dt.timedelta(days=1), request.end + dt.timedelta(days=1)


def build_frame(
    instants_us: Sequence[int | None],
    columns: dict[str, Sequence[float | None]],
    request: FetchRequest,
    *,
    day_timezone: str,
    now: dt.datetime,
    delay: dt.timedelta,
) -> pl.DataFrame:
    """Canonical frame of the FINAL bars in the request window.

    `instants_us` are bar starts (epoch µs, UTC). Daily bars are keyed by their local date in `day_timezone`.
    Rows with a null value are dropped, duplicate keys keep the last occurrence, and a bar is kept only if
    its end (start + timeframe; for daily: the next local midnight) <= now - delay.
    """
    if not instants_us:
        return empty_frame()
    data: dict[str, object] = {"instant": pl.Series("instant", list(instants_us), dtype=pl.Int64)}
    for name in (*_VALUES, "adj_close"):
        values = columns.get(name)
        data[name] = pl.Series(name, list(values) if values is not None else [None] * len(instants_us),
                               dtype=pl.Float64, strict=False)
    frame = pl.DataFrame(data).drop_nulls(["instant", *_VALUES])
    instant = pl.from_epoch(pl.col("instant"), time_unit="us").dt.replace_time_zone("UTC")
    if request.timeframe.is_intraday:
        frame = frame.with_columns(ts=instant, end=instant + pl.duration(microseconds=_us(request.timeframe)))
    else:
        local_day = instant.dt.convert_time_zone(day_timezone).dt.date()
        next_midnight = (local_day.cast(pl.Datetime("us")) + pl.duration(days=1)) \
            .dt.replace_time_zone(day_timezone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")
        frame = frame.with_columns(ts=local_day.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"), end=next_midnight)
    cutoff = now - delay
    frame = frame.filter(
        (pl.col("ts") >= request.start) & (pl.col("ts") < request.end) & (pl.col("end") <= cutoff)
    ).unique("ts", keep="last", maintain_order=True)
    return to_canonical(frame)


def _us(timeframe: Timeframe) -> int:
    return timeframe.duration // dt.timedelta(microseconds=1)
