"""Scriptable faults of the fake exchange: per route, scripted (one per request), always, or random."""

from __future__ import annotations

import random
import threading
from collections import defaultdict, deque
from dataclasses import dataclass

# Faults that change the data a route serves (each route implements the ones that fit its protocol).
DATA_KINDS = frozenset({"duplicate_boundary", "descending", "forming_jitter", "outside_range", "nulls",
                        "mismatched_arrays", "future_bar", "conflicting_duplicate", "off_grid", "naive_timestamps",
                        "stuck_cursor"})


@dataclass(frozen=True)
class Fault:
    """One misbehaviour. Build with the class methods, e.g. `Fault.rate_limited(1)`."""

    kind: str
    status: int | None = None
    retry_after: float | None = None
    http_date: bool = False  # Retry-After as an HTTP-date instead of seconds
    seconds: float = 0.0
    body: str | None = None

    @classmethod
    def ok(cls) -> Fault:
        """No fault: a placeholder in a script (e.g. let page 1 through, fail page 2)."""
        return cls("none")

    @classmethod
    def http_status(cls, status: int, retry_after: float | None = None, *, http_date: bool = False,
                    body: str | None = None) -> Fault:
        return cls("status", status=status, retry_after=retry_after, http_date=http_date, body=body)

    @classmethod
    def rate_limited(cls, retry_after: float | None = 1.0, *, http_date: bool = False) -> Fault:
        return cls.http_status(429, retry_after, http_date=http_date,
                               body='{"code":-1003,"msg":"Too many requests; current limit is exceeded."}')

    @classmethod
    def banned(cls, retry_after: float = 120.0) -> Fault:
        return cls.http_status(418, retry_after,
                               body='{"code":-1003,"msg":"Way too much request weight used; IP banned."}')

    @classmethod
    def server_error(cls, status: int = 503) -> Fault:
        return cls.http_status(status, body='{"code":-1001,"msg":"Internal error; unable to process your request."}')

    @classmethod
    def slow_headers(cls, seconds: float) -> Fault:
        return cls("slow_headers", seconds=seconds)

    @classmethod
    def stall_body(cls, seconds: float) -> Fault:
        return cls("stall_body", seconds=seconds)

    @classmethod
    def drop_mid_body(cls) -> Fault:
        return cls("drop_mid_body")

    @classmethod
    def truncated_json(cls) -> Fault:
        return cls("truncated_json")

    @classmethod
    def html_200(cls) -> Fault:
        return cls("html_200")

    @classmethod
    def data(cls, kind: str) -> Fault:
        """A data pathology: one of DATA_KINDS."""
        if kind not in DATA_KINDS:
            raise ValueError(f"unknown data fault {kind!r}; choose one of {sorted(DATA_KINDS)}")
        return cls(kind)


# A mix of transient faults every provider must survive (used for "20% faults" runs).
TRANSIENT_MIX = (
    Fault.rate_limited(0.2),
    Fault.rate_limited(0.2, http_date=True),
    Fault.server_error(500),
    Fault.server_error(502),
    Fault.server_error(503),
    Fault.server_error(504),
    Fault.drop_mid_body(),
    Fault.truncated_json(),
    Fault.html_200(),
)


class FaultPlan:
    """Faults per route name ('binance', 'alpaca', 'schwab', 'schwab_token', 'yahoo', 'yahoo_crumb', '*')."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripted: dict[str, deque[Fault]] = defaultdict(deque)
        self._always: dict[str, list[tuple[Fault, dict[str, str]]]] = defaultdict(list)
        self._random: dict[str, tuple[float, tuple[Fault, ...], random.Random]] = {}

    def script(self, route: str, *faults: Fault) -> None:
        """The next requests of `route` get these faults, one each, in order."""
        with self._lock:
            self._scripted[route].extend(faults)

    def always(self, route: str, fault: Fault, when: dict[str, str] | None = None) -> None:
        """Every request of `route` (whose query has the `when` items, e.g. {"symbol": "BTCUSDT"}) gets `fault`."""
        with self._lock:
            self._always[route].append((fault, dict(when or {})))

    def random(self, route: str, rate: float, faults: tuple[Fault, ...] = TRANSIENT_MIX, seed: int = 0) -> None:
        """Each request of `route` gets one of `faults` with probability `rate` (seeded, reproducible)."""
        with self._lock:
            self._random[route] = (rate, tuple(faults), random.Random(seed))

    def clear(self) -> None:
        with self._lock:
            self._scripted.clear()
            self._always.clear()
            self._random.clear()

    def next(self, route: str, params: dict[str, str] | None = None) -> list[Fault]:
        """The faults of the next request of `route` (scripted first, then always, then random)."""
        params = params or {}
        with self._lock:
            out: list[Fault] = []
            for key in (route, "*"):
                if self._scripted[key]:
                    out.append(self._scripted[key].popleft())
                    break
            out.extend(fault for fault, when in self._always[route] + self._always["*"]
                       if all(params.get(k) == v for k, v in when.items()))
            for key in (route, "*"):
                if key in self._random:
                    rate, faults, rng = self._random[key]
                    if rng.random() < rate:
                        out.append(rng.choice(faults))
            return out
