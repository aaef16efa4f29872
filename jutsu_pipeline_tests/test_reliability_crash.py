"""Crash recovery through the real path: `jutsu sync` processes on a real DAGSTER_HOME (the shipped
dagster.yaml: pools, run monitoring), killed with SIGKILL at each stage, stopped with SIGTERM while it
waits for a pool slot, and the next `jutsu sync` finishing on its own with the table of a clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from jutsu_pipeline.config import REPO_ROOT, JutsuConfig, load_config
from jutsu_pipeline.faultpoints import ENV, POINTS
from jutsu_pipeline.instance import LIVE_STATUSES, PID_TAG
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, query, write_config

# End-to-end (real `jutsu sync` processes killed at each stage, ~2 min): `make test-slow` and .ci/run. Subprocess-heavy,
# so one worker runs them one after the other.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("crash")]
BARS = "SELECT symbol, timeframe, ts, open, high, low, close, volume, adj_close, source FROM bars ORDER BY ALL"
MARKET = {**SAMPLE_MARKET, "start": "2012-01-01", "end": "2012-12-31", "symbols": ["AAPL", "IBM"]}
WAIT = 600.0  # generous bound on a busy machine; the assertions never depend on it


def make_home(folder: Path, **more_markets: dict) -> tuple[Path, JutsuConfig]:
    """A fresh DAGSTER_HOME with the shipped dagster.yaml (+ the materializing faultpoint handler)."""
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    shipped = yaml.safe_load((REPO_ROOT / "data" / "dagster_home" / "dagster.yaml").read_text())
    shipped["python_logs"] = {"dagster_handler_config": {"handlers": {
        "faultpoint": {"class": "jutsu_pipeline.faultpoints.MaterializingFaultpoint"}}}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(shipped))
    return home, load_config(write_config(folder, {"us_stocks": MARKET, **more_markets}))


def sync_env(home: Path, config: JutsuConfig, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    return {**env, "DAGSTER_HOME": str(home), "JUTSU_CONFIG": str(config.source_path), **extra}


def start_sync(home: Path, config: JutsuConfig, *args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jutsu_pipeline.cli", "sync", *args],
                            env=sync_env(home, config, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def sync(home: Path, config: JutsuConfig) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jutsu_pipeline.cli", "sync"], env=sync_env(home, config),
                          capture_output=True, text=True, timeout=WAIT)


def wait_for(marker: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"sync ended before its faultpoint:\n{process.stdout.read()}")
        assert time.monotonic() < deadline, "faultpoint never reached"
        time.sleep(0.1)


def live_runs(home: Path) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_runs(dg.RunsFilter(statuses=LIVE_STATUSES)))


def claimed_slots(home: Path, pool: str = "duckdb_writer") -> set[str]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return instance.event_log_storage.get_concurrency_info(pool).active_run_ids


@pytest.fixture(scope="module")
def clean_bars(tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    home, config = make_home(tmp_path_factory.mktemp("clean"))
    done = sync(home, config)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = query(config, BARS)
    assert len(rows) == 2 * 250
    return rows


@pytest.mark.parametrize("point", POINTS)
def test_sync_killed_at_each_stage_is_recovered_by_the_next_sync(tmp_path: Path, point: str,
                                                                 clean_bars: list[tuple]) -> None:
    home, config = make_home(tmp_path)
    marker = tmp_path / "reached"
    victim = start_sync(home, config, **{ENV: f"{point}:{marker}"})
    wait_for(marker, victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    stuck = live_runs(home)
    if point != "planning":  # a run was executing: the kill left it STARTED, holding its pool slot
        assert [r.tags[PID_TAG] for r in stuck] == [str(victim.pid)]
        assert claimed_slots(home) == {stuck[0].run_id}
    done = sync(home, config)
    assert done.returncode == 0, done.stdout + done.stderr
    if point != "planning":
        assert f"Recovered run {stuck[0].run_id[:8]}" in done.stdout
    assert live_runs(home) == [] and claimed_slots(home) == set()
    assert query(config, BARS) == clean_bars
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert len(instance.get_materialized_partitions(dg.AssetKey(["us_stocks", "bars_1d"]))) == 24
        if stuck:
            assert instance.get_run_by_id(stuck[0].run_id).status == dg.DagsterRunStatus.FAILURE


def test_sigterm_stops_a_sync_waiting_for_the_pool_and_frees_everything(tmp_path: Path,
                                                                        clean_bars: list[tuple]) -> None:
    # A second market, so the waiter has bars of its own to sync: downstream of bars in flight is held back.
    home, config = make_home(tmp_path, world={**MARKET, "symbols": ["MSFT"]})  # sorts after us_stocks
    marker = tmp_path / "reached"
    holder = start_sync(home, config, "--market", "us_stocks", **{ENV: f"fetching:{marker}"})  # holds duckdb_writer
    wait_for(marker, holder)
    [held] = live_runs(home)
    waiter = start_sync(home, config)  # skips the partitions in flight, then waits for the pool (market `world`)
    guard = threading.Timer(WAIT, waiter.kill)  # never hang the suite if the line below never comes
    guard.start()
    lines = []
    while not lines or "waiting for a slot of pool duckdb_writer" not in lines[-1]:
        line = waiter.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
    guard.cancel()
    assert f"held by run(s) {held.run_id[:8]}" in lines[-1]
    waiter.send_signal(signal.SIGTERM)
    assert waiter.wait(timeout=WAIT) == 128 + signal.SIGTERM
    output = "".join(lines) + waiter.stdout.read()
    assert "skipping 24 partition(s) another live run is syncing now" in output
    assert "SIGTERM: stopped; run" in output
    assert [r.run_id for r in live_runs(home)] == [held.run_id] and claimed_slots(home) == {held.run_id}
    holder.send_signal(signal.SIGINT)
    assert holder.wait(timeout=WAIT) == 128 + signal.SIGINT
    assert live_runs(home) == [] and claimed_slots(home) == set()
    done = sync(home, config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Recovered" not in done.stdout  # nothing was left behind to recover
    assert [r for r in query(config, BARS) if r[0] != "MSFT"] == clean_bars


def test_a_killed_dagster_asset_materialize_run_is_recovered_too(tmp_path: Path, clean_bars: list[tuple]) -> None:
    """Runs not launched by jutsu (no pid tag) are judged by the pid of Dagster's engine event."""
    home, config = make_home(tmp_path)
    marker = tmp_path / "reached"
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "jutsu_pipeline.definitions",
               "--select", "us_stocks/bars_1d", "--partition-range", "2012-01-01|AAPL...2012-12-01|IBM"]
    victim = subprocess.Popen(command, env=sync_env(home, config, **{ENV: f"after_commit:{marker}"}),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(marker, victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    [stuck] = live_runs(home)
    assert PID_TAG not in stuck.tags
    done = sync(home, config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Recovered run {stuck.run_id[:8]}" in done.stdout
    assert live_runs(home) == [] and claimed_slots(home) == set()
    assert query(config, BARS) == clean_bars
