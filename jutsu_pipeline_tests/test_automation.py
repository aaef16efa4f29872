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
CORPORATE_ACTIONS = dg.AssetKey(["us_stocks", "corporate_actions"])
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

    def follow(self, max_ticks: int = 6) -> list[tuple[set[dg.AssetKey], frozenset[str]]]:
        """Tick and execute what each tick requests, as the daemon groups it (one run per partition subset,
        the assets of a run in dependency order), until a tick requests nothing: the runs, in order."""
        job = self.defs.resolve_implicit_global_asset_job_def()
        runs: list[tuple[set[dg.AssetKey], frozenset[str]]] = []
        for _ in range(max_ticks):
            result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
            self.cursor = result.cursor
            groups: dict[frozenset[str], set[dg.AssetKey]] = {}
            for key in self.defs.resolve_all_asset_keys():
                if result.get_num_requested(key):
                    groups.setdefault(frozenset(result.get_requested_partitions(key) - {None}), set()).add(key)
            if not groups:
                return runs
            for partitions, keys in groups.items():
                tags = {RANGE_START_TAG: min(partitions), RANGE_END_TAG: max(partitions)} if partitions else {}
                assert job.execute_in_process(instance=self.instance, tags=tags, asset_selection=list(keys)).success
                runs.append((keys, partitions))
        raise AssertionError(f"automation still requesting after {max_ticks} ticks: {runs}")

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


def test_a_close_builds_the_report_once_beside_the_leaderboard(automation) -> None:
    """The page shows the indicators and the leaderboard: while they are about to be recomputed in another
    run it waits, then it is built in the leaderboard's run, after it (once for the history, once a close)."""
    auto = automation
    auto.tick()  # the sensor's first evaluation: its baseline
    assert auto.run("sync_us_stocks_bars_1d", "2012-01-01|AAPL", "2012-12-01|IBM").success
    history = auto.follow()
    assert [keys for keys, _ in history][-1] == {LEADERBOARD, REPORT}
    assert [keys & {REPORT} for keys, _ in history].count({REPORT}) == 1

    assert auto.run("sync_us_stocks_bars_1d", "2012-12-01|AAPL", "2012-12-01|IBM").success  # the close
    before = auto.instance.fetch_materializations(REPORT, limit=10).records
    close = auto.follow()
    assert [keys - {CORPORATE_ACTIONS} for keys, _ in close] == [{INDICATORS, BACKTEST}, {LEADERBOARD, REPORT}]
    pages = auto.instance.fetch_materializations(REPORT, limit=10).records
    assert len(pages) == len(before) + 1  # once
    board = auto.instance.fetch_materializations(LEADERBOARD, limit=1).records[0]
    assert pages[0].storage_id > board.storage_id  # after the leaderboard it shows


def test_without_strategies_the_report_follows_the_indicators_once(tmp_path: Path, instance) -> None:
    market = {**SAMPLE_MARKET, "start": "2012-01-01", "end": "2012-12-31", "symbols": ["AAPL", "IBM"]}
    auto = Automation(build_definitions(load_config(write_config(tmp_path, {"us_stocks": market}))), instance)
    auto.tick()
    assert auto.run("sync_us_stocks_bars_1d", "2012-01-01|AAPL", "2012-12-01|IBM").success
    assert [keys - {CORPORATE_ACTIONS} for keys, _ in auto.follow()] == [{INDICATORS}, {REPORT}]


def test_a_failing_blocking_check_stops_everything_downstream(automation, tmp_path: Path) -> None:
    auto = automation
    assert auto.tick() == {}  # the first evaluation only sets the baseline
    assert auto.run("sync_us_stocks_bars_1d", "2012-01-01|AAPL", "2012-12-01|IBM").success
    assert auto.tick() == {INDICATORS: {"AAPL", "GOOG", "IBM"}, BACKTEST: {"AAPL", "GOOG", "IBM"}}
    assert auto.run("indicators_us_stocks_1d", "AAPL", "IBM").success
    assert auto.run("backtest_us_stocks_1d", "AAPL", "IBM").success
    assert auto.tick() == {LEADERBOARD: {"*"}}
    assert auto.run("leaderboard_us_stocks").success and auto.run("report_us_stocks").success
    assert auto.tick() == {}
    with duckdb.connect(str(tmp_path / "jutsu.duckdb")) as con:  # bad data stored outside the next run
        con.execute("UPDATE bars SET close = 'NaN'::DOUBLE WHERE symbol = 'IBM' AND ts = '2012-03-05 00:00:00+00'")
    failed = auto.run("sync_us_stocks_bars_1d", "2012-06-01|GOOG")
    assert not failed.success  # the blocking ohlcv_schema check failed...
    assert "2012-06-01|GOOG" in auto.instance.get_materialized_partitions(BARS)  # ...after the bars landed
    assert auto.tick() == {}  # neither GOOG's indicators, nor its backtest, nor the leaderboard
    assert auto.result.get_num_requested(REPORT) == 1  # but the page, which shows the failure: nothing will follow
    assert auto.tick() == {}
