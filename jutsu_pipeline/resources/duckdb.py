"""Storage connections: dagster_duckdb's resource over a DuckDB file (bounded lock wait, actionable lock
error) or a DuckLake catalog; assets and checks get the same kind of connection from either."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from jutsu_pipeline.storage.backend import LakeTarget, connect_lake, duckdb_config
from jutsu_pipeline.storage.ddl import session_macros
from jutsu_pipeline.storage.files import check_database_file

if TYPE_CHECKING:
    from jutsu_pipeline.config import JutsuConfig

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
    """Short-lived connections (UTC session time zone, no extension autoload) to the DuckDB file `database`,
    waiting a bounded time for its lock (a path that is not a DuckDB file is refused before connecting);
    or, when `ducklake_catalog` is set, to that DuckLake (then `database` is unused)."""

    lock_timeout_seconds: float = Field(
        default=60.0, description="How long a connection waits for another process's lock before failing."
    )
    ducklake_catalog: str | None = Field(
        default=None, description="DuckLake catalog (postgresql://… or a .ducklake file); ${VAR}s expand on connect.")
    ducklake_data_path: str | None = Field(default=None, description="DuckLake's Parquet folder.")
    ducklake_metadata_schema: str | None = Field(default=None, description="Postgres schema of the catalog.")

    @classmethod
    def for_config(cls, config: JutsuConfig, **fields: Any) -> JutsuDuckDBResource:
        """The resource for `config.storage` (DuckDB file or DuckLake)."""
        if config.is_lake:
            target = config.lake_target()
            return cls(database=":memory:", ducklake_catalog=target.catalog, ducklake_data_path=target.data_path,
                       ducklake_metadata_schema=target.metadata_schema, **fields)
        return cls(database=str(config.database), **fields)

    @property
    def lake(self) -> LakeTarget | None:
        if not self.ducklake_catalog:
            return None
        return LakeTarget(self.ducklake_catalog, self.ducklake_data_path or "", self.ducklake_metadata_schema)

    def exists(self) -> bool:
        """Whether anything was ever stored (a DuckDB file exists; a DuckLake catalog always answers)."""
        return self.lake is not None or Path(self.database).exists()

    def describe(self) -> str:
        return self.lake.describe() if self.lake else f"DuckDB file {self.database}"

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.lake is not None:
            con = connect_lake(self.lake, read_only, self.connection_config)
            try:
                session_macros(con)  # the lake keeps tables and views, not macros
                yield con
            finally:
                con.close()
            return
        config = duckdb_config(self.connection_config)
        check_database_file(self.database)
        if not read_only and not self.database.startswith(":memory:"):
            # DuckDB creates the file but not its folder: a config outside the repo (JUTSU_CONFIG with
            # DAGSTER_HOME elsewhere) or `storage.path: /srv/x/jutsu.duckdb` would fail with "No such file".
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
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
