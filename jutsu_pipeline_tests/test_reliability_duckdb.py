"""DuckDB hardening: no extension is installed or loaded behind the user's back, and a duckdb_path that is
not a DuckDB database is refused with a clear message (checked with the network namespace closed)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from jutsu_pipeline.config import load_config
from jutsu_pipeline.resources import JutsuDuckDBResource
from jutsu_pipeline.storage.files import SAFE_CONFIG, NotADuckDBFileError, connect
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, write_config


def _offline(command: list[str]) -> list[str]:
    """`command` inside a new user + network namespace (no interface but loopback, which is down)."""
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    assert probe.returncode == 0, "this test needs `unshare -rn` (util-linux) to close the network"
    return ["unshare", "-rn", *command]


def _sqlite_file(path: Path) -> Path:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE bars (symbol TEXT)")
    return path


def test_sync_refuses_a_sqlite_file_as_duckdb_path_offline(tmp_path: Path) -> None:
    database = _sqlite_file(tmp_path / "market.db")
    before = database.read_bytes()
    config = load_config(write_config(tmp_path, {"us_stocks": SAMPLE_MARKET}, duckdb_path="market.db"))
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "JUTSU_CONFIG": str(config.source_path)}
    done = subprocess.run(_offline([sys.executable, "-m", "jutsu_pipeline.cli", "sync"]), env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"storage.path {database} is not a DuckDB database (it is a SQLite database)" in done.stderr
    assert "Traceback" not in done.stderr and "extension" not in (done.stdout + done.stderr).lower()
    assert database.read_bytes() == before


def test_duckdb_with_autoload_off_never_tries_to_download_offline(tmp_path: Path) -> None:
    """Even past our header check, the connection settings stop DuckDB from fetching sqlite_scanner."""
    database = _sqlite_file(tmp_path / "market.db")
    script = ("import duckdb, sys\n"
              f"try:\n    duckdb.connect({str(database)!r}, config={SAFE_CONFIG!r})\n"
              "except duckdb.Error as error:\n    print(error)\n    sys.exit(3)\n")
    done = subprocess.run(_offline([sys.executable, "-c", script]), capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "download" not in done.stdout.lower() and "http" not in done.stdout.lower()


@pytest.mark.parametrize("content", [b"", b"PAR1" + b"\0" * 60, b"not a database at all, just text\n"])
def test_resource_refuses_files_that_are_not_duckdb(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bars.duckdb"
    path.write_bytes(content)
    with pytest.raises(NotADuckDBFileError, match=f"storage.path {path} is not a DuckDB database"):
        with JutsuDuckDBResource(database=str(path)).get_connection():
            pass
    assert path.read_bytes() == content


def test_every_connection_has_extension_autoload_and_autoinstall_off(tmp_path: Path) -> None:
    path = str(tmp_path / "bars.duckdb")
    settings = "SELECT current_setting('autoload_known_extensions'), current_setting('autoinstall_known_extensions')"
    with JutsuDuckDBResource(database=path).get_connection() as con:
        assert con.execute(settings).fetchone() == (False, False)
    with JutsuDuckDBResource(database=path).get_connection(read_only=True) as con:
        assert con.execute(settings).fetchone() == (False, False)
    with connect(path, read_only=True) as con:
        assert con.execute(settings).fetchone() == (False, False)
    assert duckdb.connect(path, read_only=True).execute(settings).fetchone() == (True, True)  # DuckDB's default
