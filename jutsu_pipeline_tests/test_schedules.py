"""Market-close schedules, ticked at controlled times: one range run per market × timeframe, holidays skip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from jutsu_pipeline.config import load_config
from jutsu_pipeline.definitions import build_definitions
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, write_config

NY = ZoneInfo("America/New_York")
UTC = dt.timezone.utc
STOCKS = {**SAMPLE_MARKET, "timeframes": ["1h", "1d"], "start": "2012-01-03", "symbols": ["AAPL", "FB", "GOOG"]}
STOCKS.pop("end")  # open-ended: the date partitions of every tick below exist
CRYPTO = {**SAMPLE_MARKET, "calendar": "24/7", "timeframes": ["1h", "1d"], "start": "2024-01-01",
          "symbols": ["BTC/USDT", "ETH/USDT"]}
CRYPTO.pop("end")


@pytest.fixture(scope="module")
def defs(tmp_path_factory: pytest.TempPathFactory) -> dg.Definitions:
    folder: Path = tmp_path_factory.mktemp("schedules")
    return build_definitions(load_config(write_config(folder, {"us_stocks": STOCKS, "crypto": CRYPTO})))


@pytest.fixture
def instance(persistent_instance):  # noqa: ANN001, ANN201 - partition status needs an on-disk instance
    return persistent_instance


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, name: str, when: dt.datetime):
    schedule = defs.get_repository_def().get_schedule_def(name)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when) as context:
        return schedule.evaluate_tick(context)


def _ranges(defs, instance, when: dt.datetime) -> dict[str, tuple[str, str, str | None]]:
    """{timeframe: (range start, range end, run key)} of the close schedules' ticks at `when`."""
    out = {}
    for tf in ("1h", "1d"):
        data = _tick(defs, instance, f"us_stocks_bars_{tf}_at_close", when)
        assert data.skip_message is None, data.skip_message
        [request] = data.run_requests
        out[tf] = (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG], request.run_key)
    return out


def test_close_schedule_definition(defs) -> None:
    schedule = defs.get_repository_def().get_schedule_def("us_stocks_bars_1d_at_close")
    assert schedule.cron_schedule == "15 16 * * 1-5"  # regular close 16:00 + 15 min, weekdays
    assert schedule.execution_timezone == "America/New_York"
    assert schedule.job_name == "sync_us_stocks_bars_1d"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


@pytest.mark.parametrize("when, day", [
    (dt.datetime(2012, 7, 5, 16, 15, tzinfo=NY), "2012-07-05"),  # a normal Thursday
    (dt.datetime(2012, 11, 23, 16, 15, tzinfo=NY), "2012-11-23"),  # early close (13:00): still runs
    (dt.datetime(2012, 3, 12, 20, 15, tzinfo=UTC), "2012-03-12"),  # Monday after DST starts: 16:15 EDT
    (dt.datetime(2012, 11, 5, 21, 15, tzinfo=UTC), "2012-11-05"),  # Monday after DST ends: 16:15 EST
])
def test_close_tick_requests_one_range_per_timeframe(defs, instance, when: dt.datetime, day: str) -> None:
    month = day[:8] + "01"
    assert _ranges(defs, instance, when) == {
        "1h": (f"{day}|AAPL", f"{day}|GOOG", f"sync_us_stocks_bars_1h:{day}"),
        "1d": (f"{month}|AAPL", f"{month}|GOOG", f"sync_us_stocks_bars_1d:{day}"),
    }


@pytest.mark.parametrize("when, reason", [
    (dt.datetime(2012, 7, 4, 16, 15, tzinfo=NY), "2012-07-04 (Wednesday) is not a XNYS session"),
    (dt.datetime(2012, 7, 7, 16, 15, tzinfo=NY), "2012-07-07 (Saturday) is not a XNYS session"),
])
def test_holidays_and_weekends_skip_with_a_reason(defs, instance, when: dt.datetime, reason: str) -> None:
    for tf in ("1h", "1d"):
        data = _tick(defs, instance, f"us_stocks_bars_{tf}_at_close", when)
        assert not data.run_requests
        assert data.skip_message.startswith(reason)


def test_before_history_skips(defs, instance) -> None:
    data = _tick(defs, instance, "us_stocks_bars_1d_at_close", dt.datetime(2011, 12, 30, 16, 15, tzinfo=NY))
    assert "outside the market's history" in data.skip_message


def test_always_open_market_daily_and_refresh(defs, instance) -> None:
    repo = defs.get_repository_def()
    assert {s.name for s in repo.schedule_defs if s.name.startswith("crypto")} == {
        "crypto_bars_1h_daily", "crypto_bars_1h_refresh", "crypto_bars_1d_daily"}
    assert repo.get_schedule_def("crypto_bars_1h_refresh").cron_schedule == "*/5 * * * *"  # 24/7 default
    # Just after midnight: the day that ended and the one that began (both still recent), one rectangle.
    daily = _tick(defs, instance, "crypto_bars_1h_daily", dt.datetime(2024, 3, 10, 0, 15, tzinfo=UTC))
    assert [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in daily.run_requests] == [
        ("2024-03-09|BTC/USDT", "2024-03-10|ETH/USDT")]
    monthly = _tick(defs, instance, "crypto_bars_1d_daily", dt.datetime(2024, 3, 1, 0, 15, tzinfo=UTC))
    assert [r.tags[RANGE_START_TAG] for r in monthly.run_requests] == ["2024-02-01|BTC/USDT"]  # February just ended
    refresh = _tick(defs, instance, "crypto_bars_1h_refresh", dt.datetime(2024, 3, 10, 13, 15, tzinfo=UTC))
    assert [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG], r.run_key) for r in refresh.run_requests] == [
        ("2024-03-10|BTC/USDT", "2024-03-10|ETH/USDT", "sync_crypto_bars_1h:2024-03-10T13:15")]


def test_exchange_refresh_runs_every_n_minutes_during_the_session(defs, instance) -> None:
    schedule = defs.get_repository_def().get_schedule_def("us_stocks_bars_1h_refresh")
    assert schedule.cron_schedule == "*/15 9-16 * * 1-5" and schedule.execution_timezone == "America/New_York"
    before_open = _tick(defs, instance, "us_stocks_bars_1h_refresh", dt.datetime(2012, 7, 5, 9, 15, tzinfo=NY))
    assert "outside the session" in before_open.skip_message
    during = _tick(defs, instance, "us_stocks_bars_1h_refresh", dt.datetime(2012, 7, 5, 11, 0, tzinfo=NY))
    assert [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in during.run_requests] == [
        ("2012-07-05|AAPL", "2012-07-05|GOOG")]


def test_schedules_can_be_turned_off(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {"us_stocks": {**STOCKS, "automation": {
        "schedule": False, "offset_minutes": 75}}}))
    schedule = build_definitions(config).get_repository_def().get_schedule_def("us_stocks_bars_1d_at_close")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.cron_schedule == "15 17 * * 1-5"
