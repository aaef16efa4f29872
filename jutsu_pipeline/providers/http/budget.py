"""One rate budget per provider and credentials, shared by every process on the machine (or volume):
the token bucket's state in a SQLite file, each operation one `BEGIN IMMEDIATE` transaction, so
processes never together exceed `rate` and server feedback (`hold`, `limit_available`) reaches them all.

Why not pyrate-limiter (evaluated first): its SQLite bucket is a sliding-window log with no atomic "pause
everyone until t" or "only n left" operation, which the Retry-After and used-weight feedback need.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from jutsu_pipeline.providers.http.hold import state_dir
from jutsu_pipeline.providers.http.limits import Change, TokenBucket

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


class SharedTokenBucket(TokenBucket):
    """A TokenBucket whose state is the SQLite file `path`'s row `key`; the clock must be one all processes
    share (wall time)."""

    def __init__(self, path: Path, key: str, rate: float, capacity: float, *,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(rate, capacity, clock=clock, sleep=sleep)  # its lock: one thread at a time uses _con
        self.path, self.key = Path(path), key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.execute(_SCHEMA)

    def _update(self, change: Change) -> float | None:
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

    def close(self) -> None:
        self._con.close()
