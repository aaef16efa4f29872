"""A second process holding the DuckDB file: writers wait a bounded time, then fail with advice."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jutsu_pipeline.resources import DuckDBLockedError, JutsuDuckDBResource

# Holds the write lock until a line arrives on stdin (or stdin closes): no timing involved.
HOLD = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS held (x INT)")
print("locked", flush=True)
sys.stdin.readline()
con.close()
"""


def _hold(path: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_writer_waits_for_a_held_lock_then_succeeds(tmp_path: Path) -> None:
    path = tmp_path / "bars.duckdb"
    holder = _hold(path)
    outcome: list[object] = []

    def write() -> None:
        try:
            with JutsuDuckDBResource(database=str(path), lock_timeout_seconds=600).get_connection() as con:
                outcome.append(con.execute("SELECT count(*) FROM held").fetchone())
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            outcome.append(error)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(timeout=1.0)
    assert writer.is_alive() and outcome == []  # cannot have connected: the lock is still held
    holder.communicate("release\n", timeout=600)
    writer.join(timeout=600)
    assert outcome == [(0,)]


def test_writer_gives_up_after_the_timeout_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "bars.duckdb"
    holder = _hold(path)  # held until killed
    try:
        started = time.monotonic()
        with pytest.raises(DuckDBLockedError) as raised:
            with JutsuDuckDBResource(database=str(path), lock_timeout_seconds=1.5).get_connection():
                pass
        assert time.monotonic() - started >= 1.5  # it did wait the configured time before giving up
        message = str(raised.value)
        assert f"PID {holder.pid}" in message or f"process {holder.pid}" in message
        assert "duckdb -readonly" in message and str(path) in message
    finally:
        holder.kill()
        holder.wait()


def test_a_writer_creates_the_files_folder(tmp_path: Path) -> None:
    """`storage.path` in a folder that does not exist yet (a config outside the repo): created on first write."""
    path = tmp_path / "new" / "folder" / "jutsu.duckdb"
    with JutsuDuckDBResource(database=str(path)).get_connection() as con:
        con.execute("CREATE TABLE t (x INT)")
    assert path.is_file()
