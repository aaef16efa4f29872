"""Alpaca bars against the fake exchange: cursor pagination, SIP delay, entitlement and auth errors."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest

from jutsu_fake_exchange import FakeExchange, Fault
from jutsu_fake_exchange.testing import provider_options
from jutsu_pipeline.providers import build_provider
from jutsu_pipeline.providers.base import FetchRequest, UnknownSymbolError
from jutsu_pipeline.providers.http import AuthExpired, NotEntitled
from jutsu_pipeline.timeframes import Timeframe

UTC = dt.timezone.utc
WEEK = FetchRequest("AAPL", Timeframe.M1, dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 1, 8, tzinfo=UTC))


def provider(fx: FakeExchange, **options):  # noqa: ANN003, ANN201
    return build_provider("alpaca", provider_options(fx, "alpaca", **options), "America/New_York", Path)


def test_cursor_pagination(fx: FakeExchange) -> None:
    p = provider(fx, page_limit=1000)
    frame = p.fetch(WEEK)
    assert frame.height == 4 * 390  # Jan 2-5 2024, 09:30-16:00 ET
    assert frame["ts"].is_sorted() and frame["ts"].n_unique() == frame.height
    logged = fx.requests("alpaca")
    assert len(logged) == 2 == p.stats.requests
    assert "page_token" not in logged[0].params
    assert base64.b64decode(logged[1].params["page_token"]).decode() == "AAPL|2024-01-04T18:09:00Z"


def test_duplicates_and_descending_pages_normalised(fx: FakeExchange) -> None:
    clean = provider(fx, page_limit=500).fetch(WEEK)
    fx.faults.always("alpaca", Fault.data("duplicate_boundary"))
    fx.faults.always("alpaca", Fault.data("descending"))
    assert provider(fx, page_limit=500).fetch(WEEK).equals(clean)


def test_daily_bars_keyed_by_session_date(fx: FakeExchange) -> None:
    frame = provider(fx).fetch(FetchRequest("MSFT", Timeframe.D1, dt.datetime(2024, 7, 1, tzinfo=UTC),
                                            dt.datetime(2024, 7, 8, tzinfo=UTC)))
    assert [d.day for d in frame["ts"].to_list()] == [1, 2, 3, 5]  # July 4th is a holiday


def test_sip_delay_keeps_the_last_15_minutes_out(fx: FakeExchange) -> None:
    now = dt.datetime.now(UTC)
    request = FetchRequest("SPY", Timeframe.M1, now - dt.timedelta(days=7), now)
    frame = provider(fx).fetch(request)  # default feed=sip, delay 15 min: never asks for recent SIP data
    after = dt.datetime.now(UTC)  # the provider's "now" lies between `now` and `after`, however slow the run
    assert fx.count("alpaca", 403) == 0
    if frame.height:
        assert frame["ts"].max() < after - dt.timedelta(minutes=15)


def test_recent_sip_without_delay_is_not_entitled(fx: FakeExchange) -> None:
    now = dt.datetime.now(UTC)
    with pytest.raises(NotEntitled) as error:
        provider(fx, delay_minutes=0).fetch(FetchRequest("SPY", Timeframe.M1, now - dt.timedelta(days=3), now))
    message = str(error.value)
    assert "alpaca SPY 1m window" in message and "options.feed: iex" in message
    assert fx.count("alpaca") == 1  # not retried


def test_iex_feed_has_no_delay(fx: FakeExchange) -> None:
    p = provider(fx, feed="iex")
    assert p.capabilities.delay == dt.timedelta(0)
    p.fetch(WEEK)
    assert fx.requests("alpaca")[0].params["feed"] == "iex"


def test_wrong_keys_raise_auth_error(fx: FakeExchange, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_SECRET_KEY", "wrong-secret-value")
    with pytest.raises(AuthExpired, match="APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        provider(fx).fetch(WEEK)


def test_missing_keys_name_the_variable(fx: FakeExchange, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID")
    with pytest.raises(AuthExpired, match="export APCA_API_KEY_ID"):
        provider(fx)
    monkeypatch.setenv("MY_KEY", fx.alpaca_key_id)
    assert provider(fx, key_id_env="MY_KEY").fetch(WEEK).height == 1560


def test_history_and_unknown_symbol(fx: FakeExchange) -> None:
    p = provider(fx)
    assert p.history("NEWCO", Timeframe.D1).first_ts == dt.datetime(2024, 6, 3, tzinfo=UTC)
    with pytest.raises(UnknownSymbolError, match="no 1d bars at all"):
        p.history("ZZZZ", Timeframe.D1)
