"""Partitions of the bars assets: symbol × time window (year/quarter/month/week/session per timeframe).

Keys look like ``2012-05-01|FB``: Dagster sorts multi-partition dimensions by name, so the
``date`` dimension comes first and the ``symbol`` dimension second.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

import dagster as dg

from jutsu_pipeline.calendars import UTC, SessionCalendar, calendar_for
from jutsu_pipeline.config import MarketConfig
from jutsu_pipeline.timeframes import Grain, Timeframe

DATE_DIM = "date"
SYMBOL_DIM = "symbol"
KEY_FORMAT = "%Y-%m-%d"

Window = tuple[dt.datetime, dt.datetime]


def partition_key(date_key: str, symbol: str) -> str:
    """The multi-partition key string for one symbol's window."""
    return f"{date_key}|{symbol}"


def split_partition_key(key: str | dg.MultiPartitionKey) -> tuple[str, str]:
    """(date_key, symbol) of a multi-partition key."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims[DATE_DIM], dims[SYMBOL_DIM]
    date_key, _, symbol = str(key).partition("|")
    if not symbol:
        raise ValueError(f"partition key {key!r} is not of the form '<date>|<SYMBOL>'")
    return date_key, symbol


def _midnight_utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), UTC)


PERIOD_CRONS = {
    Grain.YEAR: "0 0 1 1 *",
    Grain.QUARTER: "0 0 1 1,4,7,10 *",
    Grain.MONTH: "0 0 1 * *",
    Grain.WEEK: "0 0 * * 1",
}


@dataclass(frozen=True)
class BarsPartitioning:
    """How one market × timeframe is partitioned, and the bar window of each partition.

    A partition's key is the first day of its period (`partition_grain`: year, quarter, month, week) or
    its session date; its window is that period clipped to the market's start/end.
    """

    market: str
    timeframe: Timeframe
    config: MarketConfig
    base: Timeframe | None = None  # set for a derived timeframe: partitioned like this base timeframe
    calendar: SessionCalendar = field(init=False)
    _windows: dict = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        cal = calendar_for(self.config.calendar, self.config.start, self.config.end)
        object.__setattr__(self, "calendar", cal)
        object.__setattr__(self, "_windows", {})

    def __hash__(self) -> int:
        return hash((self.market, self.timeframe))

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.config.symbols

    @property
    def grain(self) -> Grain:
        """The grain of this timeframe (a derived timeframe is partitioned like its base)."""
        return self.config.grain(self.base or self.timeframe)

    @property
    def derived(self) -> bool:
        return self.base is not None

    def date_key_for(self, day: dt.date) -> str:
        """The date key of the partition whose period holds `day`."""
        return self.grain.period_start(day).isoformat()

    @cached_property
    def time_partitions_def(self) -> dg.TimeWindowPartitionsDefinition:
        cfg, tz, grain = self.config, str(self.calendar.timezone), self.grain
        end_offset = 0 if cfg.end else 1  # open-ended markets include the in-progress window
        if grain is not Grain.SESSION:
            end = grain.next_period_start(cfg.end).isoformat() if cfg.end else None
            return dg.TimeWindowPartitionsDefinition(
                cron_schedule=PERIOD_CRONS[grain], start=grain.period_start(cfg.start).isoformat(), end=end,
                fmt=KEY_FORMAT, timezone="UTC" if self.calendar.always_open else tz, end_offset=end_offset,
            )
        if self.calendar.always_open:
            end = (cfg.end + dt.timedelta(days=1)).isoformat() if cfg.end else None
            return dg.DailyPartitionsDefinition(
                start_date=cfg.start.isoformat(), end_date=end, timezone="UTC", end_offset=end_offset
            )
        # One partition per session: weekdays minus the exchange's closures. A window runs until the
        # next session starts, so the partitions end at the first session after `end`.
        end = self.calendar.next_session(cfg.end).isoformat() if cfg.end else None
        first = self.calendar.sessions(cfg.start, cfg.start + dt.timedelta(days=15))[0]
        closed = [dt.datetime.combine(day, dt.time()) for day in self.calendar.closed_weekdays()]
        return dg.TimeWindowPartitionsDefinition(
            cron_schedule="0 0 * * 1-5",
            start=first.isoformat(),
            end=end,
            fmt=KEY_FORMAT,
            timezone=tz,
            end_offset=end_offset,
            exclusions=closed,
        )

    @cached_property
    def partitions_def(self) -> dg.MultiPartitionsDefinition:
        return dg.MultiPartitionsDefinition(
            {
                DATE_DIM: self.time_partitions_def,
                SYMBOL_DIM: dg.StaticPartitionsDefinition(list(self.symbols)),
            }
        )

    def date_keys(self) -> list[str]:
        """All date keys of the time dimension, oldest first (as of now)."""
        return list(self.time_partitions_def.get_partition_keys())

    def all_partition_keys(self) -> list[str]:
        """Every partition key, built from the per-dimension lists (fast even for large sets)."""
        dates = self.date_keys()
        return [partition_key(d, s) for s in self.symbols for d in dates]

    def window(self, date_key: str) -> Window:
        """The UTC [start, end) that a partition's bars live in, clipped to the market's history."""
        cached = self._windows.get(date_key)
        if cached is None:
            cached = self._windows[date_key] = self.window_for(date_key, self.config.start, self.config.end)
        return cached

    def window_for(self, date_key: str, start: dt.date, end: dt.date | None) -> Window:
        """The window of `date_key` had the market's history been [start, end] (bounds-change detection)."""
        day = dt.date.fromisoformat(date_key)
        intraday = (self.base or self.timeframe).is_intraday
        if self.grain is Grain.SESSION:
            if intraday:
                return self.calendar.session_bounds(day)
            return _midnight_utc(day), _midnight_utc(day + dt.timedelta(days=1))
        lo = max(day, start)
        hi = self.grain.next_period_start(day)
        if end is not None:
            hi = min(hi, end + dt.timedelta(days=1))
        if intraday and not self.calendar.always_open:
            # From the first session's open to the last session's close (early closes honoured).
            sessions = self.calendar.sessions(lo, hi - dt.timedelta(days=1))
            if sessions:
                return self.calendar.session_bounds(sessions[0])[0], self.calendar.session_bounds(sessions[-1])[1]
        return _midnight_utc(lo), _midnight_utc(max(lo, hi))

    def sessions(self, date_key: str) -> list[dt.date]:
        """Sessions inside a partition's window (the session itself for the session grain)."""
        if self.grain is Grain.SESSION:
            return [dt.date.fromisoformat(date_key)]
        day = dt.date.fromisoformat(date_key)
        lo = max(day, self.config.start)
        hi = self.grain.next_period_start(day) - dt.timedelta(days=1)
        if self.config.end is not None:
            hi = min(hi, self.config.end)
        return self.calendar.sessions(lo, hi)


def contiguous_runs(date_keys: list[str], ordered_keys: list[str]) -> list[list[str]]:
    """Split `date_keys` into runs that are adjacent in `ordered_keys` (the time dimension's order)."""
    position = {key: i for i, key in enumerate(ordered_keys)}
    unknown = [k for k in date_keys if k not in position]
    if unknown:
        raise ValueError(f"unknown date partition keys {unknown[:5]}")
    runs: list[list[str]] = []
    for key in sorted(set(date_keys), key=position.__getitem__):
        if runs and position[key] == position[runs[-1][-1]] + 1:
            runs[-1].append(key)
        else:
            runs.append([key])
    return runs
