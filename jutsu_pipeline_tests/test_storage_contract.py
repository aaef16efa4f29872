"""The storage contract on every backend: DuckDB file, DuckLake on a catalog file, DuckLake on Postgres.

The same pipeline runs on each; tables, views, their columns and their contents must be identical
(backend-specific columns aside), and replaces must be atomic and idempotent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jutsu_pipeline.assets.backtest.assets import build_leaderboard_asset
from jutsu_pipeline.config import JutsuConfig, load_config
from jutsu_pipeline.resources import JutsuDuckDBResource
from jutsu_pipeline.storage.backend import current_snapshot, is_lake
from jutsu_pipeline.storage.bars import WindowReplacement, replace_windows
from jutsu_pipeline.storage.ddl import column_names, ensure_schema
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, write_config
from jutsu_pipeline_tests.helpers import partitioning, run_backtest, run_bars, run_indicators, run_metadata
from jutsu_pipeline_tests.lake import file_lake, postgres_lake

SYMBOLS = ["AAPL", "FB", "GOOG"]
MARKET = {**SAMPLE_MARKET, "start": "2012-01-01", "symbols": SYMBOLS, "strategies": [
    {"name": "sma_10_30", "type": "sma_cross", "params": {"fast": 10, "slow": 30}}]}
CONTRACT = ("bars", "bars_adjusted", "coverage", "indicators", "bars_with_indicators", "backtest_trades",
            "backtest_equity", "backtest_performance", "backtest_leaderboard")
VOLATILE = {"ingested_at", "computed_at", "last_ingested_at", "data_snapshot"}  # differ run to run by design
UTC = dt.timezone.utc

pytestmark = pytest.mark.xdist_group("storage_contract")
# DuckLake on the Postgres server .ci/run starts: with the slow end-to-end tests (`make test-slow`).
ON_POSTGRES = pytest.param("ducklake_postgres", marks=pytest.mark.slow)


@pytest.fixture(params=["duckdb", "ducklake_file", ON_POSTGRES])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JutsuConfig]:
    with ExitStack() as stack:
        storage = {"duckdb": lambda: {"kind": "duckdb", "path": str(tmp_path / "jutsu.duckdb")},
                   "ducklake_file": lambda: file_lake(tmp_path),
                   "ducklake_postgres": lambda: stack.enter_context(postgres_lake(tmp_path))}[request.param]()
        yield load_config(write_config(tmp_path, {"us_stocks": MARKET}, storage=storage))


def _run_pipeline(config: JutsuConfig, instance: dg.DagsterInstance) -> None:
    assert run_bars(config, instance, start=f"2012-01-03|{SYMBOLS[0]}", end=f"2013-03-01|{SYMBOLS[-1]}").success
    assert run_indicators(config, instance, SYMBOLS).success
    assert run_backtest(config, instance, SYMBOLS).success
    board = build_leaderboard_asset(config, [partitioning(config)])
    assert dg.materialize([board], instance=instance, selection=[board.key],
                          resources={"duckdb": JutsuDuckDBResource.for_config(config)}).success


def _dump(config: JutsuConfig) -> dict[str, tuple[list[tuple[str, str]], pl.DataFrame]]:
    """Columns and sorted rows (volatile columns dropped) of every contract table and view."""
    out = {}
    with JutsuDuckDBResource.for_config(config).get_connection(read_only=True) as con:
        for name in CONTRACT:
            columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {name}").fetchall() if r[0] not in VOLATILE]
            select = ", ".join(f'"{c}"::VARCHAR AS "{c}"' if t == "INTERVAL" else f'"{c}"' for c, t in columns)
            frame = pl.from_arrow(con.sql(f"SELECT {select} FROM {name}").to_arrow_table())
            out[name] = (columns, frame.sort(frame.columns))
    return out


@pytest.fixture(scope="module")
def reference_file(tmp_path_factory: pytest.TempPathFactory) -> JutsuConfig:
    """The whole pipeline run once on the DuckDB file backend."""
    folder = tmp_path_factory.mktemp("reference")
    config = load_config(write_config(folder, {"us_stocks": MARKET}))
    instance = dg.DagsterInstance.ephemeral()
    try:
        _run_pipeline(config, instance)
    finally:
        instance.dispose()
    return config


@pytest.fixture(scope="module")
def reference(reference_file: JutsuConfig) -> dict:
    """The contract's contents on the DuckDB file backend."""
    return _dump(reference_file)


# The reference is the DuckDB file backend itself: each other backend runs the pipeline and must match it.
@pytest.mark.parametrize("config", ["ducklake_file", ON_POSTGRES], indirect=True)
def test_same_tables_views_and_rows_on_every_backend(config: JutsuConfig, instance, reference: dict) -> None:
    _run_pipeline(config, instance)
    dumped = _dump(config)
    for name in CONTRACT:
        columns, frame = dumped[name]
        ref_columns, ref_frame = reference[name]
        assert columns == ref_columns, name
        assert frame.height > 0, name
        # Statistics may differ in the last bit (DuckDB's parallel aggregation order), nothing more.
        assert_frame_equal(frame, ref_frame, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)
    with JutsuDuckDBResource.for_config(config).get_connection(read_only=True) as con:
        assert is_lake(con) == config.is_lake
        duplicates = con.execute("SELECT count(*) - count(DISTINCT (symbol, timeframe, ts)) FROM bars").fetchone()[0]
        assert duplicates == 0


def _replacement(symbol: str, day: dt.date, close: float, bars: int = 3) -> WindowReplacement:
    start = dt.datetime.combine(day, dt.time(), UTC)
    frame = pl.DataFrame({
        "ts": [start + dt.timedelta(hours=h) for h in range(bars)],
        "open": [close] * bars, "high": [close + 1] * bars, "low": [close - 1] * bars, "close": [close] * bars,
        "volume": [100.0] * bars, "adj_close": [None] * bars,
    }, schema_overrides={"ts": pl.Datetime("us", "UTC"), "adj_close": pl.Float64})
    return WindowReplacement(symbol, [(start, start + dt.timedelta(days=1))], frame)


def test_replace_is_idempotent_and_scoped_to_its_windows(config: JutsuConfig) -> None:
    storage = JutsuDuckDBResource.for_config(config)
    day = dt.date(2020, 1, 2)
    with storage.get_connection() as con:
        replace_windows(con, timeframe="1h", source="t", replacements=[_replacement("AAA", day, 10.0),
                                                                       _replacement("BBB", day, 20.0)])
        replace_windows(con, timeframe="1h", source="t", replacements=[_replacement("AAA", day, 11.0, bars=2)])
        replace_windows(con, timeframe="1h", source="t", replacements=[_replacement("AAA", day, 11.0, bars=2)])
        rows = con.execute("SELECT symbol, count(*), min(close), max(close) FROM bars GROUP BY symbol "
                           "ORDER BY symbol").fetchall()
    assert rows == [("AAA", 2, 11.0, 11.0), ("BBB", 3, 20.0, 20.0)]


def test_backtests_record_the_snapshot_they_read(config: JutsuConfig, instance) -> None:
    synced = run_bars(config, instance, start="2012-01-03|AAPL", end="2013-03-01|AAPL")
    assert synced.success
    assert ("ducklake_snapshot" in run_metadata(synced)) == config.is_lake  # the UI shows the version written
    assert run_indicators(config, instance, ["AAPL"]).success
    assert run_backtest(config, instance, ["AAPL"]).success
    storage = JutsuDuckDBResource.for_config(config)
    with storage.get_connection() as con:
        snapshot, version = con.execute("SELECT data_snapshot, data_version FROM backtest_performance").fetchone()
        before = con.execute("SELECT count(*), sum(close) FROM bars WHERE symbol = 'AAPL'").fetchone()
        if not config.is_lake:
            assert snapshot is None and current_snapshot(con) is None
            return
        assert snapshot is not None and snapshot <= current_snapshot(con)
        # New data arrives later; the recorded snapshot still reads exactly what the backtest used.
        replace_windows(con, timeframe="1d", source="t", replacements=[_replacement("AAPL", dt.date(2012, 6, 1), 1.0, 1)])
        assert con.execute("SELECT count(*), sum(close) FROM bars WHERE symbol = 'AAPL'").fetchone() != before
        at = con.execute(f"SELECT count(*), sum(close) FROM bars AT (VERSION => {int(snapshot)}) "
                         "WHERE symbol = 'AAPL'").fetchone()
    assert at == before and version


def _race(work: Callable[..., None], calls: list[tuple]) -> None:
    """`work(*args)` of every call on its own thread, all at once; the first error raised is re-raised."""
    with ThreadPoolExecutor(len(calls)) as pool:
        for future in [pool.submit(work, *args) for args in calls]:
            future.result()


def test_concurrent_replaces_never_lose_or_duplicate_rows(tmp_path: Path) -> None:
    """DuckLake on Postgres: writers of different symbols and two of the same symbol, each on its own
    connection (its own DuckDB instance), racing; commit conflicts are retried."""
    with postgres_lake(tmp_path) as storage:
        config = load_config(write_config(tmp_path, {"us_stocks": MARKET}, storage=storage))
        resource = JutsuDuckDBResource.for_config(config)
        with resource.get_connection() as con:  # the tables exist before the writers race
            ensure_schema(con)
        days = [dt.date(2020, 1, 2) + dt.timedelta(days=d) for d in range(4)]

        def write(symbol: str, close: float) -> None:
            with resource.get_connection() as con:
                for day in days:
                    replace_windows(con, timeframe="1h", source=f"w{close:g}",
                                    replacements=[_replacement(symbol, day, close, bars=5)])

        _race(write, [("AAA", 1.0), ("BBB", 2.0), ("CCC", 3.0), ("SAME", 4.0), ("SAME", 5.0)])
        with resource.get_connection(read_only=True) as con:
            counts = dict(con.execute("SELECT symbol, count(*) FROM bars GROUP BY symbol").fetchall())
            distinct = con.execute("SELECT count(DISTINCT (symbol, timeframe, ts)) FROM bars").fetchone()[0]
            same = con.execute("SELECT ts::DATE, count(DISTINCT source), count(*) FROM bars WHERE symbol = 'SAME' "
                               "GROUP BY 1 ORDER BY 1").fetchall()
    assert counts == {"AAA": 20, "BBB": 20, "CCC": 20, "SAME": 20}
    assert distinct == 80
    assert [(n_sources, rows) for _, n_sources, rows in same] == [(1, 5)] * 4  # each day one writer's version


def test_processes_creating_a_new_catalog_at_once_all_get_it(tmp_path: Path) -> None:
    """The first runs of a new deployment race to create the catalog; the losers attach to the winner's."""
    with postgres_lake(tmp_path) as storage:
        resource = JutsuDuckDBResource.for_config(load_config(write_config(tmp_path, {"us_stocks": MARKET},
                                                                           storage=storage)))

        def first_use() -> None:
            with resource.get_connection() as con:
                ensure_schema(con)

        _race(first_use, [()] * 3)
        with resource.get_connection(read_only=True) as con:
            assert con.execute("SELECT count(*) FROM bars").fetchone()[0] == 0


@pytest.mark.parametrize("kind", ["ducklake_file", ON_POSTGRES])
def test_migrate_a_duckdb_file_into_ducklake(kind: str, tmp_path: Path, reference_file: JutsuConfig, reference: dict,
                                             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from jutsu_pipeline.cli import main

    with ExitStack() as stack:
        storage = file_lake(tmp_path) if kind == "ducklake_file" else stack.enter_context(postgres_lake(tmp_path))
        lake = load_config(write_config(tmp_path, {"us_stocks": MARKET}, storage=storage))
        monkeypatch.setenv("JUTSU_CONFIG", str(lake.source_path))
        assert main(["migrate-to-ducklake", str(reference_file.database)]) == 0
        assert "bars: " in capsys.readouterr().out
        assert main(["migrate-to-ducklake", str(reference_file.database)]) == 0  # again: replaced, not doubled
        dumped = _dump(lake)
    for name in CONTRACT:
        assert dumped[name][0] == reference[name][0], name
        assert_frame_equal(dumped[name][1], reference[name][1])


def test_migrate_refuses_a_duckdb_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture) -> None:
    from jutsu_pipeline.cli import main

    monkeypatch.setenv("JUTSU_CONFIG", str(write_config(tmp_path, {"us_stocks": MARKET})))
    assert main(["migrate-to-ducklake", str(tmp_path / "other.duckdb")]) == 2
    assert "storage kind is duckdb" in capsys.readouterr().err


def test_a_lake_made_by_another_version_gets_this_versions_views(tmp_path: Path) -> None:
    """A lake's views are created once, not on every connection; a new release's views replace the old."""
    resource = JutsuDuckDBResource.for_config(load_config(write_config(tmp_path, {"us_stocks": MARKET},
                                                                       storage=file_lake(tmp_path))))
    with resource.get_connection() as con:
        ensure_schema(con)
        current = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'coverage'").fetchone()[0]
        # What an older release left: another definition under another version's marker.
        con.execute("CREATE OR REPLACE VIEW coverage AS SELECT 1 AS stale")
        con.execute("COMMENT ON VIEW coverage IS 'jutsu-pipeline schema 0000000000000000'")
    with resource.get_connection() as con:
        ensure_schema(con)
        assert con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'coverage'").fetchone()[0] == current
        assert "stale" not in column_names(con, "coverage")
