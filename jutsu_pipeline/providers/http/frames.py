"""Turning provider rows into the canonical frame: dedupe, window filter, daily keys and finality."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import polars as pl

from jutsu_pipeline.providers.base import FetchRequest, FetchStats, ProviderError, empty_frame, to_canonical

UTC = dt.timezone.utc
_VALUES = ("open", "high", "low", "close", "volume")
DUPLICATES_DROPPED = "duplicates_dropped"  # FetchStats.extra key: identical repeated bars removed


class ConflictingBars(ProviderError):
    """Two bars with the same timestamp and different values: which one is true cannot be decided."""


def query_window(request: FetchRequest) -> tuple[dt.datetime, dt.datetime]:
    """The instants to ask a provider for: daily bars are stamped in local time, so widen by a day each side."""
    if request.timeframe.is_intraday:
        return request.start, request.end
    return request.start - dt.timedelta(days=1), request.end + dt.timedelta(days=1)


def build_frame(
    instants_us: Sequence[int | None],
    columns: Mapping[str, Sequence[float | None]],
    request: FetchRequest,
    *,
    day_timezone: str,
    now: dt.datetime,
    delay: dt.timedelta,
    stats: FetchStats,
) -> pl.DataFrame:
    """Canonical frame of the FINAL bars (end <= now - delay) in the request window, from bar starts in epoch
    µs; daily bars keyed by their local date in `day_timezone`; rows with a null value dropped."""
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
        frame = frame.with_columns(ts=instant, end=instant + request.timeframe.duration)
    else:
        local_day = instant.dt.convert_time_zone(day_timezone).dt.date()
        next_midnight = (local_day.cast(pl.Datetime("us")) + pl.duration(days=1)) \
            .dt.replace_time_zone(day_timezone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")
        frame = frame.with_columns(ts=local_day.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"), end=next_midnight)
    cutoff = now - delay
    frame = frame.filter(
        (pl.col("ts") >= request.start) & (pl.col("ts") < request.end) & (pl.col("end") <= cutoff)
    )
    return to_canonical(drop_identical_duplicates(frame, stats))


def drop_identical_duplicates(frame: pl.DataFrame, stats: FetchStats) -> pl.DataFrame:
    """One row per ts: identical repeats are dropped (and counted); different values raise ConflictingBars."""
    repeated = frame.filter(pl.col("ts").is_duplicated())
    if repeated.is_empty():
        return frame
    values = ["ts", *_VALUES, "adj_close"]
    distinct = repeated.select(values).unique(maintain_order=True)
    conflicts = distinct.filter(pl.col("ts").is_duplicated())
    if not conflicts.is_empty():
        first_ts = conflicts["ts"][0]
        pair = conflicts.filter(pl.col("ts") == first_ts).head(2).to_dicts()
        shown = " and ".join("{" + ", ".join(f"{k}={row[k]}" for k in values if row.get(k) is not None) + "}"
                             for row in pair)
        raise ConflictingBars(
            f"{conflicts['ts'].n_unique()} timestamp(s) served twice with different values, e.g. {shown}; "
            "the provider contradicts itself, so nothing of this window is stored. Re-run later; report it if it persists")
    unique = frame.unique("ts", keep="first", maintain_order=True)
    stats.extra[DUPLICATES_DROPPED] = stats.extra.get(DUPLICATES_DROPPED, 0) + frame.height - unique.height
    return unique

