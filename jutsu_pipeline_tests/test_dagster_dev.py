"""End-to-end smoke: `dagster dev` with the checked-in instance template serves the project and runs a partition."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, write_config

REPO = Path(__file__).parents[1]
LOCATION = {"repositoryLocationName": "jutsu_pipeline", "repositoryName": "__repository__"}
MARKET = {**SAMPLE_MARKET, "start": "2012-01-01", "end": "2012-03-31", "symbols": ["AAPL", "IBM"]}

ASSETS = "{ assetNodes { assetKey { path } } }"
SCHEDULES = """query($repo: RepositorySelector!) { schedulesOrError(repositorySelector: $repo) {
  __typename ... on Schedules { results { name cronSchedule executionTimezone scheduleState { status } } } } }"""
SENSORS = """query($repo: RepositorySelector!) { sensorsOrError(repositorySelector: $repo) {
  __typename ... on Sensors { results { name sensorState { status } } } } }"""
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
TICKS = """query($sensor: SensorSelector!) { sensorOrError(sensorSelector: $sensor) {
  ... on Sensor { sensorState { ticks(limit: 20) { status error { message } } } } } }"""
RUN = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"
RUNS = "{ runsOrError { ... on Runs { results { jobName status tags { key value } } } } }"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Dev:
    """A `dagster dev` process group and its GraphQL endpoint."""

    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process, self.url, self.log = process, f"http://127.0.0.1:{port}/graphql", log

    def query(self, text: str, **variables: object) -> dict:
        body = json.dumps({"query": text, "variables": variables}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            payload = json.load(response)
        assert "errors" not in payload, payload["errors"]
        return payload["data"]

    def wait(self, what: str, check, timeout: float = 300.0):  # noqa: ANN001, ANN201
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"dagster dev exited:\n{self.log.read_text()[-3000:]}"
            try:
                value = check()
            except (OSError, AssertionError):
                value = None
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    """SIGINT like Ctrl-C (dagster dev stops its children), then kill whatever is left in the group."""
    pgid = os.getpgid(process.pid)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(pgid, signal.SIGKILL)
    raise AssertionError("processes of dagster dev outlived it (killed)")


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "data" / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    config = write_config(tmp_path, {"us_stocks": MARKET})
    port, log = _free_port(), tmp_path / "dagster_dev.log"
    env = {**os.environ, "DAGSTER_HOME": str(home), "JUTSU_CONFIG": str(config), "PYTHONPATH": str(REPO)}
    command = [str(Path(sys.executable).with_name("dagster")), "dev", "-w", "workspace.yaml",
               "-h", "127.0.0.1", "-p", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield Dev(process, port, log)
    finally:
        _stop(process)


@pytest.mark.slow
def test_dagster_dev_serves_schedules_sensors_and_runs_a_partition(dev: Dev) -> None:
    nodes = dev.wait("the code location", lambda: dev.query(ASSETS)["assetNodes"])
    assert {"/".join(n["assetKey"]["path"]) for n in nodes} == {"us_stocks/bars_1d", "us_stocks/indicators_1d",
                                                                   "us_stocks/corporate_actions", "us_stocks/report"}

    schedules = dev.query(SCHEDULES, repo=LOCATION)["schedulesOrError"]["results"]
    assert [(s["name"], s["cronSchedule"], s["executionTimezone"], s["scheduleState"]["status"]) for s in schedules] == [
        ("us_stocks_bars_1d_at_close", "15 16 * * 1-5", "America/New_York", "RUNNING")]
    sensors = dev.query(SENSORS, repo=LOCATION)["sensorsOrError"]["results"]
    assert {s["name"]: s["sensorState"]["status"] for s in sensors} == {
        "jutsu_automation": "RUNNING", "us_stocks_bars_1d_gap_repair": "RUNNING"}

    params = {"selector": {**LOCATION, "jobName": "sync_us_stocks_bars_1d"}, "runConfigData": {},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "2012-02-01|IBM"}]}}
    launched = dev.query(LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = dev.wait("the run", lambda: dev.query(RUN, id=run_id)["runOrError"]["status"] in ("SUCCESS", "FAILURE")
                      and dev.query(RUN, id=run_id)["runOrError"]["status"])
    assert status == "SUCCESS", dev.log.read_text()[-3000:]

    # The automation sensor is evaluated in the code server (the report's condition is custom Python): its
    # ticks complete without an error.
    def automation_ticks() -> list[dict]:
        sensor = {**LOCATION, "sensorName": "jutsu_automation"}
        return dev.query(TICKS, sensor=sensor)["sensorOrError"]["sensorState"]["ticks"]
    dev.wait("an automation tick", lambda: any(t["status"] in ("SUCCESS", "SKIPPED") for t in automation_ticks()))
    assert not [t["error"] for t in automation_ticks() if t["status"] == "FAILURE"]

    # The gap-repair sensor, running by default, requested the rest of the history on its own.
    def repaired() -> bool:
        runs = dev.query(RUNS)["runsOrError"]["results"]
        return any(r["status"] == "SUCCESS" and {"key": "jutsu/gap_repair", "value": "us_stocks/bars_1d"} in r["tags"]
                   for r in runs)
    assert dev.wait("a gap-repair run", repaired)
