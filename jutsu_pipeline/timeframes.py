"""Bar timeframes the pipeline knows, and their durations."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum


class Timeframe(StrEnum):
    """A bar length. Daily bars are keyed by session date; the others by bar start in UTC."""

    D1 = "1d"
    H1 = "1h"
    M15 = "15m"
    M5 = "5m"
    M1 = "1m"

    @property
    def duration(self) -> dt.timedelta:
        return _DURATIONS[self]

    @property
    def is_intraday(self) -> bool:
        return self is not Timeframe.D1


_DURATIONS = {
    Timeframe.D1: dt.timedelta(days=1),
    Timeframe.H1: dt.timedelta(hours=1),
    Timeframe.M15: dt.timedelta(minutes=15),
    Timeframe.M5: dt.timedelta(minutes=5),
    Timeframe.M1: dt.timedelta(minutes=1),
}


class Grain(StrEnum):
    """How much time one bars partition (per symbol) covers."""

    YEAR = "year"
    QUARTER = "quarter"
    MONTH = "month"
    WEEK = "week"
    SESSION = "session"

    def period_start(self, day: dt.date) -> dt.date:
        """First day of the period holding `day` (the day itself for sessions)."""
        if self is Grain.YEAR:
            return day.replace(month=1, day=1)
        if self is Grain.QUARTER:
            return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
        if self is Grain.MONTH:
            return day.replace(day=1)
        if self is Grain.WEEK:
            return day - dt.timedelta(days=day.weekday())
        return day

    def next_period_start(self, day: dt.date) -> dt.date:
        """First day of the period after the one holding `day`: the period's start plus the longest such period
        lands in the next one (never past it: two periods always last longer)."""
        longest = {Grain.YEAR: 366, Grain.QUARTER: 92, Grain.MONTH: 31, Grain.WEEK: 7, Grain.SESSION: 1}[self]
        return self.period_start(self.period_start(day) + dt.timedelta(days=longest))

    @property
    def polars_every(self) -> str | None:
        """The `dt.truncate` interval giving a bar date's period start (None for sessions)."""
        return {Grain.YEAR: "1y", Grain.QUARTER: "1q", Grain.MONTH: "1mo", Grain.WEEK: "1w"}.get(self)


# The default grain of each timeframe: 500 symbols x 20 years stays at or under 40,000 partitions per asset
# (Dagster advises <= 100,000; months would give 120,000), and one window of one symbol holds at most ~131k
# bars (1m bars of a 24/7 quarter). `partition_grain` overrides them per market (docs/configuration.md).
DEFAULT_GRAINS: dict[Timeframe, Grain] = {
    Timeframe.D1: Grain.YEAR,
    Timeframe.H1: Grain.YEAR,
    Timeframe.M15: Grain.QUARTER,
    Timeframe.M5: Grain.QUARTER,
    Timeframe.M1: Grain.QUARTER,
}
PARTITION_LIMIT = 100_000  # Dagster's guidance for partitions per asset


def estimate_windows(grain: Grain, start: dt.date, end: dt.date, always_open: bool) -> int:
    """Partitions of one symbol between `start` and `end` (sessions approximated by weekdays)."""
    if grain is Grain.SESSION:
        days = (end - start).days + 1
        if always_open:
            return days
        weeks, rest = divmod(days, 7)
        return weeks * 5 + sum((start + dt.timedelta(days=i)).weekday() < 5 for i in range(rest))
    count, period = 0, grain.period_start(start)
    while period <= end:
        count += 1
        period = grain.next_period_start(period)
    return count
