"""Client-side protection of a provider: a token-bucket rate limiter and a circuit breaker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_EPSILON = 1e-9


class TokenBucket:
    """`rate` tokens per second up to `capacity`; `acquire(n)` blocks until n tokens are available.

    Thread-safe: every provider instance of one process shares its provider's bucket.
    `hold(seconds)` pauses all acquisitions (server feedback, e.g. Binance's used weight).
    """

    def __init__(self, rate: float, capacity: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._tokens = capacity
        self._stamp = clock()
        self._held_until = 0.0
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self, tokens: float = 1.0) -> float:
        """Take `tokens` (waiting as needed); returns the seconds waited."""
        tokens = min(tokens, self.capacity)
        waited = 0.0
        while True:  # not a retry loop: waits for refill, then takes the tokens atomically
            with self._lock:
                now = self._clock()
                self._refill(now)
                # Tolerance: a refill computed in floats can land a hair under `tokens` and ask for a
                # sleep too short to move the clock, which would spin forever.
                if now >= self._held_until and self._tokens >= tokens - _EPSILON:
                    self._tokens = max(self._tokens - tokens, 0.0)
                    return waited
                delay = max(self._held_until - now, (tokens - self._tokens) / self.rate)
            self._sleep(delay)
            waited += delay

    def limit_available(self, available: float) -> None:
        """Server feedback: no more than `available` tokens are left right now."""
        with self._lock:
            self._refill(self._clock())
            self._tokens = min(self._tokens, max(available, 0.0))

    def hold(self, seconds: float) -> None:
        """Block every acquisition for `seconds` (e.g. until a rate-limit window resets)."""
        with self._lock:
            self._held_until = max(self._held_until, self._clock() + seconds)


@dataclass
class BreakerState:
    failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `cooldown` s lets one trial request through
    (half-open): success closes it, failure re-opens it."""

    def __init__(self, threshold: int = 5, cooldown: float = 30.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._state = BreakerState()
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            return self._state_name(self._clock())

    def _state_name(self, now: float) -> str:
        if self._state.opened_at is None:
            return "closed"
        if now - self._state.opened_at >= self.cooldown:
            return "half-open"
        return "open"

    def allow(self) -> float | None:
        """None if a request may go now, else the seconds until the breaker half-opens."""
        with self._lock:
            now = self._clock()
            name = self._state_name(now)
            if name == "closed":
                return None
            if name == "half-open" and not self._state.trial_in_flight:
                self._state.trial_in_flight = True
                return None
            assert self._state.opened_at is not None
            return max(self._state.opened_at + self.cooldown - now, 0.0)

    def record_success(self) -> None:
        with self._lock:
            self._state = BreakerState()

    def record_failure(self) -> None:
        with self._lock:
            self._state.failures += 1
            if self._state.trial_in_flight or self._state.failures >= self.threshold:
                self._state.opened_at = self._clock()
            self._state.trial_in_flight = False

    def record_neutral(self) -> None:
        """A response that says nothing about health (e.g. 429 or a 4xx): releases a half-open trial."""
        with self._lock:
            self._state.trial_in_flight = False
