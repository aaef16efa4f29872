"""What a bars partition's materialisation carries: that partition's own facts, never the run's totals (those
are in the run's one summary line or its failure's metadata) nor the keys the planner reads (the run's tags)."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from jutsu_pipeline.assets.partitions import bars_partitions_def
from jutsu_pipeline.status import GRAIN, HISTORY_END, HISTORY_START, RUN_TAG_PREFIX, partition_status
from jutsu_pipeline.sync.planner import plan_sync
from jutsu_pipeline_tests.conftest import query
from jutsu_pipeline_tests.helpers import bad_volume_market_data, partition_facts, partitioning, run_bars, run_summary

BARS_KEY = dg.AssetKey(["us_stocks", "bars_1d"])
UTC = dt.timezone.utc
WITH_BARS = {"dagster/row_count", "first_ts", "last_ts"}
VALID_EMPTY = {"dagster/row_count", "empty_because"}
WINDOW_SQL = """SELECT count(*), epoch(min(ts)), epoch(max(ts)) FROM bars
WHERE symbol = ? AND ts >= CAST(? || ' 00:00:00+00' AS TIMESTAMPTZ)
  AND ts < CAST(? || ' 00:00:00+00' AS TIMESTAMPTZ) + INTERVAL 1 MONTH"""


def test_each_partition_carries_its_own_rows_and_bounds_and_the_run_the_planner_keys(sample_config, instance) -> None:
    result = run_bars(sample_config, instance, start="2012-04-01|FB", end="2012-06-01|GOOG")
    assert result.success
    facts = partition_facts(result)
    assert len(facts) == 6  # FB and GOOG × April to June
    for key, meta in facts.items():
        date_key, symbol = key.split("|")
        rows, first, last = query(sample_config, WINDOW_SQL, [symbol, date_key, date_key])[0]
        if rows:
            assert set(meta) == WITH_BARS, key
            assert (meta["dagster/row_count"], meta["first_ts"], meta["last_ts"]) == (rows, first, last), key
        else:  # FB listed on 2012-05-18
            assert key == "2012-04-01|FB" and set(meta) == VALID_EMPTY
            assert meta["dagster/row_count"] == 0
            assert meta["empty_because"] == "before the symbol's first available bar (2012-05-18)"
    assert sum(m["dagster/row_count"] for m in facts.values()) == query(sample_config, "SELECT count(*) FROM bars")[0][0]
    # Partitions differ in their own facts (a run-wide total would be the same in each).
    assert len({m["dagster/row_count"] for m in facts.values()}) > 1
    tags = instance.get_run_by_id(result.run_id).tags
    assert [tags[RUN_TAG_PREFIX + k] for k in (HISTORY_START, HISTORY_END, GRAIN)] == ["2000-03-01", "2013-03-01", "month"]
    summary = run_summary(instance, result)
    assert summary.startswith("us_stocks/bars_1d: 5 partition(s) with 93 bars written (93 fetched), 1 valid-empty, 0 failed")
    assert "; 2 provider call(s), " in summary
    # The planner reads the same facts back: nothing of what was just stored is planned again.
    p = partitioning(sample_config)
    planned = plan_sync(p, partition_status(instance, BARS_KEY, p)).keys
    assert not set(planned) & set(facts)


def test_a_partly_failed_run_records_the_stored_partitions_facts_and_its_totals_once(sample_config, instance) -> None:
    result = run_bars(sample_config, instance, start="2012-04-01|FB", end="2012-06-01|GOOG",
                      market_data=bad_volume_market_data("GOOG", dt.date(2012, 5, 15)))
    assert not result.success
    # A failed step's recorded partitions reach the instance, not the in-process result's events.
    records = instance.fetch_materializations(BARS_KEY, limit=100).records
    facts = {str(r.partition_key): {k: v.value for k, v in r.asset_materialization.metadata.items()}
             for r in records if r.run_id == result.run_id}
    assert "2012-05-01|GOOG" not in facts and len(facts) == 5  # the failed window is not materialised
    rows = query(sample_config, WINDOW_SQL, ["GOOG", "2012-06-01", "2012-06-01"])[0][0]
    assert facts["2012-06-01|GOOG"]["dagster/row_count"] == rows > 0
    assert all(set(m) in (WITH_BARS, VALID_EMPTY) for m in facts.values())
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    totals = {k: v.value for k, v in failure.event_specific_data.user_failure_data.metadata.items()}
    assert (totals["partitions_with_bars"], totals["partitions_valid_empty"], totals["partitions_failed"]) == (4, 1, 1)
    assert "2012-05-01|GOOG" in totals["failed_partitions"] and "volume" in totals["failed_partitions"]
    assert "1 failed" in run_summary(instance, result)
    status = instance.get_status_by_partition(BARS_KEY, ["2012-05-01|GOOG", "2012-06-01|GOOG"],
                                              bars_partitions_def(partitioning(sample_config)))
    assert status["2012-05-01|GOOG"] == dg.AssetPartitionStatus.FAILED
    assert status["2012-06-01|GOOG"] == dg.AssetPartitionStatus.MATERIALIZED
