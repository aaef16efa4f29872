"""Fills of a DuckDB file's `bars` keep every stored row, unique (symbol, timeframe, ts) and atomicity (a SIGKILL
at any point of the replace's one transaction), whatever the file's version (with the primary key before
2026-12-02, without since) or a user's additions to the table."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest

from jutsu_pipeline.config import REPO_ROOT
from jutsu_pipeline.storage.bars import DuplicateBarsError, WindowReplacement, replace_windows
from jutsu_pipeline.storage.ddl import BARS_KEY, column_names, ensure_schema, has_primary_key
from jutsu_pipeline_tests.conftest import keyed_bars_ddl, kill_at_pause

UTC = dt.timezone.utc
START = dt.datetime(2020, 1, 1, tzinfo=UTC)
WAIT = 300.0  # bound on a busy machine for the child to reach its pause; no assertion depends on it


def replacement(symbol: str, days: int, close: float, first: int = 0) -> WindowReplacement:
    """`days` daily bars of `symbol` from START + `first` days, replacing that window."""
    ts = [START + dt.timedelta(days=first + d) for d in range(days)]
    frame = pl.DataFrame({"ts": ts, "open": close, "high": close, "low": close, "close": close, "volume": 1.0,
                          "adj_close": None}, schema_overrides={"ts": pl.Datetime("us", "UTC"), "adj_close": pl.Float64})
    return WindowReplacement(symbol, [(ts[0], ts[-1] + dt.timedelta(days=1))], frame)


def table_oid(con: duckdb.DuckDBPyConnection) -> int:
    """Changes if a write re-created `bars` (it must not: users' indexes and grants live on it)."""
    return con.execute("SELECT table_oid FROM duckdb_tables() WHERE table_name = 'bars'").fetchone()[0]


def contents(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("SELECT symbol, count(*), min(ts), max(ts), max(close), bool_and(NOT incomplete) "
                       "FROM bars GROUP BY symbol ORDER BY symbol").fetchall()


def assert_unique(con: duckdb.DuckDBPyConnection, *, keyed: bool) -> None:
    """No two rows share (symbol, timeframe, ts); a file made with the key keeps it (and refuses a duplicate),
    a new file has none."""
    assert con.execute("SELECT count(*) - count(DISTINCT (symbol, timeframe, ts)) FROM bars").fetchone()[0] == 0
    assert has_primary_key(con, "bars", BARS_KEY) == keyed
    if keyed:
        with pytest.raises(duckdb.ConstraintException):
            con.execute("INSERT INTO bars SELECT * FROM bars LIMIT 1")


def write(con: duckdb.DuckDBPyConnection, *replacements: WindowReplacement) -> int:
    return replace_windows(con, timeframe="1d", source="t", replacements=list(replacements))


def test_a_fill_keeps_the_key_and_every_stored_row(tmp_path: Path) -> None:
    # A file of an older version: `bars` with its key but without the later `incomplete` column.
    with duckdb.connect(str(tmp_path / "old.duckdb")) as con:
        con.execute(re.sub(r"\n +incomplete [^\n]*", "", keyed_bars_ddl()))
        assert "incomplete" not in column_names(con, "bars")
        con.execute("INSERT INTO bars SELECT 'OLD', '1d', TIMESTAMPTZ '2019-01-01' + INTERVAL (i) DAY, 5, 5, 5, 5, 1, "
                    "NULL, 'files', now() FROM range(40) AS t(i)")
        ensure_schema(con)
        before = table_oid(con)
        # 50 rows into a table of 40, then a replace inside one window: the 40 rows kept, the same table.
        assert write(con, replacement("AAA", 30, 1.0), replacement("BBB", 20, 2.0)) == 50
        assert_unique(con, keyed=True)
        assert write(con, replacement("AAA", 5, 3.0, first=10)) == 5
        assert table_oid(con) == before
        assert contents(con) == [
            ("AAA", 30, START, START + dt.timedelta(days=29), 3.0, True),
            ("BBB", 20, START, START + dt.timedelta(days=19), 2.0, True),
            ("OLD", 40, dt.datetime(2019, 1, 1, tzinfo=UTC), dt.datetime(2019, 2, 9, tzinfo=UTC), 5.0, True),
        ]
        # Each ingestion's rows stay in time order per symbol (the no_duplicates check's ts_increasing).
        order = con.execute("SELECT count(*) FROM (SELECT ts < lag(ts) OVER (PARTITION BY symbol, ingested_at "
                            "ORDER BY rowid) AS back FROM bars) WHERE back").fetchone()[0]
        assert order == 0
    with duckdb.connect(str(tmp_path / "old.duckdb")) as con:  # and after a checkpoint and reopening
        assert_unique(con, keyed=True)
        assert con.execute("SELECT count(*) FROM bars").fetchone()[0] == 90


@pytest.mark.parametrize("keyed", [False, True], ids=["new file", "file with the key"])
def test_duplicates_in_a_fill_roll_the_whole_replace_back(tmp_path: Path, keyed: bool) -> None:
    with duckdb.connect(str(tmp_path / "dup.duckdb")) as con:
        if keyed:
            con.execute(keyed_bars_ddl())
        write(con, replacement("AAA", 3, 1.0))
        before, oid = contents(con), table_oid(con)
        twice = replacement("BBB", 10, 2.0)
        twice = WindowReplacement("BBB", twice.windows, pl.concat([twice.frame, twice.frame]))
        # The writer refuses the duplicate (a caller that skipped validation), and nothing of the replace is kept.
        with pytest.raises(DuplicateBarsError, match="10 duplicate bar.*BBB at 2020-01-01 00:00"):
            write(con, replacement("CCC", 4, 3.0), twice)
        assert (contents(con), table_oid(con)) == (before, oid)
        assert_unique(con, keyed=keyed)


def test_a_table_with_a_users_index_is_filled_in_place(tmp_path: Path) -> None:
    """What a user added to `bars` (an index) stays."""
    with duckdb.connect(str(tmp_path / "user.duckdb")) as con:
        ensure_schema(con)
        con.execute("CREATE INDEX by_source ON bars (source)")
        oid = table_oid(con)
        assert write(con, replacement("AAA", 30, 1.0)) == 30
        assert table_oid(con) == oid
        assert con.execute("SELECT count(*) FROM duckdb_indexes() WHERE index_name = 'by_source'").fetchone()[0] == 1
        assert_unique(con, keyed=False)


CHILD = """
import datetime as dt, os, sys, time
from pathlib import Path
import duckdb
sys.path.insert(0, {repo!r})
from jutsu_pipeline_tests.test_bars_fill import replacement
from jutsu_pipeline.storage.bars import replace_windows

def pause(con=None):  # the parent kills this process here
    Path({marker!r}).write_text(str(os.getpid()))
    while True:
        time.sleep(0.5)

con = duckdb.connect({database!r})
rows = [replacement("S%03d" % i, 200, 9.0) for i in range(20)]
if {point!r} == "in_transaction":  # the delete and the insert done, nothing committed
    replace_windows(con, timeframe="1d", source="t", replacements=rows, in_transaction=pause)
else:  # committed, the connection still open
    replace_windows(con, timeframe="1d", source="t", replacements=rows)
    pause()
"""


@pytest.mark.parametrize("point", ["in_transaction", "after_commit"])
def test_a_kill_during_a_fill_leaves_all_of_it_or_none(tmp_path: Path, point: str) -> None:
    database, marker = tmp_path / "kill.duckdb", tmp_path / "marker"
    with duckdb.connect(str(database)) as con:
        write(con, replacement("AAA", 100, 1.0))
        before = contents(con)
    script = CHILD.format(repo=str(REPO_ROOT), marker=str(marker), database=str(database), point=point)
    kill_at_pause(script, marker, WAIT)
    with duckdb.connect(str(database)) as con:
        after = contents(con)
        assert_unique(con, keyed=False)
        if point == "in_transaction":
            assert after == before
        else:
            assert len(after) == 21 and after[0] == before[0]
            assert {row[1:] for row in after[1:]} == {(200, START, START + dt.timedelta(days=199), 9.0, True)}
        assert write(con, replacement("AAA", 100, 4.0)) == 100  # usable: the next replace works
        assert contents(con)[0][4] == 4.0


def test_a_ducklake_commit_conflict_re_runs_every_part_of_the_write(tmp_path: Path) -> None:
    """A streamed write keeps its parts on DuckLake: after another writer's commit on `bars`, all of them are
    inserted again in a new transaction (a DuckDB file never conflicts and keeps none)."""
    from jutsu_pipeline.storage.backend import LakeTarget, connect_lake
    from jutsu_pipeline.storage.bars import WindowsWriter
    from jutsu_pipeline.storage.ddl import session_macros

    lake = connect_lake(LakeTarget(str(tmp_path / "catalog.ducklake"), str(tmp_path / "data"), None))
    mine, other = lake.cursor(), lake.cursor()
    for con in (mine, other):
        con.execute("USE lake")
        session_macros(con)
    write(other, replacement("AAA", 10, 1.0))
    with WindowsWriter(mine, timeframe="1d", source="t") as writer:
        writer.add([replacement("AAA", 3, 5.0)])
        writer.add([replacement("BBB", 4, 6.0)])
        write(other, replacement("AAA", 2, 8.0), replacement("CCC", 1, 7.0))  # commits first
        assert writer.commit() == 7
    assert contents(mine) == [("AAA", 10, START, START + dt.timedelta(days=9), 5.0, True),
                              ("BBB", 4, START, START + dt.timedelta(days=3), 6.0, True),
                              ("CCC", 1, START, START, 7.0, True)]
