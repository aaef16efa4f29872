"""Partition sets: sessions only (no weekends or holidays) for XNYS, every day for 24/7, months for 1d."""

from __future__ import annotations

import datetime as dt

import pytest

from jutsu_pipeline.config import parse_config
from jutsu_pipeline.partitions import BarsPartitioning, contiguous_runs, split_partition_key
from jutsu_pipeline.timeframes import Timeframe
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET


def _partitioning(timeframe: str, **change) -> BarsPartitioning:
    market = parse_config({"markets": {"m": {**SAMPLE_MARKET, **change}}}).markets["m"]
    return BarsPartitioning("m", Timeframe(timeframe), market)


def test_daily_bars_are_partitioned_by_month_within_start_and_end() -> None:
    p = _partitioning("1d")
    keys = p.date_keys()
    assert keys[0] == "2000-03-01" and keys[-1] == "2013-03-01" and len(keys) == 157
    assert p.window("2013-03-01")[1] == dt.datetime(2013, 3, 2, tzinfo=dt.timezone.utc)  # end is inclusive
    assert len(p.sessions("2001-09-01")) == 15  # closed 9/11 to 9/14
    assert len(p.partitions_def.get_partition_keys()) == 157 * 5


def test_intraday_xnys_partitions_are_exactly_the_sessions() -> None:
    import exchange_calendars as xc
    import pandas as pd

    p = _partitioning("5m")
    keys = p.date_keys()
    expected = xc.get_calendar("XNYS", start="2000-01-01", end="2013-12-31").sessions_in_range("2000-03-01", "2013-03-01")
    assert keys == [d.strftime("%Y-%m-%d") for d in expected]
    assert all(dt.date.fromisoformat(k).weekday() < 5 for k in keys)
    for closed in ("2012-07-04", "2001-09-11", "2001-09-14", "2012-10-29", "2012-10-30", "2012-12-25"):
        assert closed not in keys
    assert pd.Timestamp("2012-11-23").strftime("%Y-%m-%d") in keys


def test_early_close_window_ends_at_the_early_close() -> None:
    start, end = _partitioning("1m").window("2012-11-23")
    assert (start.isoformat(), end.isoformat()) == ("2012-11-23T14:30:00+00:00", "2012-11-23T18:00:00+00:00")


def test_24_7_includes_weekends() -> None:
    p = _partitioning("1h", calendar="24/7", start="2024-01-01", end="2024-01-31")
    keys = p.date_keys()
    assert len(keys) == 31 and "2024-01-06" in keys and "2024-01-07" in keys
    assert p.window("2024-01-06") == (dt.datetime(2024, 1, 6, tzinfo=dt.timezone.utc),
                                      dt.datetime(2024, 1, 7, tzinfo=dt.timezone.utc))


def test_open_ended_market_includes_the_in_progress_window() -> None:
    today = dt.datetime.now(dt.timezone.utc).date()
    monthly = _partitioning("1d", start="2024-01-02", end=None)
    assert monthly.date_keys()[-1] == today.replace(day=1).isoformat()
    assert _partitioning("1h", calendar="24/7", start="2024-01-02", end=None).date_keys()[-1] == today.isoformat()


def test_key_format_is_date_then_symbol() -> None:
    p = _partitioning("1d")
    assert "2000-03-01|AAPL" in set(p.partitions_def.get_partition_keys())
    assert split_partition_key("2000-03-01|BTC/USDT") == ("2000-03-01", "BTC/USDT")
    with pytest.raises(ValueError, match="not of the form"):
        split_partition_key("AAPL")


def test_contiguous_runs_follow_partition_order_across_holidays() -> None:
    keys = _partitioning("1h").date_keys()
    # 2012-07-03 and 2012-07-05 are adjacent sessions: July 4th is not a partition.
    assert contiguous_runs(["2012-07-05", "2012-07-03", "2012-07-09"], keys) == [["2012-07-03", "2012-07-05"], ["2012-07-09"]]


def test_history_starting_right_after_a_holiday_loads() -> None:
    # The calendar is built from a few days before `start`: Christmas 2021 must not be a bound error.
    p = _partitioning("5m", start="2022-01-03", end="2022-01-31")
    assert p.date_keys()[0] == "2022-01-03" and len(p.date_keys()) == 20
