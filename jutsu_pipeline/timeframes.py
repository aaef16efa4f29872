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
