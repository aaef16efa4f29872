"""The bars asset end to end: real in-process Dagster, real DuckDB files."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import pytest

from jutsu_pipeline.assets.partitions import bars_partitions_def
from jutsu_pipeline.providers.sample import SampleProvider
from jutsu_pipeline.status import partition_status
from jutsu_pipeline.sync.planner import plan_ranges, plan_sync
from jutsu_pipeline_tests.conftest import query
from jutsu_pipeline_tests.helpers import (
    bad_volume_market_data,
    partition_counts,
    partition_facts,
    partitioning,
    run_bars,
    run_summary,
    step_error,
)

BARS_KEY = dg.AssetKey(["us_stocks", "bars_1d"])
UTC = dt.timezone.utc


def sample_bars(symbol: str, first: str, last: str) -> int:
    """Bars of the bundled sample file for `symbol` with first <= date <= last."""
    frame = pl.read_parquet(SampleProvider().path / f"{symbol}.parquet")
    lo, hi = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return frame.filter(pl.col("date").is_between(lo, hi)).height


def test_range_of_12_months_for_2_symbols_makes_exactly_2_provider_calls(sample_config, instance) -> None:
    result = run_bars(sample_config, instance, start="2005-01-01|AAPL", end="2005-12-01|FB")
    assert result.success
    assert "; 2 provider call(s), " in run_summary(instance, result)
    assert partition_counts(result) == (12, 12)  # FB listed in 2012
    assert len(instance.get_materialized_partitions(BARS_KEY)) == 24
    rows = query(sample_config, "SELECT symbol, count(*) FROM bars GROUP BY symbol")
    assert rows == [("AAPL", sample_bars("AAPL", "2005-01-01", "2005-12-31"))] == [("AAPL", 252)]


def test_rematerialising_is_idempotent(sample_config, instance) -> None:
    snapshot = "SELECT symbol, timeframe, ts, open, high, low, close, volume, adj_close, source FROM bars ORDER BY ALL"
    assert run_bars(sample_config, instance, start="2012-01-01|AAPL", end="2012-12-01|MSFT").success
    first = query(sample_config, snapshot)
    assert run_bars(sample_config, instance, start="2012-01-01|AAPL", end="2012-12-01|MSFT").success
    assert run_bars(sample_config, instance, key="2012-06-01|FB").success
    assert query(sample_config, snapshot) == first
    assert query(sample_config, "SELECT count(*) FROM (SELECT symbol, ts FROM bars GROUP BY ALL HAVING count(*) > 1)") == [(0,)]
    expected = sum(sample_bars(s, "2012-01-01", "2012-12-31") for s in ("AAPL", "FB", "GOOG", "IBM", "MSFT"))
    assert len(first) == expected and sample_bars("FB", "2012-01-01", "2012-05-17") == 0


def test_only_missing_partitions_are_planned_after_a_partial_backfill(sample_config, instance) -> None:
    p = partitioning(sample_config)
    done = run_bars(sample_config, instance, start="2003-01-01|FB", end="2004-06-01|GOOG")
    assert done.success
    materialized = instance.get_materialized_partitions(BARS_KEY)
    missing = plan_sync(p, partition_status(instance, BARS_KEY, p)).keys
    assert set(missing) == set(p.all_partition_keys()) - materialized
    assert len(missing) == 785 - 36
    ranges = plan_ranges(p, missing)
    covered = {f"{d}|{s}" for r in ranges for s in r.symbols
               for d in p.date_keys()[p.date_keys().index(r.first_date):p.date_keys().index(r.last_date) + 1]}
    assert covered == set(missing)
    assert len(ranges) == 4  # AAPL..MSFT whole history around the FB/GOOG hole


def test_symbol_listed_after_start_has_valid_empty_windows_with_the_reason(sample_config, instance) -> None:
    result = run_bars(sample_config, instance, start="2012-04-01|FB", end="2012-06-01|FB")
    assert result.success
    assert partition_counts(result) == (2, 1)
    facts = partition_facts(result)["2012-04-01|FB"]
    assert facts["empty_because"] == "before the symbol's first available bar (2012-05-18)"
    assert facts["dagster/row_count"] == 0
    assert query(sample_config, "SELECT min(ts)::DATE FROM bars WHERE symbol = 'FB'") == [(dt.date(2012, 5, 18),)]


def test_invalid_bars_store_nothing_for_their_partition_and_name_the_rule(sample_config, instance) -> None:
    assert run_bars(sample_config, instance, start="2000-03-01|IBM", end="2000-05-01|IBM").success
    before = query(sample_config, "SELECT ts, volume FROM bars WHERE symbol = 'IBM' ORDER BY ts")
    result = run_bars(sample_config, instance, start="2000-03-01|GOOG", end="2000-05-01|MSFT",
                      market_data=bad_volume_market_data("IBM", dt.date(2000, 4, 3)))
    assert not result.success
    message = step_error(result)
    for words in ("us_stocks/bars_1d", "2000-04-01|IBM", "volume_non_negative", "volume=-1.0", "re-materialise"):
        assert words in message
    # The bad partition keeps exactly what it had; IBM's other months and MSFT landed.
    assert query(sample_config, "SELECT ts, volume FROM bars WHERE symbol = 'IBM' ORDER BY ts") == before
    status = instance.get_status_by_partition(
        BARS_KEY, ["2000-04-01|IBM", "2000-03-01|IBM", "2000-05-01|MSFT"], bars_partitions_def(partitioning(sample_config))
    )
    assert status["2000-04-01|IBM"] == dg.AssetPartitionStatus.FAILED
    assert status["2000-03-01|IBM"] == dg.AssetPartitionStatus.MATERIALIZED
    assert status["2000-05-01|MSFT"] == dg.AssetPartitionStatus.MATERIALIZED
    assert query(sample_config, "SELECT count(*) FROM bars WHERE symbol = 'MSFT'") == [
        (sample_bars("MSFT", "2000-03-01", "2000-05-31"),)
    ]


@pytest.mark.slow
def test_a_whole_history_run_stores_every_sample_bar(sample_config, instance) -> None:
    result = run_bars(sample_config, instance, start="2000-03-01|AAPL", end="2013-03-01|MSFT")
    assert result.success and "; 5 provider call(s), " in run_summary(instance, result)
    coverage = query(sample_config, "SELECT symbol, first_ts::DATE, last_ts::DATE, bars FROM coverage ORDER BY symbol")
    assert coverage == [
        ("AAPL", dt.date(2000, 3, 1), dt.date(2013, 3, 1), 3270),
        ("FB", dt.date(2012, 5, 18), dt.date(2013, 3, 1), 196),
        ("GOOG", dt.date(2004, 8, 19), dt.date(2013, 3, 1), 2148),
        ("IBM", dt.date(2000, 3, 1), dt.date(2013, 3, 1), 3270),
        ("MSFT", dt.date(2000, 3, 1), dt.date(2013, 3, 1), 3270),
    ]
    p = partitioning(sample_config)
    assert plan_sync(p, partition_status(instance, BARS_KEY, p)).keys == []
    # bars_adjusted makes AAPL's 2:1 split of 2005-02-28 continuous.
    raw, adjusted = query(sample_config, """
        SELECT list(b.close ORDER BY b.ts), list(a.close ORDER BY a.ts) FROM bars b JOIN bars_adjusted a USING (symbol, timeframe, ts)
        WHERE symbol = 'AAPL' AND ts BETWEEN '2005-02-25' AND '2005-02-28'""")[0]
    assert raw[1] / raw[0] < 0.55 and 0.95 < adjusted[1] / adjusted[0] < 1.05
