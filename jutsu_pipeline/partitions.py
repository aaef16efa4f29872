"""Partitions of the bars assets: symbol × time window (year/quarter/month/week/session per timeframe).

Keys look like ``2012-05-01|FB``: Dagster sorts multi-partition dimensions by name, so the
``date`` dimension comes first and the ``symbol`` dimension second.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

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


def split_partition_key(key: str) -> tuple[str, str]:
    """(date_key, symbol) of a multi-partition key (Dagster's MultiPartitionKey is this string)."""
    date_key, _, symbol = str(key).partition("|")
    if not symbol:
        raise ValueError(f"partition key {key!r} is not of the form '<date>|<SYMBOL>'")
    return date_key, symbol


def _midnight(day: dt.date, tz: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tz)


def _next_weekday(day: dt.date) -> dt.date:
    return day + dt.timedelta(days=3 if day.weekday() == 4 else 2 if day.weekday() == 5 else 1)


@dataclass(frozen=True)
class BarsPartitioning:
    """How one market × timeframe is partitioned: a key is the first day of its period (`partition_grain`)
    or its session date; its window is that period clipped to the market's start/end."""

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

    def date_keys(self, now: dt.datetime | None = None) -> list[str]:
        """The time dimension's keys as of `now`, oldest first: exactly Dagster's partition keys of
        `assets.partitions.time_partitions_def`, computed from the calendar (domain code needs no Dagster)."""
        now = now or dt.datetime.now(UTC)
        cfg, grain, calendar = self.config, self.grain, self.calendar
        tz = UTC if calendar.always_open else calendar.timezone
        last = cfg.end or max(cfg.start, now.date()) + dt.timedelta(days=7)
        if grain is Grain.SESSION and not calendar.always_open:
            # Dagster's cron ticks at midnight (exchange tz) on weekdays; closed weekdays are excluded.
            sessions = calendar.sessions(cfg.start - dt.timedelta(days=15), last)
            earlier = [day for day in sessions if day < cfg.start]
            candidates, window_end = sessions[len(earlier):], _next_weekday
            preceding = earlier[-1] if earlier else None
        else:
            candidates, window_end = [grain.period_start(cfg.start)], grain.next_period_start
            while (following := grain.next_period_start(candidates[-1])) <= last:
                candidates.append(following)
            preceding = grain.period_start(candidates[0] - dt.timedelta(days=1))
        keys = [day for day in candidates if _midnight(window_end(day), tz) <= now]
        # Open-ended: the next window too (in progress, or the session after a closed weekday); before the
        # history starts, once the tick preceding its first window has passed.
        if cfg.end is None and len(keys) < len(candidates) and (
                keys or (preceding is not None and _midnight(preceding, tz) < now)):
            keys.append(candidates[len(keys)])
        return [day.isoformat() for day in keys]

    def all_partition_keys(self) -> list[str]:
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
            return _midnight(day), _midnight(day + dt.timedelta(days=1))
        lo = max(day, start)
        hi = self.grain.next_period_start(day)
        if end is not None:
            hi = min(hi, end + dt.timedelta(days=1))
        if intraday and not self.calendar.always_open:
            # From the first session's open to the last session's close (early closes honoured).
            sessions = self.calendar.sessions(lo, hi - dt.timedelta(days=1))
            if sessions:
                return self.calendar.session_bounds(sessions[0])[0], self.calendar.session_bounds(sessions[-1])[1]
        return _midnight(lo), _midnight(max(lo, hi))

    def sessions(self, date_key: str) -> list[dt.date]:
        """Sessions inside a partition's window (the session itself for the session grain)."""
        day = dt.date.fromisoformat(date_key)
        if self.grain is Grain.SESSION:
            return [day]
        last = self.grain.next_period_start(day) - dt.timedelta(days=1)
        return self.calendar.sessions(max(day, self.config.start), min(last, self.config.end or last))


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
