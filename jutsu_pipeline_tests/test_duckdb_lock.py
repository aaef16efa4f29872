"""A second process holding the DuckDB file: writers wait a bounded time, then fail with advice."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from jutsu_pipeline.resources import DuckDBLockedError, JutsuDuckDBResource

HOLD = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS held (x INT)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_writer_waits_for_a_short_lock_then_succeeds(tmp_path: Path) -> None:
    path = tmp_path / "bars.duckdb"
    holder = _hold(path, 1.5)
    started = time.monotonic()
    with JutsuDuckDBResource(database=str(path), lock_timeout_seconds=20).get_connection() as con:
        assert con.execute("SELECT count(*) FROM held").fetchone() == (0,)
    assert 0.5 < time.monotonic() - started < 15
    holder.wait(timeout=10)


def test_writer_gives_up_after_the_timeout_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "bars.duckdb"
    holder = _hold(path, 30)
    try:
        started = time.monotonic()
        with pytest.raises(DuckDBLockedError) as raised:
            with JutsuDuckDBResource(database=str(path), lock_timeout_seconds=1.5).get_connection():
                pass
        assert 1.0 < time.monotonic() - started < 10
        message = str(raised.value)
        assert f"PID {holder.pid}" in message or f"process {holder.pid}" in message
        assert "duckdb -readonly" in message and str(path) in message
    finally:
        holder.kill()
        holder.wait()
