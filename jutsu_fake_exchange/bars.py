"""Deterministic, seeded bars with valid OHLC invariants, random access by (symbol, timeframe, time)."""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

UTC = dt.timezone.utc
DAY = 86_400
TIMEFRAME_SECONDS = {"1m": 60, "5m": 300, "1h": 3600, "1d": DAY}


@dataclass(frozen=True)
class SymbolSpec:
    """One listed instrument: `kind` 'crypto' trades 24/7, 'equity' trades XNYS sessions."""

    name: str
    kind: str
    listed: dt.date
    base_price: float = 100.0
    delisted: dt.date | None = None


DEFAULT_SYMBOLS = (
    SymbolSpec("BTCUSDT", "crypto", dt.date(2017, 8, 17), 30_000.0),
    SymbolSpec("ETHUSDT", "crypto", dt.date(2017, 8, 17), 2_000.0),
    SymbolSpec("AAPL", "equity", dt.date(2000, 1, 3), 150.0),
    SymbolSpec("MSFT", "equity", dt.date(2000, 1, 3), 300.0),
    SymbolSpec("SPY", "equity", dt.date(2000, 1, 3), 400.0),
    SymbolSpec("NEWCO", "equity", dt.date(2024, 6, 3), 20.0),
)


def _mix(x: int) -> int:
    """splitmix64 finaliser: a fast deterministic hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


@lru_cache(maxsize=1)
def xnys_sessions() -> tuple[list[int], dict[int, tuple[int, int]]]:
    """XNYS sessions 2000..2030: sorted session-date epochs and date -> (open, close) epoch seconds."""
    import exchange_calendars

    calendar = exchange_calendars.get_calendar("XNYS", start="2000-01-03", end="2030-12-31")
    sessions = calendar.sessions_in_range("2000-01-03", "2030-12-31")
    opens, closes = calendar.opens.loc[sessions], calendar.closes.loc[sessions]
    keys: list[int] = []
    bounds: dict[int, tuple[int, int]] = {}
    for session, open_, close in zip(sessions, opens, closes, strict=True):
        key = int(session.timestamp())
        keys.append(key)
        bounds[key] = (int(open_.timestamp()), int(close.timestamp()))
    return keys, bounds


class BarSource:
    """Bars of the catalogue: `times` lists bar starts, `bar` gives the values of one bar."""

    def __init__(self, symbols: tuple[SymbolSpec, ...] = DEFAULT_SYMBOLS, seed: int = 7) -> None:
        self.symbols = {s.name: s for s in symbols}
        self.seed = seed

    def spec(self, symbol: str) -> SymbolSpec | None:
        return self.symbols.get(symbol)

    def _life(self, spec: SymbolSpec) -> tuple[int, int]:
        first = int(dt.datetime.combine(spec.listed, dt.time(), UTC).timestamp())
        last = int(dt.datetime.combine(spec.delisted, dt.time(), UTC).timestamp()) if spec.delisted else 2**40
        return first, last

    def times(self, symbol: str, timeframe: str, start: int, end: int, limit: int | None = None) -> list[int]:
        """The first `limit` bar starts in [start, end) (epoch s). Daily bars are keyed by session date 00:00 UTC."""
        spec = self.symbols[symbol]
        step = TIMEFRAME_SECONDS[timeframe]
        first, last = self._life(spec)
        lo, hi = max(start, first), min(end, last + DAY)
        if lo >= hi:
            return []
        if spec.kind == "crypto":
            t0 = -(-lo // step) * step
            if limit is not None:
                hi = min(hi, t0 + limit * step)
            return list(range(t0, hi, step))
        keys, bounds = xnys_sessions()
        if timeframe == "1d":
            return keys[bisect.bisect_left(keys, lo):bisect.bisect_left(keys, hi)][:limit]
        out: list[int] = []
        i = max(bisect.bisect_left(keys, lo - DAY), 0)
        while i < len(keys) and keys[i] < hi and (limit is None or len(out) < limit):
            open_, close = bounds[keys[i]]
            t = open_ + max(0, -(-(lo - open_) // step)) * step  # buckets anchored to the session's open
            while t < close and t < hi:
                out.append(t)
                t += step
            i += 1
        return out[:limit]  # a session's bars may overshoot it

    def _session_close(self, t: int) -> int:
        """The close of the XNYS session an intraday instant belongs to."""
        keys, bounds = xnys_sessions()
        i = bisect.bisect_right(keys, t) - 1
        return bounds[keys[i]][1]

    def bar_end(self, symbol: str, timeframe: str, start: int) -> int:
        """When the bar starting (or keyed) at `start` is complete."""
        spec = self.symbols[symbol]
        if timeframe != "1d":
            end = start + TIMEFRAME_SECONDS[timeframe]
            return end if spec.kind == "crypto" or timeframe == "1m" else min(end, self._session_close(start))
        if spec.kind == "crypto":
            return start + DAY
        return xnys_sessions()[1][start][1]

    def session_open(self, symbol: str, day_key: int) -> int:
        """The instant an equity session opens (crypto: the UTC midnight key itself)."""
        if self.symbols[symbol].kind == "crypto":
            return day_key
        return xnys_sessions()[1][day_key][0]

    def bar(self, symbol: str, timeframe: str, start: int, now: int | None = None) -> tuple[float, ...]:
        """(open, high, low, close, volume); if `now` falls inside the bar, the still-forming values at `now`.

        Longer timeframes aggregate the 1m bars they span (first open, max high, min low, last close, summed
        volume), so every timeframe the exchange serves agrees with its 1m bars."""
        end = self.bar_end(symbol, timeframe, start)
        if now is not None and now >= end:
            now = None
        if now is None and timeframe != "1m":
            return self._aggregate(symbol, timeframe, start)
        first = start if timeframe != "1d" else self.session_open(symbol, start)
        last = end if now is None else min(end, now + 1)
        return _combine(self._minutes(symbol, first, -(-(last - first) // 60), now))

    @lru_cache(maxsize=200_000)  # noqa: B019 - one catalogue per exchange; finished bars never change
    def _aggregate(self, symbol: str, timeframe: str, start: int) -> tuple[float, ...]:
        first = start if timeframe != "1d" else self.session_open(symbol, start)
        end = self.bar_end(symbol, timeframe, start)
        return _combine(self._minutes(symbol, first, (end - first) // 60, None))

    def _minutes(self, symbol: str, first: int, count: int, now: int | None) -> np.ndarray:
        """(count, 5) OHLCV of the 1m bars starting at first, first + 60, ...; a minute containing `now` is
        still forming. Finished minutes come from per-day blocks computed in one numpy pass each."""
        if now is not None or first % 60:
            return self._compute(symbol, first, count, now)
        parts, t, left = [], first, count
        while left > 0:
            day, offset = divmod(t, DAY)
            take = min(left, (DAY - offset) // 60)
            parts.append(self._day_block(symbol, day)[offset // 60: offset // 60 + take])
            t, left = t + take * 60, left - take
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @lru_cache(maxsize=512)  # noqa: B019 - ~57 kB per (symbol, UTC day)
    def _day_block(self, symbol: str, day: int) -> np.ndarray:
        return self._compute(symbol, day * DAY, DAY // 60, None)

    def _compute(self, symbol: str, first: int, count: int, now: int | None) -> np.ndarray:
        spec = self.symbols[symbol]
        seed = _mix(self.seed * 1_000_003 + sum(ord(c) * 131**i for i, c in enumerate(symbol)))
        starts = first + 60 * np.arange(count, dtype=np.int64)
        forming = np.zeros(count, dtype=bool) if now is None else now < starts + 60
        close_at = np.where(forming, now if now is not None else 0, starts + 60)
        o = np.round(self._prices(seed, spec.base_price, starts), 6)
        c = np.round(self._prices(seed, spec.base_price, close_at), 6)
        h = np.round(np.maximum(o, c) * (1.0 + 0.003 * _units(seed, starts, 2)), 6)
        low = np.round(np.minimum(o, c) * (1.0 - 0.003 * _units(seed, starts, 3)), 6)
        v = np.round(10.0 + 1000.0 * _units(seed, starts, 4), 4)
        v = np.where(forming, np.round(v * 0.5, 4), v)
        return np.column_stack([o, np.maximum.reduce([h, o, c]), np.minimum.reduce([low, o, c]), c, v])

    def _prices(self, seed: int, base: float, t: np.ndarray) -> np.ndarray:
        t = t.astype(np.float64)
        wave = 0.25 * np.sin(t / 9_000_000.0 + seed % 97) + 0.05 * np.sin(t / 400_000.0 + seed % 13)
        return base * np.exp(wave) * (1.0 + 0.004 * (_units(seed, t.astype(np.int64) // 60, 1) - 0.5))


def _units(seed: int, t: np.ndarray, salt: int) -> np.ndarray:
    """`_unit` over an array of integers (uint64 arithmetic wraps like the masked Python version)."""
    x = np.uint64(seed) ^ (np.asarray(t).astype(np.uint64) * np.uint64(0x100000001B3)) ^ np.uint64(salt)
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return (x ^ (x >> np.uint64(31))).astype(np.float64) / 2.0**64


def _combine(minutes: np.ndarray) -> tuple[float, ...]:
    """One bar from consecutive 1m bars (rows of OHLCV)."""
    return (float(minutes[0, 0]), float(minutes[:, 1].max()), float(minutes[:, 2].min()), float(minutes[-1, 3]),
            round(float(minutes[:, 4].sum()), 4))
