"""A run's validated windows are written in one transaction, streamed into it as they are validated: a run
that dies part-way (an exception, or SIGKILL with batches already inserted) stores nothing of itself (no
half partition, no half run), and a run above `WRITE_ROWS` still writes whole windows."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import duckdb
import exchange_calendars as xc
import numpy as np
import polars as pl
import pytest

from jutsu_pipeline.config import REPO_ROOT, parse_config
from jutsu_pipeline.partitions import BarsPartitioning, partition_key
from jutsu_pipeline.providers.base import FetchRequest
from jutsu_pipeline.providers.files import FilesProvider
from jutsu_pipeline.sync import engine
from jutsu_pipeline.sync.engine import BarsSync
from jutsu_pipeline.timeframes import Timeframe
from jutsu_pipeline_tests.conftest import kill_at_pause

UTC = dt.timezone.utc
SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
NOW = dt.datetime(2024, 6, 1, tzinfo=UTC)
KEYS = [partition_key(month, symbol) for symbol in SYMBOLS for month in ("2024-01-01", "2024-02-01", "2024-03-01")]
ROWS = "SELECT symbol, ts, open, high, low, close, volume, adj_close, source FROM bars ORDER BY symbol, ts"


class Crash(Exception):
    """Stands for the process dying (not a provider error, which fails only its symbol)."""


class CrashingFiles(FilesProvider):
    def __init__(self, path: Path, crash_on: str | None) -> None:
        super().__init__(path, "America/New_York", clock=lambda: NOW)
        self.crash_on = crash_on

    def fetch(self, request: FetchRequest) -> pl.DataFrame:
        if request.symbol == self.crash_on:
            raise Crash(f"killed while fetching {request.symbol}")
        return super().fetch(request)


def _write_files(folder: Path) -> None:
    sessions = xc.get_calendar("XNYS").sessions_in_range("2024-01-02", "2024-03-28")
    dates = [d.date().isoformat() for d in sessions]
    rng = np.random.default_rng(3)
    folder.mkdir()
    for symbol in SYMBOLS:
        close = 20 * np.exp(np.cumsum(rng.normal(0, 0.01, len(dates))))
        pl.DataFrame({"date": dates, "open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
                      "volume": rng.integers(100, 1000, len(dates)).astype(float)}).write_csv(folder / f"{symbol}.csv")


def _sync(tmp_path: Path, db: Path, crash_on: str | None = None, files: type[CrashingFiles] = CrashingFiles):  # noqa: ANN202
    market = {"provider": "files", "options": {"path": str(tmp_path / "bars")}, "calendar": "XNYS",
              "timeframes": ["1d"], "start": "2024-01-02", "end": "2024-03-28", "symbols": SYMBOLS,
              "partition_grain": {"1d": "month"}}
    config = parse_config({"duckdb_path": str(db), "markets": {"m": market}})
    p = BarsPartitioning("m", Timeframe.D1, config.markets["m"])
    provider = files(tmp_path / "bars", crash_on)
    return BarsSync(p, provider, lambda: duckdb.connect(str(db)), logging.getLogger("test"), now=NOW).run(KEYS)


def _bars(db: Path) -> list[tuple]:
    with duckdb.connect(str(db)) as con:
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'bars'").fetchall()[0][0]:
            return []
        return con.execute(ROWS).fetchall()


def _ingestions(db: Path) -> list[tuple]:
    """Per ingestion (one transaction's `ingested_at`): its (symbol, month) windows."""
    with duckdb.connect(str(db)) as con:
        return con.execute("""SELECT ingested_at, list_sort(list(DISTINCT symbol || '/' || strftime(ts, '%Y-%m')))
                              FROM bars GROUP BY ingested_at ORDER BY ingested_at""").fetchall()


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "FLUSH_ROWS", 1)  # every symbol is its own validation batch


def test_a_run_that_dies_after_validating_some_symbols_stores_nothing(tmp_path: Path, small_batches: None) -> None:
    _write_files(tmp_path / "bars")
    clean_db = tmp_path / "clean.duckdb"
    clean = _sync(tmp_path, clean_db)
    assert not clean.failed and len(clean.written) == len(KEYS)
    assert len(_ingestions(clean_db)) == 1  # four validation batches, one transaction

    db = tmp_path / "jutsu.duckdb"
    with pytest.raises(Crash):  # AAA and BBB were fetched and validated (two batches) before CCC
        _sync(tmp_path, db, crash_on="CCC")
    assert _bars(db) == []  # nothing of the run: no symbol, no window, no half partition

    again = _sync(tmp_path, db)
    assert not again.failed and _bars(db) == _bars(clean_db)


def test_a_run_above_write_rows_writes_whole_windows_per_transaction(tmp_path: Path, small_batches: None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _write_files(tmp_path / "bars")
    clean_db = tmp_path / "clean.duckdb"
    _sync(tmp_path, clean_db)
    monkeypatch.setattr(engine, "WRITE_ROWS", 100)  # two symbols (~120 bars) make a write
    db = tmp_path / "jutsu.duckdb"
    outcome = _sync(tmp_path, db)
    assert not outcome.failed and _bars(db) == _bars(clean_db)
    ingestions = [windows for _, windows in _ingestions(db)]
    assert ingestions == [["AAA/2024-01", "AAA/2024-02", "AAA/2024-03", "BBB/2024-01", "BBB/2024-02", "BBB/2024-03"],
                          ["CCC/2024-01", "CCC/2024-02", "CCC/2024-03", "DDD/2024-01", "DDD/2024-02", "DDD/2024-03"]]


CHILD = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from jutsu_pipeline.storage import bars
from jutsu_pipeline.sync import engine
from jutsu_pipeline_tests import test_sync_write as t

engine.FLUSH_ROWS = 1  # every symbol its own batch, inserted into the open transaction once validated
inserted = []
insert = bars.WindowsWriter._insert
bars.WindowsWriter._insert = lambda self, part: (insert(self, part), inserted.append(part))[0]

class Pausing(t.CrashingFiles):
    def fetch(self, request):
        if request.symbol == self.crash_on:  # the parent kills this process here
            while len(inserted) < 2:  # AAA's and BBB's rows are in the open transaction
                time.sleep(0.05)
            Path({marker!r}).write_text(str(os.getpid()))
            while True:
                time.sleep(0.5)
        return super().fetch(request)

t._sync(Path({tmp!r}), Path({database!r}), crash_on="CCC", files=Pausing)
"""


def test_a_run_killed_with_batches_in_its_open_transaction_stores_nothing(tmp_path: Path) -> None:
    _write_files(tmp_path / "bars")
    db, marker = tmp_path / "jutsu.duckdb", tmp_path / "marker"
    script = CHILD.format(repo=str(REPO_ROOT), marker=str(marker), tmp=str(tmp_path), database=str(db))
    kill_at_pause(script, marker, 300.0)
    assert _bars(db) == []  # AAA and BBB were inserted, never committed
    clean_db = tmp_path / "clean.duckdb"
    _sync(tmp_path, clean_db)
    again = _sync(tmp_path, db)  # the file is usable: the next run stores everything
    assert not again.failed and _bars(db) == _bars(clean_db) != []
