"""Partition grains: the defaults keep 500 symbols × 20 years well under Dagster's 100,000 partitions per
asset at every timeframe, larger layouts warn with the number, and closed days are never missing."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pytest

from jutsu_pipeline.config import PartitionCountWarning, load_config, parse_config
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.timeframes import DEFAULT_GRAINS, Grain, Timeframe
from jutsu_pipeline_tests.conftest import DEFAULT_GRAIN_MARKET, SAMPLE_MARKET, query, write_config
from jutsu_pipeline_tests.helpers import partition_counts, run_bars

BIG = {"provider": "sample", "calendar": "XNYS", "timeframes": ["1d", "1h", "5m", "1m"], "start": "2006-01-03",
       "end": "2025-12-31", "symbols": [f"S{i:03d}" for i in range(500)]}


def test_default_grains_keep_500_symbols_x_20_years_well_under_100k() -> None:
    assert DEFAULT_GRAINS == {Timeframe.D1: Grain.YEAR, Timeframe.H1: Grain.YEAR,
                              Timeframe.M15: Grain.QUARTER, Timeframe.M5: Grain.QUARTER, Timeframe.M1: Grain.QUARTER}
    big = {**BIG, "timeframes": ["1d", "1h", "15m", "5m", "1m"]}  # no partition_grain: the defaults
    for calendar in ("XNYS", "24/7"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", PartitionCountWarning)
            market = parse_config({"markets": {"big": {**big, "calendar": calendar}}}).markets["big"]
        counts = {tf.value: market.partitions_estimate(tf) for tf in market.timeframes}
        assert counts == {"1d": 10_000, "1h": 10_000, "15m": 40_000, "5m": 40_000, "1m": 40_000}
        # The estimate is the real count of the time dimension × symbols, for every timeframe.
        for tf in market.timeframes:
            partitioning = BarsPartitioning("big", tf, market)
            assert partitioning.grain is DEFAULT_GRAINS[tf]
            assert len(partitioning.date_keys()) * 500 == counts[tf.value]


def test_the_sample_market_has_one_partition_per_symbol_year() -> None:
    sample = load_config(Path(__file__).resolve().parents[1] / "jutsu.yaml").markets["us_stocks"]
    daily = BarsPartitioning("us_stocks", Timeframe.D1, sample)
    assert daily.grain is Grain.YEAR and "partition_grain" not in sample.model_fields_set
    assert daily.date_keys()[0] == "2000-01-01" and daily.date_keys()[-1] == "2013-01-01"
    assert len(daily.all_partition_keys()) == 5 * 14 == sample.partitions_estimate(Timeframe.D1)


@pytest.mark.parametrize("grain, windows", [("month", 240), ("week", 1044), ("session", 5217)])  # sessions estimated as weekdays
def test_finer_grains_warn_with_the_number(grain: str, windows: int) -> None:
    with pytest.warns(PartitionCountWarning) as caught:
        market = parse_config({"markets": {"big": {**BIG, "timeframes": ["1m"], "partition_grain": {"1m": grain}}}})
    message = str(caught[0].message)
    assert f"markets.big bars_1m would have about {500 * windows:,} partitions" in message
    assert "partition_grain.1m" in message
    assert market.markets["big"].grain(Timeframe.M1) is Grain(grain)


def test_every_grain_has_its_period_key_and_clipped_window() -> None:
    grains = {"1d": "year", "5m": "quarter"}
    market = parse_config({"markets": {"m": {**SAMPLE_MARKET, "timeframes": ["1d", "5m"], "partition_grain": grains}}})
    cfg = market.markets["m"]
    daily = BarsPartitioning("m", Timeframe.D1, cfg)
    assert daily.date_keys()[0] == "2000-01-01" and daily.date_keys()[-1] == "2013-01-01" and len(daily.date_keys()) == 14
    assert daily.window("2000-01-01") == (dt.datetime(2000, 3, 1, tzinfo=dt.UTC), dt.datetime(2001, 1, 1, tzinfo=dt.UTC))
    assert daily.window("2013-01-01")[1] == dt.datetime(2013, 3, 2, tzinfo=dt.UTC)  # end is inclusive
    assert len(daily.sessions("2001-01-01")) == 248  # 2001 had 248 NYSE sessions (closed 9/11 to 9/14)
    intraday = BarsPartitioning("m", Timeframe.M5, cfg)
    assert intraday.date_keys()[:2] == ["2000-01-01", "2000-04-01"]
    start, end = intraday.window("2012-10-01")  # Q4 2012: first open 1 Oct 13:30 UTC, last close 31 Dec 21:00 UTC
    assert (start, end) == (dt.datetime(2012, 10, 1, 13, 30, tzinfo=dt.UTC), dt.datetime(2012, 12, 31, 21, tzinfo=dt.UTC))
    assert intraday.date_key_for(dt.date(2012, 11, 23)) == "2012-10-01"
    weekly = BarsPartitioning("m", Timeframe.D1, parse_config({"markets": {"m": {
        **SAMPLE_MARKET, "partition_grain": {"1d": "week"}}}}).markets["m"])
    assert weekly.date_key_for(dt.date(2012, 7, 5)) == "2012-07-02"  # weeks start on Monday
    assert len(weekly.sessions("2012-07-02")) == 4  # July 4th closed


def test_yearly_daily_sync_has_no_missing_days_and_listing_years_are_valid_empty(tmp_path: Path, instance) -> None:
    config = load_config(write_config(tmp_path, {"us_stocks": DEFAULT_GRAIN_MARKET}))  # one partition per symbol-year
    result = run_bars(config, instance, start="2000-01-01|AAPL", end="2013-01-01|MSFT")
    assert result.success
    # FB listed 2012-05-18 and GOOG 2004-08-19: their earlier years are valid-empty, not failures.
    assert partition_counts(result) == (14 * 5 - 16, 12 + 4)
    assert query(config, "SELECT count(*) FROM bars") == [(12_154,)]  # the same bars as the monthly layout
    assert query(config, "SELECT count(*) FROM bars WHERE dayofweek(ts) IN (0, 6)") == [(0,)]


def test_the_earlier_layout_is_a_pinned_grain_and_large_markets_warn() -> None:
    pinned = {"1d": "month"}  # the earlier releases' daily grain (docs/configuration.md)
    with pytest.warns(PartitionCountWarning, match="bars_1d would have about 120,000 partitions"):
        parse_config({"markets": {"big": {**BIG, "timeframes": ["1d"], "partition_grain": pinned}}})


def test_quarterly_intraday_sync_skips_closed_days_and_the_quarter_before_listing_is_valid_empty(
        tmp_path: Path, instance, fx) -> None:
    from jutsu_fake_exchange.testing import provider_options

    fx.clock.set(dt.datetime(2024, 7, 1, tzinfo=dt.UTC))
    market = {"provider": "alpaca", "calendar": "XNYS", "timeframes": ["5m"], "start": "2024-03-01",
              "end": "2024-06-14", "symbols": ["NEWCO", "SPY"],  # NEWCO lists on 2024-06-03
              "options": provider_options(fx, "alpaca", feed="iex", http={"read_timeout": 60.0, "deadline": 120.0})}
    config = load_config(write_config(tmp_path, {"us": market}))  # no partition_grain: quarters for 5m
    assert BarsPartitioning("us", Timeframe.M5, config.markets["us"]).date_keys() == ["2024-01-01", "2024-04-01"]
    result = run_bars(config, instance, start="2024-01-01|NEWCO", end="2024-04-01|SPY", market="us", timeframe="5m")
    assert result.success
    assert partition_counts(result) == (3, 1)
    days = dict(query(config, "SELECT symbol, count(DISTINCT ts::DATE) FROM bars GROUP BY ALL"))
    # 1 Mar to 14 Jun 2024: 74 sessions (Good Friday, Memorial Day and weekends closed); NEWCO's ten.
    assert days == {"SPY": 74, "NEWCO": 10}
    assert query(config, "SELECT count(*) FROM bars WHERE dayofweek(ts) IN (0, 6) "
                         "OR ts::DATE IN (DATE '2024-03-29', DATE '2024-05-27')") == [(0,)]
