"""Client-side protection of a provider: a token-bucket rate limiter and a circuit breaker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_EPSILON = 1e-9


Change = Callable[[float, float, float], tuple[float, float, float | None]]


class TokenBucket:
    """`rate` tokens per second up to `capacity`; `acquire(n)` blocks until n tokens are available.
    Thread-safe: every provider instance of one process shares its provider's bucket. Subclasses keep
    the state elsewhere (budget.SharedTokenBucket: a SQLite file every process shares)."""

    def __init__(self, rate: float, capacity: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate, self.capacity, self._clock, self._sleep = rate, capacity, clock, sleep
        self._state = (capacity, clock(), 0.0)  # tokens, last refill, no token before this time
        self._lock = threading.Lock()

    def _update(self, change: Change) -> float | None:
        """Refill, then `change(now, tokens, held_until) -> (tokens, held_until, result)` atomically."""
        with self._lock:
            now = self._clock()
            tokens, stamp, held = self._state
            tokens, held, result = change(now, min(self.capacity, tokens + max(now - stamp, 0.0) * self.rate), held)
            self._state = (tokens, now, held)
        return result

    def acquire(self, tokens: float = 1.0) -> float:
        """Take `tokens` (waiting as needed); returns the seconds waited."""
        tokens = min(tokens, self.capacity)
        waited = 0.0

        def take(now: float, available: float, held: float) -> tuple[float, float, float | None]:
            # Tolerance: a refill computed in floats can land a hair under `tokens` and ask for a sleep too
            # short to move the clock, which would spin forever.
            if now >= held and available >= tokens - _EPSILON:
                return max(available - tokens, 0.0), held, None
            return available, held, max(held - now, (tokens - available) / self.rate)

        while (delay := self._update(take)) is not None:  # waits for refill, then takes the tokens atomically
            self._sleep(delay)
            waited += delay
        return waited

    def limit_available(self, available: float) -> None:
        """Server feedback: no more than `available` tokens are left right now (e.g. Binance's used weight)."""
        self._update(lambda now, tokens, held: (min(tokens, max(available, 0.0)), held, None))

    def hold(self, seconds: float) -> None:
        """Block every acquisition for `seconds` (Retry-After, a ban, a window reset)."""
        self._update(lambda now, tokens, held: (tokens, max(held, now + seconds), None))


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `cooldown` s lets one trial request through
    (half-open): success closes it, failure re-opens it."""

    def __init__(self, threshold: int = 5, cooldown: float = 30.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0  # consecutive
        self._opened_at: float | None = None
        self._trial_in_flight = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            return self._state_name(self._clock())

    def _state_name(self, now: float) -> str:
        if self._opened_at is None:
            return "closed"
        if now - self._opened_at >= self.cooldown:
            return "half-open"
        return "open"

    def allow(self) -> float | None:
        """None if a request may go now, else the seconds until the breaker half-opens."""
        with self._lock:
            now = self._clock()
            name = self._state_name(now)
            if name == "closed":
                return None
            if name == "half-open" and not self._trial_in_flight:
                self._trial_in_flight = True
                return None
            assert self._opened_at is not None
            return max(self._opened_at + self.cooldown - now, 0.0)

    def record_success(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._trial_in_flight = 0, None, False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_in_flight or self._failures >= self.threshold:
                self._opened_at = self._clock()
            self._trial_in_flight = False

    def record_neutral(self) -> None:
        """A response that says nothing about health (e.g. 429 or a 4xx): releases a half-open trial."""
        with self._lock:
            self._trial_in_flight = False
