"""Gap-repair sensor: exactly the complement, as contiguous ranges, bounded, no duplicates, back-off."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import dagster as dg
import pytest

from jutsu_pipeline.config import JutsuConfig, load_config
from jutsu_pipeline.definitions import build_definitions
from jutsu_pipeline.partitions import partition_key
from jutsu_pipeline.sensors import gaps
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, write_config
from jutsu_pipeline_tests.helpers import partitioning, run_bars

SENSOR = "us_stocks_bars_1d_gap_repair"
JOB = "sync_us_stocks_bars_1d"
MONTHS = [f"2012-{m:02d}-01" for m in range(1, 13)]
SYMBOLS = ["AAPL", "FB", "GOOG", "IBM", "MSFT"]


def _config(folder: Path, symbols: list[str] = SYMBOLS, max_runs: int = 10) -> JutsuConfig:
    market = {**SAMPLE_MARKET, "start": "2012-01-01", "end": "2012-12-31", "symbols": symbols,
              "automation": {"max_runs_per_tick": max_runs, "retry_base_minutes": 5}}
    return load_config(write_config(folder, {"us_stocks": market}))


def _tick(config: JutsuConfig, instance: dg.DagsterInstance, cursor: str | None = None):
    defs = build_definitions(config)
    context = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
    return defs.get_repository_def().get_sensor_def(SENSOR).evaluate_tick(context)


def _keys(config: JutsuConfig, request: dg.RunRequest) -> set[str]:
    return gaps.range_keys(partitioning(config), request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG])


def _spans(data) -> list[tuple[str, str]]:
    return [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in data.run_requests]


def _launch(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.DagsterRun:
    """What the daemon does with a request, minus execution: a started run with the request's tags."""
    run = dg.DagsterRun(job_name=JOB, run_id=str(uuid.uuid4()), tags=request.tags, status=dg.DagsterRunStatus.STARTED)
    return instance.add_run(run)


@pytest.fixture
def partial(tmp_path: Path, instance: dg.DagsterInstance) -> JutsuConfig:
    """AAPL and FB January-June and GOOG March are materialised; the rest is missing."""
    config = _config(tmp_path)
    assert run_bars(config, instance, start="2012-01-01|AAPL", end="2012-06-01|FB").success
    assert run_bars(config, instance, key="2012-03-01|GOOG").success
    return config


def test_requests_exactly_the_complement_in_contiguous_ranges(partial, instance) -> None:
    data = _tick(partial, instance)
    assert _spans(data) == [
        ("2012-07-01|AAPL", "2012-12-01|FB"),
        ("2012-01-01|GOOG", "2012-02-01|GOOG"),
        ("2012-04-01|GOOG", "2012-12-01|GOOG"),
        ("2012-01-01|IBM", "2012-12-01|MSFT"),
    ]
    requested = [_keys(partial, r) for r in data.run_requests]
    assert sum(map(len, requested)) == len(set().union(*requested))  # no overlap
    materialized = instance.get_materialized_partitions(dg.AssetKey(["us_stocks", "bars_1d"]))
    everything = {partition_key(m, s) for m in MONTHS for s in SYMBOLS}
    assert set().union(*requested) == everything - materialized
    assert all(r.tags[gaps.GAP_TAG] == "us_stocks/bars_1d" for r in data.run_requests)


def test_bounded_per_tick_and_no_duplicates_while_in_flight(tmp_path, instance) -> None:
    config = _config(tmp_path, max_runs=2)
    assert run_bars(config, instance, start="2012-01-01|AAPL", end="2012-06-01|FB").success
    assert run_bars(config, instance, key="2012-03-01|GOOG").success
    first = _tick(config, instance)
    assert _spans(first) == [("2012-07-01|AAPL", "2012-12-01|FB"), ("2012-01-01|GOOG", "2012-02-01|GOOG")]
    for request in first.run_requests:
        _launch(instance, request)
    second = _tick(config, instance, first.cursor)
    assert _spans(second) == [("2012-04-01|GOOG", "2012-12-01|GOOG"), ("2012-01-01|IBM", "2012-12-01|MSFT")]
    for request in second.run_requests:
        _launch(instance, request)
    third = _tick(config, instance, second.cursor)
    assert not third.run_requests
    assert "0 to repair in 0 range run(s)" in third.skip_message and "47 in flight" in third.skip_message


def test_failed_ranges_back_off_exponentially(tmp_path, instance, monkeypatch) -> None:
    config = _config(tmp_path, symbols=["AAPL", "FB"])
    assert run_bars(config, instance, start="2012-01-01|AAPL", end="2012-12-01|AAPL").success
    clock = [time.time()]
    monkeypatch.setattr(gaps, "_now", lambda: clock[0])
    data = _tick(config, instance)
    fb = [("2012-01-01|FB", "2012-12-01|FB")]
    assert _spans(data) == fb
    for failures, wait in ((1, 5), (2, 10)):  # retry_base_minutes 5, doubling
        instance.report_run_failed(_launch(instance, data.run_requests[0]))
        seen_at = clock[0]
        for minutes, expected in ((0, []), (wait - 1, []), (wait + 1, fb)):
            clock[0] = seen_at + minutes * 60
            data_later = _tick(config, instance, data.cursor)
            assert _spans(data_later) == expected
            if not expected:
                assert f"12 backing off: 2012-01-01|FB...2012-12-01|FB failed {failures}x" in data_later.skip_message
            data = data_later


def test_new_symbol_gets_its_whole_history(tmp_path, instance) -> None:
    config = _config(tmp_path, symbols=["AAPL", "FB"])
    assert run_bars(config, instance, start="2012-01-01|AAPL", end="2012-12-01|FB").success
    assert "0 partition(s) to repair" in _tick(config, instance).skip_message
    reloaded = _config(tmp_path, symbols=["AAPL", "FB", "IBM"])  # the config changed; definitions reloaded
    assert _spans(_tick(reloaded, instance)) == [("2012-01-01|IBM", "2012-12-01|IBM")]
