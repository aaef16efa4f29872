"""One rate budget per provider and credentials, shared by every process on the machine (or volume).

A token bucket whose state (tokens, last refill, hold-until) lives in a SQLite file; each operation is
one `BEGIN IMMEDIATE` transaction, so processes take tokens one after another and never together
exceed `rate`. Server feedback applies to all of them: `hold(s)` after a 429/418 Retry-After or a
ban, `limit_available(n)` from Binance's used-weight header.

Why not pyrate-limiter (evaluated first): its SQLite bucket is a sliding-window log that can count and
delay, but has no atomic "pause everyone until t" or "only n left" operation, which the Retry-After and
used-weight feedback need; emulating them by inserting fake items would be fragile. This is the
in-process TokenBucket's algorithm with its state moved into SQLite (stdlib only).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from jutsu_pipeline.providers.http.hold import state_dir

BUDGET_ENV = "JUTSU_RATE_BUDGET"  # path of the SQLite file; default: beside the Dagster instance
BUDGET_FILE = Path("jutsu") / "rate_budget.sqlite"  # next to hold.py's provider_holds.sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget (
    key        TEXT PRIMARY KEY,
    tokens     REAL NOT NULL,
    stamp      REAL NOT NULL,   -- wall-clock seconds of the last refill
    held_until REAL NOT NULL    -- no token is handed out before this time
)
"""


def budget_path() -> Path | None:
    """$JUTSU_RATE_BUDGET, else `jutsu/rate_budget.sqlite` in the Dagster instance directory in scope
    (the provider holds' folder) or in $DAGSTER_HOME, else None (a per-process bucket)."""
    if os.environ.get(BUDGET_ENV):
        return Path(os.environ[BUDGET_ENV]).expanduser()
    home = state_dir() or os.environ.get("DAGSTER_HOME")
    return Path(home) / BUDGET_FILE if home else None


def budget_key(provider: str, base_url: str, scope: str, identity: str | None) -> str:
    """`provider|base_url|scope|<hash of the credential>`: the same key means the same server-side budget."""
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16] if identity else "-"
    return f"{provider}|{base_url}|{scope}|{digest}"


class SharedTokenBucket:
    """`rate` tokens per second up to `capacity`, state in the SQLite file `path` under `key`.

    Same interface as limits.TokenBucket. The clock must be one all processes share (wall time).
    """

    def __init__(self, path: Path, key: str, rate: float, capacity: float, *,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.path, self.key, self.rate, self.capacity = Path(path), key, rate, capacity
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()  # one sqlite3 connection per bucket, used by one thread at a time
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.execute(_SCHEMA)

    def _update(self, change: Callable[[float, float, float], tuple[float, float, float | None]]) -> float | None:
        """Run `change(now, tokens, held_until) -> (tokens, held_until, result)` in one write transaction."""
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                now = self._clock()
                row = self._con.execute("SELECT tokens, stamp, held_until FROM budget WHERE key = ?",
                                        (self.key,)).fetchone()
                tokens, stamp, held = row if row else (self.capacity, now, 0.0)
                tokens = min(self.capacity, tokens + max(now - stamp, 0.0) * self.rate)
                tokens, held, result = change(now, tokens, held)
                self._con.execute("INSERT INTO budget VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                                  "tokens = excluded.tokens, stamp = excluded.stamp, held_until = excluded.held_until",
                                  (self.key, tokens, now, held))
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        return result

    def acquire(self, tokens: float = 1.0) -> float:
        """Take `tokens` (waiting as needed); returns the seconds waited."""
        tokens = min(tokens, self.capacity)
        waited = 0.0

        def take(now: float, available: float, held: float) -> tuple[float, float, float | None]:
            if now >= held and available >= tokens:
                return available - tokens, held, None
            return available, held, max(held - now, (tokens - available) / self.rate)

        while True:  # not a retry loop: waits for refill, then takes the tokens atomically
            delay = self._update(take)
            if delay is None:
                return waited
            self._sleep(delay)
            waited += delay

    def limit_available(self, available: float) -> None:
        """Server feedback: no more than `available` tokens are left right now (for every process)."""
        self._update(lambda now, tokens, held: (min(tokens, max(available, 0.0)), held, None))

    def hold(self, seconds: float) -> None:
        """Block every process's acquisitions for `seconds` (Retry-After, a ban, a window reset)."""
        self._update(lambda now, tokens, held: (tokens, max(held, now + seconds), None))

    def close(self) -> None:
        self._con.close()
