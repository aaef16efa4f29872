"""One instance, many processes: concurrent first use of a fresh DAGSTER_HOME, dead-run detection,
and the planner skipping partitions that a live run is syncing."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import dagster as dg
import pytest

from jutsu_pipeline.instance import (
    HOST_TAG,
    PID_TAG,
    live_in_flight_keys,
    open_instance,
    recover_dead_runs,
)
from jutsu_pipeline.sensors.gaps import run_keys
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG
from jutsu_pipeline_tests.helpers import partitioning

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "dagster_home" / "dagster.yaml"


def _first_use(home: str, barrier, results) -> None:  # noqa: ANN001 - multiprocessing primitives
    barrier.wait()  # both processes open the fresh home at the same moment
    try:
        instance = open_instance(home)
        run = instance.create_run_for_job(dg.GraphDefinition("noop").to_job(), run_id=None)
        results.put(("ok", run.run_id))
    except Exception as error:  # noqa: BLE001 - reported to the parent
        results.put(("error", repr(error)))


# 20 races in all: one in the quick suite, the other 19 with the slow end-to-end tests (each spawns two processes).
@pytest.mark.parametrize("attempt", [pytest.param(n, marks=pytest.mark.slow) if n >= 1 else n for n in range(20)])
def test_concurrent_first_use_of_a_fresh_instance(tmp_path: Path, attempt: int) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(SHIPPED.read_text())
    context = multiprocessing.get_context("forkserver")  # a clean single-threaded parent, dagster imported once
    context.set_forkserver_preload([__name__])
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_first_use, args=(str(home), barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join(timeout=600)
    assert [o[0] for o in outcomes] == ["ok", "ok"], outcomes
    with dg.DagsterInstance.from_config(str(home)) as instance:  # a third process-like user sees both runs
        assert {r.run_id for r in instance.get_runs()} == {o[1] for o in outcomes}


def _run(instance: dg.DagsterInstance, tags: dict[str, str], status: dg.DagsterRunStatus) -> dg.DagsterRun:
    run = instance.create_run_for_job(dg.GraphDefinition("sync_bars").to_job(), tags=tags)
    instance.handle_run_event(run.run_id, dg.DagsterEvent(  # type: ignore[arg-type]
        event_type_value={dg.DagsterRunStatus.STARTED: "PIPELINE_START", dg.DagsterRunStatus.STARTING: "PIPELINE_STARTING"}[status],
        job_name=run.job_name))
    return instance.get_run_by_id(run.run_id)


def test_dead_runs_are_failed_and_live_ones_kept(tmp_path: Path, sample_config) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(SHIPPED.read_text())
    instance = open_instance(home)
    p = partitioning(sample_config)
    dead = multiprocessing.get_context("spawn").Process(target=os.getpid)
    dead.start()
    dead.join()
    host = os.uname().nodename
    rng = {RANGE_START_TAG: "2012-01-01|AAPL", RANGE_END_TAG: "2012-03-01|FB"}
    gone = _run(instance, {**rng, PID_TAG: str(dead.pid), HOST_TAG: host}, dg.DagsterRunStatus.STARTED)
    alive = _run(instance, {RANGE_START_TAG: "2012-04-01|AAPL", RANGE_END_TAG: "2012-04-01|AAPL",
                            PID_TAG: str(os.getppid()), HOST_TAG: host}, dg.DagsterRunStatus.STARTED)
    elsewhere = _run(instance, {**rng, PID_TAG: str(dead.pid), HOST_TAG: host + "-other"}, dg.DagsterRunStatus.STARTED)
    key = dg.AssetKey(["us_stocks", "bars_1d"])
    flying = live_in_flight_keys(instance, key, "sync_bars", lambda tags: run_keys(p, tags))
    assert len(flying) == 3 * 2 + 1
    recovered = recover_dead_runs(instance)
    assert [r.run_id for r in recovered] == [gone.run_id]
    assert instance.get_run_by_id(gone.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
    assert instance.get_run_by_id(elsewhere.run_id).status == dg.DagsterRunStatus.STARTED  # not ours to judge
    flying = live_in_flight_keys(instance, key, "sync_bars", lambda tags: run_keys(p, tags))
    assert flying == {"2012-04-01|AAPL"} | run_keys(p, rng)  # the other host's run still counts as in flight
    assert recover_dead_runs(instance) == []


def test_gap_sensor_repairs_a_killed_runs_partitions_and_skips_live_materialize_runs(tmp_path: Path) -> None:
    from jutsu_pipeline_tests.test_sensors import JOB, _config, _spans, _tick

    config = _config(tmp_path, symbols=["AAPL", "FB"])
    with dg.DagsterInstance.ephemeral() as instance:
        [everything] = _spans(_tick(config, instance))
        dead = multiprocessing.get_context("spawn").Process(target=os.getpid)
        dead.start()
        dead.join()
        rng = {RANGE_START_TAG: everything[0], RANGE_END_TAG: everything[1]}
        killed = instance.add_run(dg.DagsterRun(job_name=JOB, run_id="0" * 8 + "-killed", status=dg.DagsterRunStatus.STARTED,
                                                tags={**rng, PID_TAG: str(dead.pid), HOST_TAG: os.uname().nodename}))
        assert _spans(_tick(config, instance)) == [everything]  # recovered first, so not "in flight"
        assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
        live = dg.DagsterRun(job_name="__ASSET_JOB", run_id="1" * 8 + "-live", status=dg.DagsterRunStatus.STARTED,
                             tags=rng, asset_selection=frozenset({dg.AssetKey(["us_stocks", "bars_1d"])}))
        instance.add_run(live)  # e.g. `dagster asset materialize --partition-range ...` in progress
        assert _spans(_tick(config, instance)) == []


def test_the_configs_new_dagster_home_gets_the_project_settings(tmp_path: Path, monkeypatch) -> None:
    """A jutsu.yaml outside the repo (README: "point JUTSU_CONFIG at your own file") gets an instance with the
    shipped settings (one DuckDB writer, queued runs, batched events), not Dagster's defaults and banners;
    a DAGSTER_HOME the user set is left as it is."""
    from jutsu_pipeline.cli import _instance
    from jutsu_pipeline.instance import INSTANCE_TEMPLATE

    assert SHIPPED.resolve() == INSTANCE_TEMPLATE.resolve()  # the repo's file is a link to the wheel's
    (tmp_path / "jutsu.yaml").write_text("markets: {m: {provider: sample, calendar: XNYS, timeframes: [1d], "
                                         "start: 2012-01-01, end: 2012-03-01, symbols: [IBM]}}\n")
    monkeypatch.setenv("JUTSU_CONFIG", str(tmp_path / "jutsu.yaml"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    instance = _instance()
    home = tmp_path / "data" / "dagster_home"
    assert Path(instance.root_directory) == home
    assert (home / "dagster.yaml").read_text() == SHIPPED.read_text()
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"

    mine = tmp_path / "mine"
    monkeypatch.setenv("DAGSTER_HOME", str(mine))
    _instance()
    assert not (mine / "dagster.yaml").exists()
