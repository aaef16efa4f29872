"""Open a connection to either backend; afterwards SQL cannot tell them apart (DuckLake: an in-memory DuckDB
with the lake attached as `lake` and made the default catalog)."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any

import duckdb
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from jutsu_pipeline.storage.extensions import load_extensions
from jutsu_pipeline.storage.files import SAFE_CONFIG
from jutsu_pipeline.storage.settings import redact_url

LAKE = "lake"  # the attached DuckLake's name inside a connection (`lake.snapshots()`)
_DRIVER = re.compile(r"^postgres(ql)?\+\w+://")


@dataclass(frozen=True)
class LakeTarget:
    """A resolved DuckLake location: catalog URL or absolute `.ducklake` path, data path, Postgres schema."""

    catalog: str
    data_path: str
    metadata_schema: str | None = None

    @property
    def postgres(self) -> bool:
        return self.catalog.startswith("postgres")

    def describe(self) -> str:
        return f"DuckLake catalog {redact_url(self.catalog)} (data {self.data_path})"

    def attach_sql(self, read_only: bool) -> str:
        catalog = os.path.expandvars(self.catalog)  # secrets stay in the environment until here
        if self.postgres:
            catalog = "postgres:" + _DRIVER.sub("postgresql://", catalog)
        options = [f"DATA_PATH {_literal(self.data_path)}"]
        if self.metadata_schema:
            options.append(f"METADATA_SCHEMA {_literal(self.metadata_schema)}")
        if read_only:
            options.append("READ_ONLY")
        return f"ATTACH {_literal('ducklake:' + catalog)} AS {LAKE} ({', '.join(options)})"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_config(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Connection settings of every jutsu connection: a user agent, `extra`, and never extension auto-install."""
    return {"custom_user_agent": "jutsu-pipeline", **(extra or {}), **SAFE_CONFIG}


# One DuckDB instance per process, lake and mode: LOADing the two extensions and ATTACHing costs
# 0.5-2.5 s (measured), while a new connection (cursor) to a live instance is cheap. Keyed by pid so a
# forked child never reuses its parent's instance.
_instances: dict[tuple, duckdb.DuckDBPyConnection] = {}
_instances_lock = threading.Lock()


def _open_instance(target: LakeTarget, read_only: bool, config: dict[str, Any] | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config=duckdb_config(config))
    try:
        load_extensions(con, "ducklake", *(["postgres_scanner"] if target.postgres else []))
        if not target.postgres and not read_only:
            os.makedirs(target.data_path, exist_ok=True)
        # When several processes create a new catalog at once, the losers attach to the winner's.
        racing = retry_if_exception(lambda e: "failed to initialize ducklake" in str(e).lower())
        try:
            Retrying(retry=racing, stop=stop_after_attempt(8), wait=wait_random_exponential(multiplier=0.1, max=2.0),
                     reraise=True)(con.execute, target.attach_sql(read_only))
        except duckdb.Error as error:
            raise StorageUnavailableError(
                f"cannot open {target.describe()}: {redact_url(str(error)).splitlines()[0]}. Check the storage "
                "settings in jutsu.yaml (catalog URL, credentials, data_path) and that the catalog server is up."
            ) from None
        # DuckLake's own commit retry re-applies a conflicting transaction's changes on the newer snapshot
        # without re-running its DELETE: two replaces of the same window then keep both inserts
        # (measured: 15 rows instead of 5). Conflicts surface instead and the caller re-runs the whole
        # transaction (storage/transactions.py retry_conflicts).
        con.execute("SET ducklake_max_retry_count = 0")
    except BaseException:
        con.close()
        raise
    return con


def connect_lake(target: LakeTarget, read_only: bool = False,
                 config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A new connection with the lake attached and in use (UTC), sharing the process's DuckDB instance
    (its loaded extensions and catalog connection) but not its transactions; the caller closes it."""
    if not target.postgres:
        read_only = False  # a catalog file can be attached once per process: readers share the writer's
    key = (os.getpid(), target, read_only, tuple(sorted((config or {}).items())))
    with _instances_lock:
        instance = _instances.get(key)
        if instance is None:
            instance = _instances[key] = _open_instance(target, read_only, config)
    con = instance.cursor()
    try:
        con.execute("SET enable_progress_bar = false")  # no progress bars on a worker's stdout
        con.execute(f"USE {LAKE}")
        con.execute("SET TimeZone = 'UTC'")
    except BaseException:
        con.close()
        raise
    return con


class StorageUnavailableError(RuntimeError):
    """The configured storage cannot be opened (message names it, without secrets)."""


def is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the connection's default catalog is a DuckLake."""
    row = con.execute("SELECT type FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return row is not None and row[0] == "ducklake"


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int | None:
    """The DuckLake snapshot this connection (or its open transaction) reads; None on a DuckDB file."""
    if not is_lake(con):
        return None
    return int(con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchall()[0][0])
