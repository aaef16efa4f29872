"""The shared HTTP layer over real sockets: retries, Retry-After, timeouts, breaker, rate limits."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from jutsu_fake_exchange import TRANSIENT_MIX, FakeExchange, Fault
from jutsu_fake_exchange.testing import provider_options
from jutsu_pipeline.providers import build_provider
from jutsu_pipeline.providers.base import FetchRequest, UnknownSymbolError
from jutsu_pipeline.providers.http import (
    Banned,
    CircuitBreaker,
    CircuitOpen,
    MalformedPayload,
    RateLimited,
    RequestRejected,
    TokenBucket,
    TransientServerError,
    parse_retry_after,
)
from jutsu_pipeline.timeframes import Timeframe

UTC = dt.timezone.utc
DAY = dt.datetime(2024, 1, 1, tzinfo=UTC)
WINDOW = FetchRequest("BTCUSDT", Timeframe.M1, DAY, DAY + dt.timedelta(minutes=100))


def binance(fx: FakeExchange, **http: float):  # noqa: ANN201
    return build_provider("binance", provider_options(fx, "binance", http=http, page_limit=10), "UTC", Path)


class ManualClock:
    """A clock that moves only when slept on or advanced: limiter and breaker timing without wall time."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_retry_after_seconds_is_waited(fx: FakeExchange) -> None:
    fx.faults.script("binance", Fault.rate_limited(1.0))
    provider = binance(fx)
    began = time.monotonic()
    frame = provider.fetch(FetchRequest("BTCUSDT", Timeframe.M1, DAY, DAY + dt.timedelta(minutes=5)))
    assert frame.height == 5
    assert provider.stats.extra["retry_wait_ms"] == 1000  # exactly Retry-After, no backoff on top
    assert time.monotonic() - began >= 1.0  # and it was slept
    assert [r.status for r in fx.requests("binance")] == [429, 200]


def test_retry_after_http_date_is_waited(fx: FakeExchange) -> None:
    fx.faults.script("binance", Fault.rate_limited(1.0, http_date=True))
    provider = binance(fx)
    fx.clock.set(fx.clock.now_dt().replace(microsecond=0))  # frozen on a whole second: Date and Retry-After agree
    provider.fetch(FetchRequest("BTCUSDT", Timeframe.M1, DAY, DAY + dt.timedelta(minutes=5)))
    assert provider.stats.extra["retry_wait_ms"] == 1000  # the HTTP date, 1 s after the Date header
    assert fx.count("binance") == 2


def test_parse_retry_after_forms() -> None:
    now = dt.datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after("Mon, 01 Jan 2024 12:00:05 GMT", now) == 5.0
    assert parse_retry_after("Mon, 01 Jan 2024 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


def test_retry_after_beyond_cap_raises_without_waiting(fx: FakeExchange) -> None:
    fx.faults.script("binance", Fault.banned(600))
    provider = binance(fx)
    with pytest.raises(Banned) as error:
        provider.fetch(WINDOW)
    assert "retries" not in provider.stats.extra  # raised at once: no retry, no wait
    assert fx.count("binance") == 1
    message = str(error.value)
    assert "binance BTCUSDT 1m window [2024-01-01T00:00:00Z, 2024-01-01T01:40:00Z)" in message
    assert "418" in message and "re-run after 600 s" in message


def test_other_4xx_are_not_retried(fx: FakeExchange) -> None:
    fx.faults.script("binance", Fault.http_status(404, body='{"code":-1,"msg":"nope"}'))
    with pytest.raises(RequestRejected, match="HTTP 404"):
        binance(fx).fetch(WINDOW)
    assert fx.count("binance") == 1
    with pytest.raises(UnknownSymbolError, match="does not know this symbol"):
        binance(fx).fetch(FetchRequest("NOPEUSDT", Timeframe.M1, DAY, DAY + dt.timedelta(minutes=5)))
    assert fx.count("binance") == 2


@pytest.mark.parametrize("fault", [Fault.server_error(500), Fault.server_error(502), Fault.server_error(504),
                                   Fault.drop_mid_body(), Fault.truncated_json(), Fault.html_200(),
                                   Fault.slow_headers(2.5), Fault.stall_body(2.5)],
                         ids=lambda f: f"{f.kind}-{f.status}")
def test_transient_faults_are_retried_to_the_same_result(fx: FakeExchange, fault: Fault) -> None:
    clean = binance(fx).fetch(WINDOW)
    fx.faults.script("binance", Fault.ok(), fault)  # page 2 of 10 misbehaves once
    provider = binance(fx, read_timeout=1.0)
    assert provider.fetch(WINDOW).equals(clean)
    # At least that one retry; a loaded machine may time out a healthy page too, which is retried alike.
    retries = provider.stats.extra["retries"]
    assert retries >= 1 and provider.stats.requests == 10 + retries


def test_persistent_5xx_raises_and_returns_nothing(fx: FakeExchange) -> None:
    fx.faults.script("binance", Fault.ok(), *[Fault.server_error(503)] * 5)  # page 1 fine, page 2 always fails
    provider = binance(fx)
    with pytest.raises(TransientServerError) as error:
        provider.fetch(WINDOW)
    assert "server error HTTP 503" in str(error.value) and "retry later" in str(error.value)
    assert "BTCUSDT" in str(error.value) and "2024-01-01T00:00:00Z" in str(error.value)
    assert provider.stats.bars == 0
    assert fx.count("binance") == 6  # 1 good page + 5 attempts


def test_persistent_html_raises_malformed_payload(fx: FakeExchange) -> None:
    fx.faults.always("binance", Fault.html_200())
    with pytest.raises(MalformedPayload, match="got HTML instead of JSON"):
        binance(fx, max_attempts=2).fetch(WINDOW)


def test_breaker_opens_fails_fast_and_recovers(fx: FakeExchange) -> None:
    fx.faults.always("binance", Fault.server_error(503))
    provider = binance(fx)
    clock = ManualClock()
    provider.client.breaker = CircuitBreaker(5, 0.6, clock=clock)
    with pytest.raises(TransientServerError):
        provider.fetch(WINDOW)
    assert fx.count("binance") == 5
    with pytest.raises(CircuitOpen, match="circuit breaker open after 5 consecutive failures") as error:
        provider.fetch(WINDOW)
    assert fx.count("binance") == 5  # failed fast, no request
    assert "re-run the failed partitions later" in str(error.value)
    assert provider.client.breaker.state == "open"
    fx.faults.clear()
    clock.sleep(0.65)
    assert provider.client.breaker.state == "half-open"
    assert provider.fetch(WINDOW).height == 100
    assert provider.client.breaker.state == "closed"


def test_half_open_trial_failure_reopens(fx: FakeExchange) -> None:
    fx.faults.always("binance", Fault.server_error(500))
    provider = binance(fx, max_attempts=5)
    clock = ManualClock()
    provider.client.breaker = CircuitBreaker(5, 0.3, clock=clock)
    with pytest.raises(TransientServerError):
        provider.fetch(WINDOW)
    clock.sleep(0.35)
    with pytest.raises(CircuitOpen):  # the trial fails, the breaker re-opens, the retry fails fast
        provider.fetch(WINDOW)
    assert fx.count("binance") == 6


def test_rate_limiter_stays_under_the_exchange_limit(fx: FakeExchange) -> None:
    fx.set_rate_limit(20)
    provider = binance(fx, requests_per_second=20, burst=1)
    began = time.monotonic()
    provider.fetch(FetchRequest("BTCUSDT", Timeframe.M1, DAY, DAY + dt.timedelta(minutes=300)))  # 30 pages
    elapsed = time.monotonic() - began
    assert fx.count("binance") == 30 and fx.count("binance", 429) == 0
    assert elapsed >= 29 / 20 * 0.95


def test_without_the_limiter_the_exchange_answers_429(fx: FakeExchange) -> None:
    fx.set_rate_limit(5)
    fx.rate_limit_retry_after = 0.2
    provider = binance(fx)  # 1000 requests/s allowed client-side
    frame = provider.fetch(FetchRequest("BTCUSDT", Timeframe.M1, DAY, DAY + dt.timedelta(minutes=120)))
    assert frame.height == 120  # 429s were retried after Retry-After
    assert fx.count("binance", 429) >= 1


def test_used_weight_header_throttles(fx: FakeExchange) -> None:
    provider = binance(fx, weight_per_minute=600)  # budget 540 weight, refilled 9/s
    clock = ManualClock()
    provider.client.weight_limiter = limiter = TokenBucket(9.0, 540.0, clock=clock, sleep=clock.sleep)
    fx.clock.set(fx.clock.now_dt())  # frozen: the exchange's weight minute cannot roll over mid-test
    fx.set_used_weight(535)
    provider.fetch(FetchRequest("BTCUSDT", Timeframe.M1, DAY, DAY + dt.timedelta(minutes=5)))  # header: 537 used
    assert limiter.acquire(2) == 0.0  # 3 of the budget left
    assert limiter.acquire(2) == pytest.approx(1 / 9)  # 1 short: waits for one token at 9/s


def test_random_transient_faults_give_identical_frames(fx: FakeExchange) -> None:
    clean = binance(fx).fetch(WINDOW)
    fx.faults.random("binance", 0.2, TRANSIENT_MIX, seed=3)
    faulty = binance(fx, max_attempts=8, breaker_threshold=50).fetch(WINDOW)
    assert faulty.equals(clean)
    assert any(r.faults for r in fx.requests("binance"))


def test_rate_limited_error_is_raised_after_attempts(fx: FakeExchange) -> None:
    fx.faults.always("binance", Fault.rate_limited(0.01))
    with pytest.raises(RateLimited, match="rate limited this client"):
        binance(fx, max_attempts=3).fetch(WINDOW)
    assert fx.count("binance") == 3
