"""The fake exchange itself: protocols, limits, faults and the request log, over real sockets."""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import subprocess
import sys
import time

import httpx
import pytest

from jutsu_fake_exchange import FakeExchange, Fault

UTC = dt.timezone.utc
T0_MS = int(dt.datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


_CLIENT = httpx.Client()  # one pooled client: a new one per request costs ~0.1 s of TLS setup


def klines(fx: FakeExchange, **params: object) -> httpx.Response:
    query = {"symbol": "BTCUSDT", "interval": "1m", "startTime": T0_MS, "limit": 5, **params}
    return _CLIENT.get(f"{fx.url}/api/v3/klines", params=query)


def test_binance_klines_are_deterministic_and_valid(fx: FakeExchange) -> None:
    first, second = klines(fx).json(), klines(fx).json()
    assert first == second and len(first) == 5
    assert [row[0] for row in first] == [T0_MS + 60_000 * i for i in range(5)]
    for row in first:
        o, h, low, c = (float(v) for v in row[1:5])
        assert low <= min(o, c) <= max(o, c) <= h and float(row[5]) > 0
        assert row[6] == row[0] + 59_999
    with FakeExchange(seed=8) as other:
        assert klines(other).json() != first


def test_binance_errors_and_weight_header(fx: FakeExchange) -> None:
    response = klines(fx, symbol="NOPE")
    assert response.status_code == 400 and response.json()["code"] == -1121
    assert klines(fx, limit=1001).status_code == 400
    assert int(klines(fx).headers["x-mbx-used-weight-1m"]) >= 2


def test_clock_controls_date_header_and_forming_bar(fx: FakeExchange) -> None:
    fx.clock.set(dt.datetime(2024, 1, 1, 0, 4, 30, tzinfo=UTC))
    response = klines(fx, limit=10)
    assert email.utils.parsedate_to_datetime(response.headers["date"]) == dt.datetime(2024, 1, 1, 0, 4, 30, tzinfo=UTC)
    rows = response.json()
    assert len(rows) == 5 and rows[-1][6] > T0_MS + 270_000  # the 00:04 bar is still forming
    fx.clock.advance(dt.timedelta(seconds=20))
    assert klines(fx, limit=10).json()[-1][4] != rows[-1][4]  # its close moves with the clock


def test_own_rate_limit_answers_429(fx: FakeExchange) -> None:
    fx.set_rate_limit(3)
    with httpx.Client() as client:
        query = {"symbol": "BTCUSDT", "interval": "1m", "limit": 5}
        statuses = [client.get(f"{fx.url}/api/v3/klines", params=query).status_code for _ in range(8)]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
    limited = next(r for r in fx.requests("binance") if r.status == 429)
    assert limited.path == "/api/v3/klines"


def test_scripted_status_faults_with_retry_after_forms(fx: FakeExchange) -> None:
    fx.faults.script("binance", Fault.rate_limited(2), Fault.rate_limited(2, http_date=True), Fault.banned(60))
    seconds, date, banned = klines(fx), klines(fx), klines(fx)
    assert seconds.status_code == 429 and seconds.headers["retry-after"] == "2"
    assert date.status_code == 429 and email.utils.parsedate_to_datetime(date.headers["retry-after"])
    assert banned.status_code == 418 and banned.headers["retry-after"] == "60"
    assert klines(fx).status_code == 200
    assert [r.faults for r in fx.requests()] == [("status",), ("status",), ("status",), ()]


def test_body_faults(fx: FakeExchange) -> None:
    fx.faults.script("binance", Fault.truncated_json(), Fault.html_200(), Fault.drop_mid_body())
    truncated = klines(fx)
    assert truncated.status_code == 200 and truncated.text.startswith("[[") and not truncated.text.endswith("]]")
    html = klines(fx)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    with pytest.raises(httpx.RemoteProtocolError):
        klines(fx)
    assert klines(fx).status_code == 200


def test_timing_faults(fx: FakeExchange) -> None:
    fx.faults.script("binance", Fault.slow_headers(0.6), Fault.stall_body(0.6))
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{fx.url}/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m"}, timeout=0.2)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{fx.url}/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m"}, timeout=0.2)


def test_latency_is_added(fx: FakeExchange) -> None:
    fx.latency = 0.05
    began = time.monotonic()
    klines(fx)
    assert time.monotonic() - began >= 0.05


def test_random_faults_are_reproducible() -> None:
    outcomes = []
    for _ in range(2):
        with FakeExchange() as exchange:
            exchange.faults.random("binance", 0.3, (Fault.server_error(503),), seed=11)
            outcomes.append([klines(exchange).status_code for _ in range(20)])
    assert outcomes[0] == outcomes[1] and 503 in outcomes[0] and 200 in outcomes[0]


def test_alpaca_cursor_and_auth(fx: FakeExchange) -> None:
    headers = {"APCA-API-KEY-ID": fx.alpaca_key_id, "APCA-API-SECRET-KEY": fx.alpaca_secret_key}
    params = {"symbols": "MSFT,AAPL", "timeframe": "1Day", "start": "2024-01-01", "end": "2024-01-31", "limit": 25}
    page = httpx.get(f"{fx.url}/v2/stocks/bars", params=params, headers=headers).json()
    assert len(page["bars"]["AAPL"]) == 20 and len(page["bars"]["MSFT"]) == 5  # symbol-major, limit across symbols
    rest = httpx.get(f"{fx.url}/v2/stocks/bars", params={**params, "page_token": page["next_page_token"]},
                     headers=headers).json()
    assert len(rest["bars"]["MSFT"]) == 15 and rest["next_page_token"] is None
    assert httpx.get(f"{fx.url}/v2/stocks/bars", params=params).status_code == 401


def test_schwab_window_caps_and_bearer(fx: FakeExchange) -> None:
    token = fx.schwab.issue_tokens()["access_token"]
    params = {"symbol": "AAPL", "frequencyType": "minute", "frequency": 1, "startDate": T0_MS,
              "endDate": T0_MS + 49 * 86_400_000}
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{fx.url}/marketdata/v1/pricehistory", params=params, headers=auth).status_code == 400
    params["endDate"] = T0_MS + 2 * 86_400_000
    assert httpx.get(f"{fx.url}/marketdata/v1/pricehistory", params=params).status_code == 401
    body = httpx.get(f"{fx.url}/marketdata/v1/pricehistory", params=params, headers=auth).json()
    assert body["symbol"] == "AAPL" and len(body["candles"]) == 390  # Jan 2 only


def test_yahoo_requires_cookie_and_crumb(fx: FakeExchange) -> None:
    with httpx.Client(base_url=fx.url) as client:
        params = {"period1": 1704067200, "period2": 1704931200, "interval": "1d"}
        assert client.get("/v8/finance/chart/AAPL", params=params).status_code == 401
        assert client.get("/fc").status_code == 404 and "A3" in client.cookies
        crumb = client.get("/v1/test/getcrumb").text
        chart = client.get("/v8/finance/chart/AAPL", params={**params, "crumb": crumb}).json()["chart"]["result"][0]
        assert len(chart["timestamp"]) == 7 and chart["meta"]["exchangeTimezoneName"] == "America/New_York"


def test_standalone_prints_base_urls() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([sys.executable, "-m", "jutsu_fake_exchange", "--port", "0"],
                               stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        lines = [process.stdout.readline() for _ in range(4)]
        assert first.startswith("fake exchange listening on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[-1].strip()
        assert any("binance" in line and url in line for line in lines)
        assert httpx.get(f"{url}/api/v3/time", timeout=60).status_code == 200  # generous: a busy CI machine
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # never leave it behind, but a slow exit is not what this tests
            process.kill()
            process.wait()
