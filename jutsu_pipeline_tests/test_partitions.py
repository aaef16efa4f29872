"""Partition sets: sessions only (no weekends or holidays) for XNYS, every day for 24/7, months for 1d."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from jutsu_pipeline.assets.partitions import bars_partitions_def, time_partitions_def
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
    assert len(bars_partitions_def(p).get_partition_keys()) == 157 * 5


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
    assert "2000-03-01|AAPL" in set(bars_partitions_def(p).get_partition_keys())
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


# Every hour of the day over 14 months (131 h apart), and the midnights (exchange time and UTC) around
# the holidays and history starts below, to the minute.
MOMENTS = [dt.datetime(2023, 12, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=h) for h in range(0, 24 * 420, 131)] + [
    dt.datetime.combine(day, dt.time(), tz) + dt.timedelta(minutes=m)
    for day in (dt.date(2024, 1, 1), dt.date(2024, 3, 28), dt.date(2024, 3, 29), dt.date(2024, 4, 1),
                dt.date(2024, 7, 4), dt.date(2024, 7, 5), dt.date(2024, 12, 25), dt.date(2024, 12, 26))
    for tz in (ZoneInfo("America/New_York"), dt.timezone.utc) for m in (-1, 0, 1)]


@pytest.mark.parametrize("grain", ["year", "quarter", "month", "week", "session"])
@pytest.mark.parametrize("calendar", ["XNYS", "24/7"])
@pytest.mark.parametrize(("start", "end"), [("2024-03-29", None), ("2024-07-03", None), ("2023-12-25", "2024-12-25")])
def test_date_keys_equal_dagsters_partition_keys_at_every_moment(grain: str, calendar: str, start: str,
                                                                 end: str | None) -> None:
    """The Dagster-free keys the planner uses are the ones Dagster shows: complete windows, the in-progress
    one of an open-ended market, closed sessions skipped (2024-03-29 Good Friday, 2024-07-04), before and
    after the history starts or ends."""
    p = _partitioning("1d", calendar=calendar, start=start, end=end, partition_grain={"1d": grain})
    dagster = time_partitions_def(p)
    for now in MOMENTS:
        assert p.date_keys(now) == dagster.get_partition_keys(current_time=now), now
