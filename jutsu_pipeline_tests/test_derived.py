"""Derived timeframes: 5m/1h/1d bars computed in DuckDB from stored 1m bars equal the exchange's own."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from jutsu_fake_exchange import FakeExchange
from jutsu_fake_exchange.testing import provider_options
from jutsu_pipeline.config import ConfigError, JutsuConfig, load_config
from jutsu_pipeline.definitions import build_definitions
from jutsu_pipeline.providers import build_provider
from jutsu_pipeline.providers.base import FetchRequest
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG
from jutsu_pipeline.timeframes import Timeframe
from jutsu_pipeline_tests.conftest import query, write_config

UTC = dt.timezone.utc
# XNYS: DST ends on Sunday 2012-11-04 (open 13:30 UTC before, 14:30 UTC after); 2012-11-23 closes 13:00.
START, END = dt.date(2012, 11, 1), dt.date(2012, 11, 26)
VALUES = ["open", "high", "low", "close", "volume"]


@pytest.fixture
def fx(fx: FakeExchange) -> FakeExchange:
    """conftest's exchange at the start of 2013 (after the synced histories)."""
    fx.clock.set(dt.datetime(2013, 1, 2, tzinfo=UTC))
    return fx


def _config(tmp_path: Path, fx: FakeExchange, **market) -> JutsuConfig:  # noqa: ANN003
    base = {"provider": "alpaca", "calendar": "XNYS", "timeframes": ["1m"], "derive": ["5m", "1h", "1d"],
            "start": START.isoformat(), "end": END.isoformat(), "symbols": ["AAPL"],
            "options": provider_options(fx, "alpaca", feed="iex", http={"read_timeout": 60.0, "deadline": 120.0})}
    return load_config(write_config(tmp_path, {"us": {**base, **market}}))


def _run(defs: dg.Definitions, instance: dg.DagsterInstance, job: str, first: str, last: str) -> dg.ExecuteInProcessResult:
    tags = {RANGE_START_TAG: first, RANGE_END_TAG: last}
    return defs.resolve_job_def(job).execute_in_process(instance=instance, tags=tags, raise_on_error=False)


def _stored(config: JutsuConfig, timeframe: str) -> pl.DataFrame:
    with duckdb.connect(str(config.database), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return pl.from_arrow(con.sql("SELECT ts, open, high, low, close, volume, source, incomplete FROM bars "
                                     "WHERE timeframe = ? ORDER BY ts", params=[timeframe]).to_arrow_table())


def _exchange_bars(fx: FakeExchange, timeframe: Timeframe, lo: dt.date, hi: dt.date) -> pl.DataFrame:
    provider = build_provider("alpaca", provider_options(fx, "alpaca", feed="iex"), "America/New_York", Path)
    try:
        frame = provider.fetch(FetchRequest("AAPL", timeframe, dt.datetime.combine(lo, dt.time(), UTC),
                                            dt.datetime.combine(hi, dt.time(), UTC)))
    finally:
        provider.close()
    return frame.select("ts", *VALUES).sort("ts")


def _assert_equal(ours: pl.DataFrame, theirs: pl.DataFrame) -> None:
    assert ours["ts"].to_list() == theirs["ts"].to_list()
    for name in VALUES:
        assert ((ours[name] - theirs[name]).abs() <= 1e-9 * theirs[name].abs()).all(), name


def test_derived_1h_and_1d_equal_the_exchange_s_own_across_dst_and_an_early_close(fx, tmp_path, instance) -> None:
    config = _config(tmp_path, fx)  # the default grain: one quarterly window, clipped to start/end
    defs = build_definitions(config)
    assert _run(defs, instance, "sync_us_bars_1m", "2012-10-01|AAPL", "2012-10-01|AAPL").success
    for timeframe in ("5m", "1h", "1d"):
        result = _run(defs, instance, f"derive_us_bars_{timeframe}", "2012-10-01|AAPL", "2012-10-01|AAPL")
        assert result.success
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert set(checks) == {"ohlcv_schema", "no_duplicates", "calendar_complete", "price_anomalies"}
        assert all(c.passed for c in checks.values()), {n: c.metadata for n, c in checks.items()}
        # Dagster's table conventions: the rows of this timeframe's symbols in `bars` (the UI plots them).
        stored_rows = query(config, "SELECT count(*) FROM bars WHERE timeframe = ?", [timeframe])[0][0]
        assert result.get_asset_materialization_events()[0].materialization.metadata[
            "dagster/row_count"].value == stored_rows
    spec = defs.resolve_assets_def(dg.AssetKey(["us", "bars_1h"])).specs_by_key[dg.AssetKey(["us", "bars_1h"])]
    assert spec.metadata["dagster/table_name"] == "bars" and "dagster/column_schema" in spec.metadata
    fx.log.clear()
    hourly, daily = _stored(config, "1h"), _stored(config, "1d")
    _assert_equal(hourly, _exchange_bars(fx, Timeframe.H1, START, END + dt.timedelta(days=1)))
    _assert_equal(daily, _exchange_bars(fx, Timeframe.D1, START, END + dt.timedelta(days=1)))
    assert set(hourly["source"]) == {"derived:1m"} and not hourly["incomplete"].any()
    starts = hourly.filter(pl.col("ts").dt.date().is_in([dt.date(2012, 11, 2), dt.date(2012, 11, 5),
                                                          dt.date(2012, 11, 23)]))["ts"]
    by_day: dict[dt.date, list[str]] = {}
    for ts in starts:
        by_day.setdefault(ts.date(), []).append(ts.strftime("%H:%M"))
    assert by_day[dt.date(2012, 11, 2)][0] == "13:30" and by_day[dt.date(2012, 11, 5)][0] == "14:30"  # 09:30 New York
    assert by_day[dt.date(2012, 11, 5)][-1] == "20:30"  # 15:30-16:00 New York
    assert by_day[dt.date(2012, 11, 23)] == ["14:30", "15:30", "16:30", "17:30"]  # early close: 12:30-13:00
    assert daily["ts"].dt.time().unique().to_list() == [dt.time(0)]  # keyed by the session date
    assert len(_stored(config, "5m")) == 16 * 78 + 42


def test_a_bucket_missing_base_bars_is_incomplete_and_only_its_partition_is_stale(fx, tmp_path, instance) -> None:
    config = _config(tmp_path, fx, derive=["1h", "1d"], partition_grain={"1m": "session"})  # one per session
    defs = build_definitions(config)
    assert _run(defs, instance, "sync_us_bars_1m", "2012-11-05|AAPL", "2012-11-07|AAPL").success
    with duckdb.connect(str(config.database)) as con:
        con.execute("DELETE FROM bars WHERE timeframe = '1m' AND ts = TIMESTAMPTZ '2012-11-06 15:03:00+00'")
    for timeframe in ("1h", "1d"):
        assert _run(defs, instance, f"derive_us_bars_{timeframe}", "2012-11-05|AAPL", "2012-11-07|AAPL").success
    incomplete = query(config, "SELECT timeframe, strftime(ts, '%Y-%m-%d %H:%M') FROM bars WHERE incomplete ORDER BY ALL")
    assert incomplete == [("1d", "2012-11-06 00:00"), ("1h", "2012-11-06 14:30")]
    hour = _stored(config, "1h").filter(pl.col("ts") == dt.datetime(2012, 11, 6, 14, 30, tzinfo=UTC))
    assert hour["volume"][0] < _exchange_bars(fx, Timeframe.H1, dt.date(2012, 11, 6), dt.date(2012, 11, 7))["volume"][0]
    # Derived assets follow their base partition by partition.
    key = dg.AssetKey(["us", "bars_1h"])
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
    assert _run(defs, instance, "sync_us_bars_1m", "2012-11-06|AAPL", "2012-11-06|AAPL").success
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    assert after.get_requested_partitions(key) == {"2012-11-06|AAPL"}


def test_deriving_without_the_base_partition_fails_and_names_it(fx, tmp_path, instance) -> None:
    config = _config(tmp_path, fx, derive=["1h"], partition_grain={"1m": "session"})
    result = _run(build_definitions(config), instance, "derive_us_bars_1h", "2012-11-05|AAPL", "2012-11-05|AAPL")
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert "2012-11-05|AAPL" in message and "us/bars_1m" in message


def test_daily_from_hourly_of_a_24_7_market_uses_utc_dates(tmp_path, instance) -> None:
    with FakeExchange() as fx:
        fx.clock.set(dt.datetime(2024, 3, 1, tzinfo=UTC))
        config = load_config(write_config(tmp_path, {"crypto": {
            "provider": "binance", "calendar": "24/7", "timeframes": ["1h"], "derive": ["1d"],
            "start": "2024-01-30", "end": "2024-02-02", "symbols": ["BTCUSDT"],
            "options": provider_options(fx, "binance", http={"read_timeout": 60.0, "deadline": 120.0})}}))
        defs = build_definitions(config)
        # The default grain: the year 2024, clipped to start/end.
        assert _run(defs, instance, "sync_crypto_bars_1h", "2024-01-01|BTCUSDT", "2024-01-01|BTCUSDT").success
        assert _run(defs, instance, "derive_crypto_bars_1d", "2024-01-01|BTCUSDT", "2024-01-01|BTCUSDT").success
        provider = build_provider("binance", provider_options(fx, "binance"), "UTC", Path)
        theirs = provider.fetch(FetchRequest("BTCUSDT", Timeframe.D1, dt.datetime(2024, 1, 30, tzinfo=UTC),
                                             dt.datetime(2024, 2, 3, tzinfo=UTC))).select("ts", *VALUES)
        provider.close()
    ours = _stored(config, "1d")
    assert [ts.date() for ts in ours["ts"]] == [dt.date(2024, 1, 30), dt.date(2024, 1, 31), dt.date(2024, 2, 1),
                                               dt.date(2024, 2, 2)]
    _assert_equal(ours, theirs)


@pytest.mark.parametrize(("market", "message"), [
    ({"timeframes": ["1h"], "derive": ["5m"]}, "cannot be built from the base timeframe 1h"),
    ({"timeframes": ["1m", "1h"], "derive": ["1h"]}, "1h is also fetched"),
])
def test_impossible_derivations_are_config_errors(tmp_path, market, message) -> None:
    path = write_config(tmp_path, {"us": {"provider": "sample", "calendar": "XNYS", "start": "2012-01-02",
                                          "symbols": ["AAPL"], **market}})
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_sessions_crossing_utc_midnight_and_a_ragged_partition_set(tmp_path) -> None:
    """XASX opens 10:00 Sydney = 23:00 UTC the day before in summer (the ASOF path); only the run's
    (symbol, session) partitions are derived."""
    from jutsu_pipeline.config import parse_config
    from jutsu_pipeline.derive import derive_partitions
    from jutsu_pipeline.partitions import BarsPartitioning
    from jutsu_pipeline.quality.grid import session_table
    from jutsu_pipeline.storage.ddl import ensure_schema

    market = parse_config({"markets": {"au": {
        "provider": "sample", "calendar": "XASX", "timeframes": ["1m"], "derive": ["1h", "1d"],
        "start": "2024-01-08", "end": "2024-01-10", "symbols": ["BHP", "CBA"],
        "partition_grain": {"1m": "session"}}}}).markets["au"]  # a ragged set of session partitions
    base = BarsPartitioning("au", Timeframe.M1, market)
    sessions = session_table(base.calendar, dt.date(2024, 1, 8), dt.date(2024, 1, 9))
    assert sessions["open"][0] == dt.datetime(2024, 1, 7, 23, 0, tzinfo=UTC)
    minutes = pl.concat([
        sessions.select(pl.datetime_ranges("open", "close", interval="1m", closed="left").alias("ts")).explode("ts")
        .with_columns(pl.lit(symbol).alias("symbol"))
        for symbol in ("BHP", "CBA")
    ]).with_row_index("i").with_columns(
        (100 + pl.col("i") % 7).cast(pl.Float64).alias("open"), (101 + pl.col("i") % 5).cast(pl.Float64).alias("close"),
        pl.lit(1.0).alias("volume"))
    with duckdb.connect(str(tmp_path / "au.duckdb")) as con:
        con.execute("SET TimeZone = 'UTC'")
        ensure_schema(con)
        con.register("minutes", minutes.to_arrow())
        con.execute("INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume, source, ingested_at) "
                    "SELECT symbol, '1m', ts, open, 120, 90, close, volume, 'test', now() FROM minutes")
        keys = ["2024-01-08|BHP", "2024-01-08|CBA", "2024-01-09|CBA"]  # BHP's 2024-01-09 is not in the run
        daily = derive_partitions(con, BarsPartitioning("au", Timeframe.D1, market, base=Timeframe.M1), Timeframe.M1, keys)
        hourly = derive_partitions(con, BarsPartitioning("au", Timeframe.H1, market, base=Timeframe.M1), Timeframe.M1, keys)
        rows = con.execute("SELECT symbol, strftime(ts, '%Y-%m-%d %H:%M'), volume, incomplete FROM bars "
                           "WHERE timeframe = '1d' ORDER BY ALL").fetchall()
        first_hours = con.execute("SELECT strftime(min(ts), '%H:%M'), strftime(max(ts), '%H:%M'), count(*) FROM bars "
                                  "WHERE timeframe = '1h' AND symbol = 'BHP'").fetchall()
    assert (daily.bars, daily.incomplete, hourly.bars) == (3, 0, 18)
    assert rows == [("BHP", "2024-01-08 00:00", 360.0, False), ("CBA", "2024-01-08 00:00", 360.0, False),
                    ("CBA", "2024-01-09 00:00", 360.0, False)]
    assert first_hours == [("23:00", "04:00", 6)]  # 10:00 ... 15:00-16:00 Sydney
