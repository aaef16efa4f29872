"""Deterministic, seeded bars with valid OHLC invariants, random access by (symbol, timeframe, time)."""

from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass
from functools import lru_cache

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


def _unit(seed: int, t: int, salt: int) -> float:
    return _mix(seed ^ (t * 0x100000001B3) ^ salt) / 2**64


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
        out = self._times(symbol, timeframe, start, end, limit)
        return out if limit is None else out[:limit]

    def _times(self, symbol: str, timeframe: str, start: int, end: int, limit: int | None) -> list[int]:
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
        out: list[int] = []
        if timeframe == "1d":
            i = bisect.bisect_left(keys, lo)
            while i < len(keys) and keys[i] < hi and (limit is None or len(out) < limit):
                out.append(keys[i])
                i += 1
            return out
        i = max(bisect.bisect_left(keys, lo - DAY), 0)
        while i < len(keys) and keys[i] < hi and (limit is None or len(out) < limit):
            open_, close = bounds[keys[i]]
            t = max(open_ // step * step, -(-lo // step) * step)
            while t < close and t < hi:
                out.append(t)
                t += step
            i += 1
        return out

    def bar_end(self, symbol: str, timeframe: str, start: int) -> int:
        """When the bar starting (or keyed) at `start` is complete."""
        spec = self.symbols[symbol]
        if timeframe != "1d":
            return start + TIMEFRAME_SECONDS[timeframe]
        if spec.kind == "crypto":
            return start + DAY
        return xnys_sessions()[1][start][1]

    def session_open(self, symbol: str, day_key: int) -> int:
        """The instant an equity session opens (crypto: the UTC midnight key itself)."""
        if self.symbols[symbol].kind == "crypto":
            return day_key
        return xnys_sessions()[1][day_key][0]

    def price(self, seed: int, base: float, t: float) -> float:
        wave = 0.25 * math.sin(t / 9_000_000.0 + seed % 97) + 0.05 * math.sin(t / 400_000.0 + seed % 13)
        return base * math.exp(wave) * (1.0 + 0.004 * (_unit(seed, int(t) // 60, 1) - 0.5))

    def bar(self, symbol: str, timeframe: str, start: int, now: int | None = None) -> tuple[float, ...]:
        """(open, high, low, close, volume); if `now` falls inside the bar, the still-forming values at `now`."""
        spec = self.symbols[symbol]
        seed = _mix(self.seed * 1_000_003 + sum(ord(c) * 131**i for i, c in enumerate(symbol)))
        end = self.bar_end(symbol, timeframe, start)
        step = TIMEFRAME_SECONDS[timeframe]
        forming = now is not None and now < end
        o = round(self.price(seed, spec.base_price, start), 6)
        c_time = min(now, end) if forming and now is not None else start + step
        c = round(self.price(seed, spec.base_price, c_time), 6)
        h = round(max(o, c) * (1.0 + 0.003 * _unit(seed, start, 2)), 6)
        low = round(min(o, c) * (1.0 - 0.003 * _unit(seed, start, 3)), 6)
        v = round(10.0 + 1000.0 * _unit(seed, start, 4), 4)
        if forming:
            v = round(v * 0.5, 4)
        return o, max(h, o, c), min(low, o, c), c, v
