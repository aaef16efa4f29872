"""Provider holds: a ban (HTTP 418) or a Retry-After longer than we wait stops every request to that
provider, in this run and every other run of the Dagster instance, until the hold ends: holds persist in
`<instance dir>/jutsu/provider_holds.sqlite`. Without an instance directory (plain library use) a hold
lives in memory for the provider client that received it.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

UTC = dt.timezone.utc
HOLDS_FILE = Path("jutsu") / "provider_holds.sqlite"
_state_dir: contextvars.ContextVar[Path | None] = contextvars.ContextVar("jutsu_state_dir", default=None)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS provider_holds (
    provider TEXT NOT NULL,
    base_url TEXT NOT NULL,
    until REAL NOT NULL,      -- epoch seconds (wall clock: shared between processes)
    status INTEGER,
    reason TEXT NOT NULL,
    set_at REAL NOT NULL,
    PRIMARY KEY (provider, base_url)
)
"""


@dataclass(frozen=True)
class Hold:
    """No request to `provider` at `base_url` before `until`."""

    provider: str
    base_url: str
    until: dt.datetime
    status: int | None
    reason: str

    def describe(self) -> str:
        return f"{self.provider} is on hold until {self.until:%Y-%m-%d %H:%M:%S} UTC ({self.reason})"


class HoldStore:
    """Holds keyed by (provider, base_url). `path=None` keeps them in memory (this object only)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._memory = None if path else sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self._memory is not None:
            with self._lock:
                yield self._memory
            return
        # A short-lived connection per call: processes come and go; the timeout waits out a concurrent writer.
        con = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        try:
            yield con
        finally:
            con.close()

    def put(self, provider: str, base_url: str, seconds: float, status: int | None, reason: str) -> Hold:
        """Hold the provider for `seconds` from now (an existing longer hold is kept); returns the hold in force."""
        now = time.time()
        until = now + max(seconds, 0.0)
        with self._lock, self._connect() as con:
            con.execute(
                "INSERT INTO provider_holds VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (provider, base_url) DO UPDATE "
                "SET until = excluded.until, status = excluded.status, reason = excluded.reason, "
                "set_at = excluded.set_at WHERE excluded.until > provider_holds.until",
                (provider, base_url, until, status, reason, now))
        # The hold in force: ours, or a longer one another process set (a zero-length hold is already over).
        return self.active(provider, base_url) or Hold(provider, base_url, _utc(until), status, reason)

    def active(self, provider: str, base_url: str) -> Hold | None:
        """The hold in force now, if any."""
        now = time.time()
        with self._connect() as con:
            row = con.execute("SELECT until, status, reason FROM provider_holds WHERE provider = ? AND base_url = ? "
                              "AND until > ?", (provider, base_url, now)).fetchone()
        return Hold(provider, base_url, _utc(row[0]), row[1], row[2]) if row else None

    def all(self) -> list[Hold]:
        """Every hold still in force (for operators and tests)."""
        now = time.time()
        with self._connect() as con:
            rows = con.execute("SELECT provider, base_url, until, status, reason FROM provider_holds WHERE until > ? "
                               "ORDER BY provider", (now,)).fetchall()
        return [Hold(p, b, _utc(u), s, r) for p, b, u, s, r in rows]

    def release(self, provider: str) -> int:
        """End holds of `provider` now (an operator who knows the ban is lifted); returns how many ended."""
        with self._lock, self._connect() as con:
            return con.execute("DELETE FROM provider_holds WHERE provider = ?", (provider,)).rowcount


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, UTC)


def holds_path(state_dir: Path | str) -> Path:
    return Path(state_dir) / HOLDS_FILE


@contextlib.contextmanager
def instance_state(directory: str | Path | None) -> Iterator[None]:
    """Within this block, HTTP clients persist and honour holds in `directory` (the Dagster instance's)."""
    token = _state_dir.set(Path(directory) if directory else None)
    try:
        yield
    finally:
        _state_dir.reset(token)


def state_dir() -> Path | None:
    """The Dagster instance directory in scope (see `instance_state`), if any."""
    return _state_dir.get()


def current_store() -> HoldStore:
    """The store of the instance in scope (see `instance_state`), else a fresh in-memory one."""
    directory = _state_dir.get()
    return HoldStore(holds_path(directory)) if directory is not None else HoldStore()
