"""Yahoo chart v8 (experimental) against the fake exchange: crumb, nulls, malformed arrays, live rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from jutsu_fake_exchange import FakeExchange, Fault
from jutsu_fake_exchange.testing import provider_options
from jutsu_pipeline.providers import build_provider
from jutsu_pipeline.providers.base import FetchRequest, UnknownSymbolError
from jutsu_pipeline.providers.http import MalformedPayload
from jutsu_pipeline.timeframes import Timeframe

UTC = dt.timezone.utc
JAN = FetchRequest("AAPL", Timeframe.D1, dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 2, 1, tzinfo=UTC))


def provider(fx: FakeExchange, **options):  # noqa: ANN003, ANN201
    return build_provider("yahoo", provider_options(fx, "yahoo", **options), "America/New_York", Path)


def test_cookie_crumb_then_daily_bars_with_adj_close(fx: FakeExchange) -> None:
    frame = provider(fx).fetch(JAN)
    assert [r.route for r in fx.requests()] == ["yahoo_cookie", "yahoo_crumb", "yahoo"]
    assert frame.height == 21 and frame["ts"][0] == dt.datetime(2024, 1, 2, tzinfo=UTC)
    assert frame["adj_close"].null_count() == 0


def test_nulls_inside_arrays_are_dropped(fx: FakeExchange) -> None:
    clean = provider(fx).fetch(JAN)
    fx.faults.always("yahoo", Fault.data("nulls"))
    holey = provider(fx).fetch(JAN)
    assert holey.height == 21 - 4  # rows 1, 6, 11, 16 of the 21 sessions are null
    assert holey.null_count().sum_horizontal().item() == 0
    assert holey.join(clean, on="ts", how="anti").is_empty()


def test_invalid_crumb_is_renewed_once(fx: FakeExchange) -> None:
    p = provider(fx)
    p.fetch(JAN)
    fx.yahoo_sessions.clear()  # Yahoo forgets the session: "Invalid Crumb"
    assert p.fetch(JAN).height == 21
    assert [(r.route, r.status) for r in fx.requests()][3:] == [
        ("yahoo", 401), ("yahoo_cookie", 404), ("yahoo_crumb", 200), ("yahoo", 200)]


def test_mismatched_arrays_are_malformed(fx: FakeExchange) -> None:
    fx.faults.always("yahoo", Fault.data("mismatched_arrays"))
    with pytest.raises(MalformedPayload, match="arrays of different lengths"):
        provider(fx).fetch(JAN)
    assert fx.count("yahoo") == 1


def test_live_row_and_rows_after_period2_are_dropped(fx: FakeExchange) -> None:
    fx.clock.set(dt.datetime(2024, 1, 10, 17, 0, tzinfo=UTC))  # mid-session
    fx.faults.always("yahoo", Fault.data("outside_range"))
    frame = provider(fx).fetch(FetchRequest("AAPL", Timeframe.M5, dt.datetime(2024, 1, 10, tzinfo=UTC),
                                            dt.datetime(2024, 1, 11, tzinfo=UTC)))
    assert frame["ts"][-1] == dt.datetime(2024, 1, 10, 16, 55, tzinfo=UTC)
    assert frame.filter(pl.col("ts") >= dt.datetime(2024, 1, 10, 17, tzinfo=UTC)).is_empty()


def test_one_minute_windows_are_chunked(fx: FakeExchange) -> None:
    provider(fx).fetch(FetchRequest("AAPL", Timeframe.M1, dt.datetime(2024, 1, 1, tzinfo=UTC),
                                    dt.datetime(2024, 1, 20, tzinfo=UTC)))
    assert fx.count("yahoo") == 3 and fx.count("yahoo", 422) == 0


def test_unknown_symbol_and_history(fx: FakeExchange) -> None:
    p = provider(fx)
    with pytest.raises(UnknownSymbolError, match="Yahoo has no data for this symbol"):
        p.fetch(FetchRequest("NOPE", Timeframe.D1, JAN.start, JAN.end))
    assert p.history("NEWCO", Timeframe.D1).first_ts == dt.datetime(2024, 6, 3, tzinfo=UTC)
