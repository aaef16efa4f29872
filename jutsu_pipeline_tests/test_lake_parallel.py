"""DuckLake on Postgres with real processes: concurrent writers, a reader meanwhile, and kill -9."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jutsu_pipeline.config import JutsuConfig, load_config
from jutsu_pipeline.resources import JutsuDuckDBResource
from jutsu_pipeline.storage.ddl import ensure_schema
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, write_config
from jutsu_pipeline_tests.helpers import partitioning, run_bars
from jutsu_pipeline_tests.lake import postgres_lake

MARKET = {**SAMPLE_MARKET, "start": "2012-06-01", "end": "2013-03-01"}  # AAPL, FB, GOOG, IBM, MSFT
BARS = "SELECT * EXCLUDE (ingested_at) FROM bars ORDER BY symbol, timeframe, ts"

# Writer processes racing and killed mid-commit (end-to-end, ~30 s): `make test-slow` and .ci/run.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("lake_parallel")]


def _writer(config_path: Path, first: str, last: str, times: int = 1) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jutsu_pipeline_tests.lake_worker", str(config_path), first, last,
                             str(times)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)


def _bars(config: JutsuConfig) -> pl.DataFrame:
    with JutsuDuckDBResource.for_config(config).get_connection(read_only=True) as con:
        return pl.from_arrow(con.sql(BARS).to_arrow_table())


@pytest.fixture(scope="module")
def sequential(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """The same market synced by one process, all symbols in one run, into a DuckDB file."""
    folder = tmp_path_factory.mktemp("sequential")
    config = load_config(write_config(folder, {"us_stocks": MARKET}))
    dates = partitioning(config).date_keys()
    instance = dg.DagsterInstance.ephemeral()
    try:
        assert run_bars(config, instance, start=f"{dates[0]}|AAPL", end=f"{dates[-1]}|MSFT").success
    finally:
        instance.dispose()
    return _bars(config)


def test_two_writer_processes_and_a_reader(tmp_path: Path, sequential: pl.DataFrame) -> None:
    with postgres_lake(tmp_path) as storage:
        path = write_config(tmp_path, {"us_stocks": MARKET}, storage=storage)
        config = load_config(path)
        with JutsuDuckDBResource.for_config(config).get_connection() as con:
            ensure_schema(con)  # the empty tables exist, as after a deployment's first run
        writers = [_writer(path, "AAPL", "FB"), _writer(path, "GOOG", "MSFT")]
        reads: list[int] = []
        errors: list[BaseException] = []

        def read_while_writing() -> None:
            resource = JutsuDuckDBResource.for_config(config)
            while any(w.poll() is None for w in writers):
                try:
                    with resource.get_connection(read_only=True) as con:
                        reads.append(con.execute("SELECT count(*) FROM bars").fetchone()[0])
                except BaseException as error:  # noqa: BLE001 - asserted below
                    errors.append(error)
                time.sleep(0.05)

        reader = threading.Thread(target=read_while_writing)
        reader.start()
        outputs = [w.communicate(timeout=600) for w in writers]
        reader.join()
        assert [w.returncode for w in writers] == [0, 0], [o[1][-3000:] for o in outputs]
        assert not errors, errors
        assert reads, "the reader never got a turn while the writers ran"
        stored = _bars(config)
    # Every read saw a committed state: nothing, one writer's symbols, or both (never a partial run).
    per_writer = {sequential.filter(pl.col("symbol").is_in(["AAPL", "FB"])).height,
                  sequential.filter(pl.col("symbol").is_in(["GOOG", "IBM", "MSFT"])).height}
    assert set(reads) <= {0, *per_writer, sequential.height}
    assert_frame_equal(stored, sequential)


def test_kill_9_mid_commit_leaves_no_partial_partition_and_a_rerun_repairs(tmp_path: Path,
                                                                          sequential: pl.DataFrame) -> None:
    expected = sequential.filter(pl.col("symbol").is_in(["AAPL", "FB"]))
    with postgres_lake(tmp_path) as storage:
        path = write_config(tmp_path, {"us_stocks": MARKET}, storage=storage)
        config = load_config(path)
        writer = _writer(path, "AAPL", "FB", times=50)  # rewrites the same windows until killed
        assert writer.stdout is not None
        first = writer.stdout.readline()
        assert first.startswith("committed"), writer.communicate()[1][-3000:]
        time.sleep(random.uniform(0.0, 2.0))  # somewhere inside a later run: fetch, validate or commit
        writer.kill()  # SIGKILL
        writer.wait()
        after_kill = _bars(config)
        # Every committed state is the whole replacement; a partial commit would lose or double rows.
        assert_frame_equal(after_kill, expected)
        rerun = _writer(path, "AAPL", "FB")
        out, err = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, err[-3000:]
        assert_frame_equal(_bars(config), expected)
