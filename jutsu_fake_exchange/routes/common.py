"""Helpers shared by the fake protocols."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from jutsu_fake_exchange.bars import DAY

UTC = dt.timezone.utc


def local_midnight(day_key: int, tz: str) -> int:
    """The instant of local midnight (in `tz`) of the date keyed by `day_key` (00:00 UTC epoch s)."""
    day = dt.datetime.fromtimestamp(day_key, UTC).date()
    return int(dt.datetime.combine(day, dt.time(), ZoneInfo(tz)).timestamp())


def keys_for_instants(exchange, symbol: str, timeframe: str, lo: int, hi: int, stamp) -> list[tuple[int, int]]:  # noqa: ANN001
    """(key, stamp) of bars whose protocol stamp lies in [lo, hi); daily keys are searched a day wider."""
    pad = DAY * 2 if timeframe == "1d" else 0
    keys = exchange.bars.times(symbol, timeframe, lo - pad, hi + pad)
    return [(key, instant) for key in keys if lo <= (instant := stamp(key)) < hi]


def served_bar(exchange, symbol: str, timeframe: str, key: int, jitter: bool) -> tuple[float, ...] | None:  # noqa: ANN001
    """Values of a bar as the exchange serves it now (forming bars included), or None if not started."""
    now = int(exchange.clock.now())
    start = key if timeframe != "1d" else exchange.bars.session_open(symbol, key)
    if start > now:
        return None
    o, h, low, c, v = exchange.bars.bar(symbol, timeframe, key, now)
    if jitter and exchange.bars.bar_end(symbol, timeframe, key) > now:
        c = round(c * (1.0 + random.uniform(-0.002, 0.002)), 6)
        h, low = max(h, c), min(low, c)
    return o, h, low, c, v
