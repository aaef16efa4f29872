"""DuckDB connections: dagster_duckdb's resource plus a bounded lock wait and an actionable lock error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from jutsu_pipeline.storage.files import SAFE_CONFIG, check_database_file

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


class DuckDBLockedError(RuntimeError):
    """Another process holds the DuckDB file's write lock for longer than we wait."""


def _is_lock_error(error: BaseException) -> bool:
    return isinstance(error, duckdb.IOException | RuntimeError) and "lock" in str(error).lower()


def lock_holder(error: BaseException) -> str:
    """`process 123 (/usr/bin/python3)` from DuckDB's lock error, else `another process`."""
    match = _LOCK_HOLDER.search(str(error))
    return f"process {match['pid']} ({match['program']})" if match else "another process"


def lock_message(database: str, error: BaseException, waited: float) -> str:
    """Say who holds the lock and how to read the file without taking it."""
    holder = lock_holder(error)
    return (
        f"DuckDB file {database} is locked by {holder}; gave up after waiting {waited:.0f} s. "
        "DuckDB allows one writing process at a time: close that process (a notebook, a duckdb shell, "
        f"another run) and re-run. To read between pipeline writes, open it read-only: "
        f"`jutsu sql \"...\"`, `duckdb -readonly {database}` or duckdb.connect({database!r}, read_only=True) — and "
        "close it promptly, since even a read-only connection blocks writers."
    )


class JutsuDuckDBResource(DuckDBResource):
    """Short-lived DuckDB connections (UTC session time zone, no extension autoload) that wait a bounded
    time for the file lock; a path that is not a DuckDB file is refused before connecting."""

    lock_timeout_seconds: float = Field(
        default=60.0, description="How long a connection waits for another process's lock before failing."
    )

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        config = {"custom_user_agent": "jutsu-pipeline", **self.connection_config, **SAFE_CONFIG}
        check_database_file(self.database)
        retrying = Retrying(
            retry=retry_if_exception(_is_lock_error),
            stop=stop_after_delay(self.lock_timeout_seconds),
            wait=wait_exponential_jitter(multiplier=0.05, max=2.0),
            reraise=True,
        )
        try:
            con = retrying(duckdb.connect, database=self.database, read_only=read_only, config=config)
        except (duckdb.IOException, RuntimeError) as error:
            if not _is_lock_error(error):
                raise
            waited = retrying.statistics.get("delay_since_first_attempt", self.lock_timeout_seconds)
            raise DuckDBLockedError(lock_message(self.database, error, waited)) from error
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()
