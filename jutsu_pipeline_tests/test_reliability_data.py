"""Lying providers through the real path (fake exchange over sockets, in-process Dagster, DuckDB files):
completeness of pages, duplicates, off-grid bars, naive timestamps, finality of local files."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import pytest

from jutsu_fake_exchange import FakeExchange, Fault
from jutsu_fake_exchange.testing import provider_options
from jutsu_pipeline.config import JutsuConfig, load_config
from jutsu_pipeline.providers import build_provider
from jutsu_pipeline.providers.base import FetchRequest
from jutsu_pipeline.providers.files import FilesProvider
from jutsu_pipeline.providers.http import MalformedPayload
from jutsu_pipeline.timeframes import Timeframe
from jutsu_pipeline_tests.conftest import query, write_config
from jutsu_pipeline_tests.helpers import run_bars, run_summary, step_error

UTC = dt.timezone.utc
SNAPSHOT = "SELECT symbol, ts, open, high, low, close, volume FROM bars ORDER BY ALL"
HOURLY_KEY = dg.AssetKey(["crypto", "bars_1h"])


def hourly_crypto(folder: Path, fx: FakeExchange, **quality: str) -> JutsuConfig:
    folder.mkdir(parents=True, exist_ok=True)
    market = {"provider": "binance", "calendar": "24/7", "timeframes": ["1h"], "start": "2024-02-10",
              "end": "2024-02-12", "symbols": ["BTCUSDT", "ETHUSDT"], "partition_grain": {"1h": "session"},
              "options": provider_options(fx, "binance", page_limit=10), **({"quality": quality} if quality else {})}
    return load_config(write_config(folder, {"crypto": market}))


def run_hourly(config: JutsuConfig, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return run_bars(config, instance, start="2024-02-10|BTCUSDT", end="2024-02-12|ETHUSDT", market="crypto",
                    timeframe="1h")


@pytest.fixture
def clean_hourly(fx: FakeExchange, tmp_path: Path) -> list[tuple]:
    with dg.DagsterInstance.ephemeral() as instance:
        config = hourly_crypto(tmp_path / "clean", fx)
        assert run_hourly(config, instance).success
    fx.reset()
    rows = query(config, SNAPSHOT)
    assert len(rows) == 2 * 3 * 24
    return rows


def test_a_bar_stamped_in_the_future_never_moves_the_cursor(fx: FakeExchange, tmp_path: Path, instance,
                                                           clean_hourly: list[tuple]) -> None:
    fx.faults.script("binance", Fault.data("future_bar"))  # page 1: its last kline is stamped 30 days ahead
    config = hourly_crypto(tmp_path / "faulty", fx)
    assert run_hourly(config, instance).success
    assert query(config, SNAPSHOT) == clean_hourly
    assert len(instance.get_materialized_partitions(HOURLY_KEY)) == 6
    first, second = fx.requests("binance")[:2]
    step = 3600 * 1000
    assert int(second.params["startTime"]) == int(first.params["startTime"]) + 9 * step  # from the 9th real bar on


def test_a_full_page_that_does_not_advance_is_an_error_naming_the_page(fx: FakeExchange) -> None:
    fx.faults.script("binance", Fault.ok(), Fault.data("stuck_cursor"))  # page 2 repeats page 1
    provider = build_provider("binance", provider_options(fx, "binance", page_limit=10), "UTC", Path)
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(MalformedPayload) as error:
        provider.fetch(FetchRequest("BTCUSDT", Timeframe.M1, start, start + dt.timedelta(minutes=30)))
    message = str(error.value)
    assert "page 2 (startTime=1704067800000)" in message and "does not advance" in message
    assert "binance BTCUSDT 1m window [2024-01-01T00:00:00Z, 2024-01-01T00:30:00Z)" in message
    assert fx.count("binance") == 2


def test_conflicting_duplicates_fail_naming_both_rows(fx: FakeExchange, tmp_path: Path, instance) -> None:
    fx.faults.always("binance", Fault.data("conflicting_duplicate"), when={"symbol": "BTCUSDT"})
    config = hourly_crypto(tmp_path, fx)
    result = run_hourly(config, instance)
    assert not result.success
    error = step_error(result)
    assert "BTCUSDT" in error and "different values" in error
    assert "ts=2024-02-10 00:00:00+00:00" in error and error.count("close=") >= 2
    assert query(config, "SELECT DISTINCT symbol FROM bars") == [("ETHUSDT",)]
    assert not any("BTCUSDT" in k for k in instance.get_materialized_partitions(HOURLY_KEY))


def test_identical_duplicates_are_dropped_and_counted(fx: FakeExchange, tmp_path: Path, instance,
                                                     clean_hourly: list[tuple]) -> None:
    fx.faults.always("binance", Fault.data("duplicate_boundary"))  # every page repeats the previous page's last bar
    config = hourly_crypto(tmp_path / "dupes", fx)
    result = run_hourly(config, instance)
    assert result.success
    assert query(config, SNAPSHOT) == clean_hourly
    dropped = re.search(r"(\d+) identical duplicate bar\(s\) dropped", run_summary(instance, result))
    assert dropped is not None and int(dropped.group(1)) > 0


def test_off_grid_intraday_bar_fails_its_partition_under_standard(fx: FakeExchange, tmp_path: Path, instance) -> None:
    fx.faults.script("binance", Fault.data("off_grid"))  # the first 1h bar is stamped 00:30
    config = hourly_crypto(tmp_path / "standard", fx)
    result = run_hourly(config, instance)
    assert not result.success
    assert "2024-02-10|BTCUSDT" in step_error(result) and "rule on_grid" in step_error(result)
    materialized = instance.get_materialized_partitions(HOURLY_KEY)
    assert "2024-02-10|BTCUSDT" not in materialized and len(materialized) == 5
    assert query(config, "SELECT count(*) FROM bars WHERE minute(ts) <> 0") == [(0,)]
    fx.reset()
    fx.faults.script("binance", Fault.data("off_grid"))
    lenient = hourly_crypto(tmp_path / "lenient", fx, profile="lenient")  # a warning there: stored as served
    with dg.DagsterInstance.ephemeral() as other:
        assert run_hourly(lenient, other).success
    assert query(lenient, "SELECT count(*) FROM bars WHERE minute(ts) = 30") == [(1,)]


def _alpaca_daily(folder: Path, fx: FakeExchange) -> JutsuConfig:
    folder.mkdir(parents=True, exist_ok=True)
    market = {"provider": "alpaca", "calendar": "XNYS", "timeframes": ["1d"], "start": "2024-01-02",
              "end": "2024-03-01", "symbols": ["AAPL", "MSFT"], "options": provider_options(fx, "alpaca"),
              "partition_grain": {"1d": "month"}}
    return load_config(write_config(folder, {"stocks": market}))


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo"])
def test_timestamps_without_a_zone_never_use_the_hosts_zone(fx: FakeExchange, tmp_path: Path, instance,
                                                            monkeypatch: pytest.MonkeyPatch, zone: str) -> None:
    clean = _alpaca_daily(tmp_path / "clean", fx)
    with dg.DagsterInstance.ephemeral() as other:
        assert run_bars(clean, other, start="2024-01-01|AAPL", end="2024-02-01|MSFT", market="stocks").success
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        fx.faults.always("alpaca", Fault.data("naive_timestamps"))  # "t": "2024-01-02T05:00:00" (no Z)
        naive = _alpaca_daily(tmp_path / "naive", fx)
        result = run_bars(naive, instance, start="2024-01-01|AAPL", end="2024-02-01|MSFT", market="stocks")
        assert time.localtime().tm_gmtoff == (9 * 3600 if zone == "Asia/Tokyo" else 0)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert all(r.faults == ("naive_timestamps",) for r in fx.requests("alpaca")[-2:])
    assert result.success, step_error(result)
    assert query(naive, SNAPSHOT) == query(clean, SNAPSHOT) and len(query(clean, SNAPSHOT)) == 2 * 41


DAILY = pl.DataFrame({
    "date": ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"],
    "open": [187.15, 184.22, 182.15, 181.99, 182.085], "high": [188.44, 185.88, 183.0872, 182.76, 185.6],
    "low": [183.885, 183.43, 180.88, 180.17, 181.5], "close": [185.64, 184.25, 181.91, 181.18, 185.56],
    "volume": [82488674, 58414460, 71983570, 62379661, 59144470],
})


def test_files_provider_serves_only_final_bars_by_its_clock(tmp_path: Path) -> None:
    DAILY.write_csv(tmp_path / "SPX.csv")
    new_york = ZoneInfo("America/New_York")
    now = dt.datetime(2024, 1, 8, 14, 36, tzinfo=new_york)  # the 8th's session is still open
    provider = FilesProvider(tmp_path, "America/New_York", clock=lambda: now)
    january = FetchRequest("SPX", Timeframe.D1, dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 2, 1, tzinfo=UTC))
    frame = provider.fetch(january)
    assert frame["ts"].dt.date().to_list() == [dt.date(2024, 1, d) for d in (2, 3, 4, 5)]
    assert provider.history("SPX", Timeframe.D1).last_ts == dt.datetime(2024, 1, 5, tzinfo=UTC)
    now = dt.datetime(2024, 1, 9, 0, 0, tzinfo=new_york)  # midnight in New York: the 8th is final
    assert provider.fetch(january)["ts"].dt.date().to_list()[-1] == dt.date(2024, 1, 8)
    hourly = pl.DataFrame({"ts": ["2024-01-08 09:00", "2024-01-08 10:00", "2024-01-08 11:00"], "open": [1.0] * 3,
                           "high": [1.0] * 3, "low": [1.0] * 3, "close": [1.0] * 3, "volume": [1] * 3})
    (tmp_path / "1h").mkdir()
    hourly.write_csv(tmp_path / "1h" / "SPX.csv")
    now = dt.datetime(2024, 1, 8, 10, 59, tzinfo=new_york)  # the 10:00 bar ends at 11:00
    day = FetchRequest("SPX", Timeframe.H1, dt.datetime(2024, 1, 8, tzinfo=UTC), dt.datetime(2024, 1, 9, tzinfo=UTC))
    assert FilesProvider(tmp_path, "America/New_York", clock=lambda: now).fetch(day).height == 1


def test_files_provider_final_bars_at_the_edges_from_a_parquet_date_column(tmp_path: Path) -> None:
    """The same final-bar rule for a Parquet file with a Date column (read without per-row timezone work):
    a daily bar is final from the market's next local midnight on, an hourly bar at its end."""
    DAILY.with_columns(pl.col("date").str.to_date()).write_parquet(tmp_path / "SPX.parquet")
    new_york = ZoneInfo("America/New_York")
    january = FetchRequest("SPX", Timeframe.D1, dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 2, 1, tzinfo=UTC))

    def days(now: dt.datetime) -> list[dt.date]:
        return FilesProvider(tmp_path, "America/New_York", clock=lambda: now).fetch(january)["ts"].dt.date().to_list()

    assert days(dt.datetime(2024, 1, 8, 23, 59, 59, tzinfo=new_york))[-1] == dt.date(2024, 1, 5)
    assert days(dt.datetime(2024, 1, 9, 0, 0, tzinfo=new_york))[-1] == dt.date(2024, 1, 8)  # 05:00 UTC
    assert days(dt.datetime(2024, 1, 9, 4, 59, tzinfo=UTC))[-1] == dt.date(2024, 1, 5)  # still the 8th in New York
    frame = FilesProvider(tmp_path, "America/New_York", clock=lambda: dt.datetime(2024, 2, 1, tzinfo=UTC)).fetch(january)
    assert frame.schema["ts"] == pl.Datetime("us", "UTC") and frame["close"].to_list() == DAILY["close"].to_list()
    hourly = pl.DataFrame({"ts": ["2024-01-08 09:00", "2024-01-08 10:00", "2024-01-08 11:00"], "open": [1.0] * 3,
                           "high": [1.0] * 3, "low": [1.0] * 3, "close": [1.0] * 3, "volume": [1] * 3})
    (tmp_path / "1h").mkdir()
    hourly.write_parquet(tmp_path / "1h" / "SPX.parquet")
    day = FetchRequest("SPX", Timeframe.H1, dt.datetime(2024, 1, 8, tzinfo=UTC), dt.datetime(2024, 1, 9, tzinfo=UTC))
    at_eleven = FilesProvider(tmp_path, "America/New_York", clock=lambda: dt.datetime(2024, 1, 8, 11, tzinfo=new_york))
    assert at_eleven.fetch(day).height == 2  # 09:00 and 10:00 have ended, 11:00 has not
