"""`jutsu adopt`: after an upgrade to coarser partitions, complete and valid stored windows are recorded as
materialised (and say so); incomplete or invalid ones are left for `jutsu sync`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb

from jutsu_pipeline.adopt import adopt
from jutsu_pipeline.config import load_config
from jutsu_pipeline.status import partition_status
from jutsu_pipeline.sync.planner import plan_sync
from jutsu_pipeline.timeframes import Grain
from jutsu_pipeline_tests.conftest import DEFAULT_GRAIN_MARKET, SAMPLE_MARKET, write_config
from jutsu_pipeline_tests.helpers import partitioning, run_bars

BARS = dg.AssetKey(["us_stocks", "bars_1d"])
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def test_adopt_records_only_complete_valid_windows(tmp_path: Path, instance) -> None:
    monthly = load_config(write_config(tmp_path, {"us_stocks": SAMPLE_MARKET}))  # the old layout
    assert run_bars(monthly, instance, start="2000-03-01|AAPL", end="2013-03-01|MSFT").success
    with duckdb.connect(str(monthly.database)) as con:
        con.execute("DELETE FROM bars WHERE symbol = 'IBM' AND ts = '2005-06-15 00:00:00+00'")  # a hole
        con.execute("UPDATE bars SET low = high + 1 WHERE symbol = 'AAPL' AND ts = '2007-03-01 00:00:00+00'")

    # The upgrade: the new release's default grain for daily bars is the year.
    yearly = load_config(write_config(tmp_path, {"us_stocks": DEFAULT_GRAIN_MARKET}))
    assert partitioning(yearly).grain is Grain.YEAR
    p = partitioning(yearly)
    before = plan_sync(p, partition_status(instance, BARS, p), NOW)
    assert len(before.missing) == 5 * 14 - 5 * 13  # the 2000 keys; the others coincide with January months
    assert len(before.moved) == 5 * 13  # ... which were stored as months: not trusted as years
    lines: list[str] = []
    [report] = adopt(yearly, instance, [p], NOW, lines.append)

    assert sorted(report.refused) == ["2005-01-01|IBM", "2007-01-01|AAPL"], report.refused
    assert report.refused["2005-01-01|IBM"] == "1 expected bar(s) missing inside the symbol's stored life"
    assert report.refused["2007-01-01|AAPL"].startswith("stored bars fail validation")
    assert len(report.adopted) == 14 * 5 - 2
    assert "adopted 68 partition(s) (year windows); 2 left for `jutsu sync`" in lines[0]

    plan = plan_sync(p, partition_status(instance, BARS, p), NOW)
    # Only these are synced again: they were never stored as years. (Their keys equal the old January
    # months' keys, so Dagster's status calls them materialised; the recorded grain says otherwise.)
    assert plan.missing == [] and sorted(plan.moved) == ["2005-01-01|IBM", "2007-01-01|AAPL"]
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=BARS, asset_partitions=["2003-01-01|FB"]), limit=1).records
    meta = record.asset_materialization.metadata
    assert meta["adopted"].value is True and meta["bars_stored"].value == 0  # FB listed in 2012: valid-empty
    assert meta["adopted_because"].value == "valid-empty: outside the symbol's stored life"
    # Adopting again finds nothing new: it never re-records.
    [again] = adopt(yearly, instance, [p], NOW, lines.append)
    assert again.adopted == [] and sorted(again.refused) == sorted(report.refused)


def test_adopt_intraday_sessions_into_quarters(tmp_path: Path, instance, fx) -> None:
    """5-minute bars stored one session per partition (the old layout) are adopted as one quarter, unless a
    session inside the quarter is missing."""
    from jutsu_fake_exchange.testing import provider_options

    fx.clock.set(dt.datetime(2024, 7, 1, tzinfo=dt.UTC))
    market = {"provider": "alpaca", "calendar": "XNYS", "timeframes": ["5m"], "start": "2024-03-01",
              "end": "2024-03-28", "symbols": ["MSFT", "SPY"],  # Good Friday 29 March: closed
              "options": provider_options(fx, "alpaca", feed="iex", http={"read_timeout": 60.0, "deadline": 120.0})}
    by_session = load_config(write_config(tmp_path, {"us": {**market, "partition_grain": {"5m": "session"}}}))
    sessions = partitioning(by_session, "us", "5m")
    assert sessions.grain is Grain.SESSION and len(sessions.date_keys()) == 20
    assert run_bars(by_session, instance, start="2024-03-01|MSFT", end="2024-03-28|SPY",
                    market="us", timeframe="5m").success
    with duckdb.connect(str(by_session.database)) as con:  # one session of SPY lost since
        con.execute("DELETE FROM bars WHERE symbol = 'SPY' AND ts::DATE = DATE '2024-03-12'")

    quarters = load_config(write_config(tmp_path, {"us": market}))  # the new default: quarters for 5m
    p = partitioning(quarters, "us", "5m")
    assert p.grain is Grain.QUARTER and p.date_keys() == ["2024-01-01"]
    lines: list[str] = []
    [report] = adopt(quarters, instance, [p], NOW, lines.append)
    assert report.adopted == ["2024-01-01|MSFT"]
    assert list(report.refused) == ["2024-01-01|SPY"]
    assert "missing" in report.refused["2024-01-01|SPY"], report.refused
    key = dg.AssetKey(["us", "bars_5m"])
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=["2024-01-01|MSFT"]), limit=1).records
    meta = record.asset_materialization.metadata
    assert meta["adopted"].value is True and meta["bars_stored"].value == 20 * 78
    plan = plan_sync(p, partition_status(instance, key, p), NOW)
    assert plan.missing == ["2024-01-01|SPY"] and plan.moved == [], plan  # only the refused quarter is synced
