"""Declarative automation downstream of the bars: history updates propagate, failing blocking checks stop it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from jutsu_pipeline.config import load_config
from jutsu_pipeline.definitions import AUTOMATION_SENSOR, build_definitions
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, write_config

BARS = dg.AssetKey(["us_stocks", "bars_1d"])
INDICATORS = dg.AssetKey(["us_stocks", "indicators_1d"])
BACKTEST = dg.AssetKey(["us_stocks", "backtest_1d"])
LEADERBOARD = dg.AssetKey(["us_stocks", "backtest_leaderboard"])
REPORT = dg.AssetKey(["us_stocks", "report"])
STRATEGY = {"name": "sma_5_20", "type": "sma_cross", "params": {"fast": 5, "slow": 20}}


class Automation:
    """The automation sensor's evaluations, one tick at a time, with its cursor carried over."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance, market: str = "us_stocks") -> None:
        self.defs, self.instance, self.cursor, self.market = defs, instance, None, market

    def tick(self) -> dict[dg.AssetKey, set[str]]:
        """{downstream asset key (of market us_stocks): requested partitions ({"*"}: unpartitioned)}."""
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        self.cursor, self.result = result.cursor, result
        requested = {}
        for key in (INDICATORS, BACKTEST, LEADERBOARD):
            mine = dg.AssetKey([self.market, key.path[-1]])
            if result.get_num_requested(mine):
                requested[key] = set(result.get_requested_partitions(mine)) if key != LEADERBOARD else {"*"}
        return requested

    def run(self, job: str, start: str | None = None, end: str | None = None) -> dg.ExecuteInProcessResult:
        tags = {RANGE_START_TAG: start, RANGE_END_TAG: end or start} if start else {}
        job = job.replace("us_stocks", self.market)
        return self.defs.resolve_job_def(job).execute_in_process(instance=self.instance, tags=tags,
                                                                 raise_on_error=False)


@pytest.fixture
def automation(tmp_path: Path, instance: dg.DagsterInstance) -> Automation:
    market = {**SAMPLE_MARKET, "start": "2012-01-01", "end": "2012-12-31", "symbols": ["AAPL", "GOOG", "IBM"],
              "strategies": [STRATEGY]}
    defs = build_definitions(load_config(write_config(tmp_path, {"us_stocks": market})))
    return Automation(defs, instance)


def test_the_automation_sensor_runs_by_default(automation) -> None:
    sensor = automation.defs.get_repository_def().get_sensor_def(AUTOMATION_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_new_bars_flow_to_indicators_backtest_leaderboard(automation) -> None:
    auto = automation
    assert auto.tick() == {}  # no bars yet: nothing downstream
    assert auto.run("sync_us_stocks_bars_1d", "2012-01-01|AAPL", "2012-12-01|IBM").success  # with its checks
    # Backtests are requested with the indicators they wait on (the daemon runs them in order).
    assert auto.tick() == {INDICATORS: {"AAPL", "GOOG", "IBM"}, BACKTEST: {"AAPL", "GOOG", "IBM"}}
    assert auto.run("indicators_us_stocks_1d", "AAPL", "IBM").success
    assert auto.run("backtest_us_stocks_1d", "AAPL", "IBM").success
    assert auto.tick() == {LEADERBOARD: {"*"}}
    assert auto.run("leaderboard_us_stocks").success
    assert auto.tick() == {}

    # A repaired partition in the history (not the latest month) updates that symbol only, all the way down.
    assert auto.run("sync_us_stocks_bars_1d", "2012-03-01|GOOG").success
    assert auto.tick() == {INDICATORS: {"GOOG"}, BACKTEST: {"GOOG"}}
    assert auto.run("indicators_us_stocks_1d", "GOOG").success
    assert auto.run("backtest_us_stocks_1d", "GOOG").success
    assert auto.tick() == {LEADERBOARD: {"*"}}


def test_the_report_is_built_once_after_the_leaderboard_not_before_it_too(automation) -> None:
    """The page shows the leaderboard: it is not requested in the tick that requests the leaderboard, but in the
    tick after the leaderboard was stored."""
    auto = automation
    assert auto.run("sync_us_stocks_bars_1d", "2012-01-01|AAPL", "2012-12-01|IBM").success
    reports = []
    for jobs in ((("indicators_us_stocks_1d", "AAPL", "IBM"), ("backtest_us_stocks_1d", "AAPL", "IBM")),
                 (("leaderboard_us_stocks", None, None),)):
        auto.tick()
        reports.append(auto.result.get_num_requested(REPORT))
        assert all(auto.run(*job).success for job in jobs)
    auto.tick()
    assert reports + [auto.result.get_num_requested(REPORT)] == [0, 0, 1]
    assert auto.tick() == {} and auto.result.get_num_requested(REPORT) == 0


def test_a_failing_blocking_check_stops_everything_downstream(automation, tmp_path: Path) -> None:
    auto = automation
    assert auto.tick() == {}  # the first evaluation only sets the baseline
    assert auto.run("sync_us_stocks_bars_1d", "2012-01-01|AAPL", "2012-12-01|IBM").success
    assert auto.tick() == {INDICATORS: {"AAPL", "GOOG", "IBM"}, BACKTEST: {"AAPL", "GOOG", "IBM"}}
    assert auto.run("indicators_us_stocks_1d", "AAPL", "IBM").success
    assert auto.run("backtest_us_stocks_1d", "AAPL", "IBM").success
    assert auto.tick() == {LEADERBOARD: {"*"}}
    with duckdb.connect(str(tmp_path / "jutsu.duckdb")) as con:  # bad data stored outside the next run
        con.execute("UPDATE bars SET close = 'NaN'::DOUBLE WHERE symbol = 'IBM' AND ts = '2012-03-05 00:00:00+00'")
    failed = auto.run("sync_us_stocks_bars_1d", "2012-06-01|GOOG")
    assert not failed.success  # the blocking ohlcv_schema check failed...
    assert "2012-06-01|GOOG" in auto.instance.get_materialized_partitions(BARS)  # ...after the bars landed
    assert auto.tick() == {}  # neither GOOG's indicators, nor its backtest, nor the leaderboard
    assert auto.tick() == {}
