"""Binance klines against the fake exchange: page boundaries, pathological pages, finality, history."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from jutsu_fake_exchange import FakeExchange, Fault
from jutsu_fake_exchange.testing import provider_options
from jutsu_pipeline.providers import build_provider
from jutsu_pipeline.providers.base import CANONICAL_SCHEMA, FetchRequest
from jutsu_pipeline.timeframes import Timeframe

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)


def provider(fx: FakeExchange, **options):  # noqa: ANN003, ANN201
    return build_provider("binance", provider_options(fx, "binance", **options), "UTC", Path)


def minutes(n: int, symbol: str = "BTCUSDT") -> FetchRequest:
    return FetchRequest(symbol, Timeframe.M1, T0, T0 + dt.timedelta(minutes=n))


@pytest.mark.parametrize(("bars", "pages"), [(999, 1), (1000, 1), (1001, 2), (2000, 2), (2001, 3)])
def test_pagination_across_exact_page_boundaries(fx: FakeExchange, bars: int, pages: int) -> None:
    p = provider(fx)
    frame = p.fetch(minutes(bars))
    assert frame.height == bars
    assert frame["ts"].is_sorted() and frame["ts"].n_unique() == bars
    assert frame["ts"][0] == T0 and frame["ts"][-1] == T0 + dt.timedelta(minutes=bars - 1)
    assert p.stats.requests == pages == fx.count("binance")
    starts = [int(r.params["startTime"]) for r in fx.requests("binance")]
    assert starts == [int((T0 + dt.timedelta(minutes=1000 * i)).timestamp() * 1000) for i in range(pages)]


def test_canonical_schema_and_ohlc_invariants(fx: FakeExchange) -> None:
    frame = provider(fx).fetch(FetchRequest("ETH/USDT", Timeframe.H1, T0, T0 + dt.timedelta(days=3)))
    assert dict(frame.schema) == CANONICAL_SCHEMA
    assert frame.height == 72
    assert frame.filter((pl.col("high") < pl.max_horizontal("open", "close"))
                        | (pl.col("low") > pl.min_horizontal("open", "close"))).is_empty()


@pytest.mark.parametrize("kind", ["duplicate_boundary", "descending", "outside_range"])
def test_pathological_pages_are_normalised(fx: FakeExchange, kind: str) -> None:
    clean = provider(fx, page_limit=100).fetch(minutes(450))
    fx.faults.always("binance", Fault.data(kind))
    messy = provider(fx, page_limit=100).fetch(minutes(450))
    assert messy.equals(clean)


def test_forming_bar_is_never_returned(fx: FakeExchange) -> None:
    fx.clock.set(dt.datetime(2024, 3, 1, 12, 30, 30, tzinfo=UTC))
    fx.faults.always("binance", Fault.data("forming_jitter"))
    request = FetchRequest("BTCUSDT", Timeframe.M1, dt.datetime(2024, 3, 1, 12, tzinfo=UTC),
                           dt.datetime(2024, 3, 1, 13, tzinfo=UTC))
    p = provider(fx)
    first, second = p.fetch(request), p.fetch(request)
    assert first.height == 30 and first["ts"][-1] == dt.datetime(2024, 3, 1, 12, 29, tzinfo=UTC)
    assert first.equals(second)
    served = fx.requests("binance")[0]
    assert served.status == 200  # the exchange did serve the forming 12:30 bar; the provider dropped it


def test_daily_bars_keyed_by_date_and_today_is_not_final(fx: FakeExchange) -> None:
    fx.clock.set(dt.datetime(2024, 3, 1, 12, tzinfo=UTC))
    frame = provider(fx).fetch(FetchRequest("BTCUSDT", Timeframe.D1, dt.datetime(2024, 2, 25, tzinfo=UTC),
                                            dt.datetime(2024, 3, 5, tzinfo=UTC)))
    assert frame["ts"].to_list() == [dt.datetime(2024, 2, d, tzinfo=UTC) for d in range(25, 30)]


def test_window_in_the_future_makes_no_request(fx: FakeExchange) -> None:
    fx.clock.set(dt.datetime(2024, 3, 1, tzinfo=UTC))
    p = provider(fx)
    p.fetch(minutes(10))  # learns the exchange clock
    frame = p.fetch(FetchRequest("BTCUSDT", Timeframe.M1, dt.datetime(2024, 3, 2, tzinfo=UTC),
                                 dt.datetime(2024, 3, 3, tzinfo=UTC)))
    assert frame.is_empty() and fx.count("binance") == 1


def test_history_reports_listing(fx: FakeExchange) -> None:
    history = provider(fx).history("BTC/USDT", Timeframe.D1)
    assert history.first_ts == dt.datetime(2017, 8, 17, tzinfo=UTC)
    before_listing = provider(fx).fetch(FetchRequest("BTCUSDT", Timeframe.D1, dt.datetime(2017, 1, 1, tzinfo=UTC),
                                                     dt.datetime(2017, 8, 1, tzinfo=UTC)))
    assert before_listing.is_empty()


def test_usdm_futures_klines_page_by_1500_on_their_own_route(fx: FakeExchange) -> None:
    p = provider(fx, market="usdm_futures")
    frame = p.fetch(minutes(3001))
    spot = provider(fx).fetch(minutes(3001))
    assert frame.equals(spot)  # the fake serves the same bars on both markets
    assert fx.count("binance_futures") == p.stats.requests == 3 and fx.count("binance") == 4  # spot: 1000 a page
    assert [r.params["limit"] for r in fx.requests("binance_futures")] == ["1500"] * 3
    assert all(r.path == "/fapi/v1/klines" for r in fx.requests("binance_futures"))


def test_futures_market_is_a_typed_option(fx: FakeExchange) -> None:
    with pytest.raises(ValueError, match="'market'"):
        provider(fx, market="coinm_futures")
    with pytest.raises(ValueError, match="above the spot maximum of 1000"):
        provider(fx, page_limit=1500)
    with pytest.raises(ValueError, match="unknown option 'page_limt'"):
        provider(fx, page_limt=10)
