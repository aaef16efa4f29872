"""Schwab price history and OAuth against the fake exchange: window chunks, refresh, re-authorisation."""

from __future__ import annotations

import datetime as dt
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jutsu_fake_exchange import FakeExchange
from jutsu_fake_exchange.testing import credential_env, provider_options, seed_schwab_tokens
from jutsu_pipeline.providers import build_provider, schwab
from jutsu_pipeline.providers.base import FetchRequest
from jutsu_pipeline.providers.http import AuthExpired
from jutsu_pipeline.timeframes import Timeframe

UTC = dt.timezone.utc
JAN = FetchRequest("AAPL", Timeframe.D1, dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 2, 1, tzinfo=UTC))


@pytest.fixture
def fx(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeExchange]:
    with FakeExchange() as exchange:
        for name, value in credential_env(exchange, tmp_path / "schwab" / "tokens.json").items():
            monkeypatch.setenv(name, value)
        yield exchange


def token_file(tmp_path: Path) -> Path:
    return tmp_path / "schwab" / "tokens.json"


def provider(fx: FakeExchange, **options):  # noqa: ANN003, ANN201
    return build_provider("schwab", provider_options(fx, "schwab", **options), "America/New_York", Path)


def test_daily_bars_keyed_by_session_date(fx: FakeExchange, tmp_path: Path) -> None:
    seed_schwab_tokens(fx, token_file(tmp_path))
    frame = provider(fx).fetch(JAN)
    assert frame.height == 21 and frame["ts"][0] == dt.datetime(2024, 1, 2, tzinfo=UTC)
    assert fx.count("schwab_token") == 0


def test_windows_are_chunked_by_the_caps(fx: FakeExchange, tmp_path: Path) -> None:
    seed_schwab_tokens(fx, token_file(tmp_path))
    request = FetchRequest("MSFT", Timeframe.M1, dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 4, 10, tzinfo=UTC))
    frame = provider(fx).fetch(request)  # 100 days of 1m bars: 48-day caps -> 3 windows
    # Distinct windows, not requests: a connection reset on a loaded machine is retried (same window).
    windows = {(r.params["startDate"], r.params["endDate"]) for r in fx.requests("schwab")}
    assert len(windows) == 3 and fx.count("schwab", 400) == 0
    assert frame["ts"].n_unique() == frame.height == 68 * 390  # 68 XNYS sessions of 390 minutes


def test_access_token_refreshed_before_expiry(fx: FakeExchange, tmp_path: Path) -> None:
    old = seed_schwab_tokens(fx, token_file(tmp_path), access_valid_for=60)  # inside the 300 s leeway
    provider(fx).fetch(JAN)
    assert [r.route for r in fx.requests()] == ["schwab_token", "schwab"]
    saved = json.loads(token_file(tmp_path).read_text())
    assert saved["access_token"] != old.access_token.reveal()
    assert saved["refresh_token"] == old.refresh_token.reveal()
    assert stat.S_IMODE(token_file(tmp_path).stat().st_mode) == 0o600


def test_401_refreshes_once_then_succeeds(fx: FakeExchange, tmp_path: Path) -> None:
    seed_schwab_tokens(fx, token_file(tmp_path))
    fx.schwab.revoke_access_tokens()
    frame = provider(fx).fetch(JAN)
    assert frame.height == 21
    assert [(r.route, r.status) for r in fx.requests()] == [("schwab", 401), ("schwab_token", 200), ("schwab", 200)]


def test_expired_refresh_token_is_actionable(fx: FakeExchange, tmp_path: Path) -> None:
    tokens = seed_schwab_tokens(fx, token_file(tmp_path))
    fx.schwab.revoke_access_tokens()
    fx.schwab.expire_refresh_tokens()
    with pytest.raises(AuthExpired) as error:
        provider(fx).fetch(JAN)
    message = str(error.value)
    assert "schwab AAPL 1d window [2024-01-01T00:00:00Z, 2024-02-01T00:00:00Z) (token refresh)" in message
    assert "7 days" in message
    assert "python -m jutsu_pipeline.providers.schwab authorize" in message
    assert tokens.refresh_token.reveal() not in message and tokens.access_token.reveal() not in message
    assert fx.count("schwab_token") == 1  # not retried


def test_refresh_token_known_expired_locally_fails_without_calling(fx: FakeExchange, tmp_path: Path) -> None:
    seed_schwab_tokens(fx, token_file(tmp_path), access_valid_for=0, refresh_valid_for=-1)
    with pytest.raises(AuthExpired, match="the refresh token expired at .*authorize-url"):
        provider(fx).fetch(JAN)
    assert fx.count() == 0


def test_missing_token_file_says_how_to_authorise(fx: FakeExchange) -> None:
    with pytest.raises(AuthExpired, match="no token file at .*authorize --redirect-url"):
        provider(fx).fetch(JAN)


def test_authorize_command_exchanges_the_redirect_code(fx: FakeExchange, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert schwab.main(["authorize-url", "--base-url", fx.url]) == 0
    url = capsys.readouterr().out.strip()
    redirect = httpx.get(url).headers["location"]  # the fake logs in and redirects with ?code=...
    assert redirect.startswith("https://127.0.0.1?code=")
    assert schwab.main(["authorize", "--redirect-url", redirect, "--base-url", fx.url]) == 0
    out = capsys.readouterr().out
    assert "tokens saved to" in out
    assert stat.S_IMODE(token_file(tmp_path).stat().st_mode) == 0o600
    saved = json.loads(token_file(tmp_path).read_text())
    assert saved["access_token"] not in out and saved["refresh_token"] not in out
    assert provider(fx).fetch(JAN).height == 21
    assert schwab.main(["authorize", "--redirect-url", redirect, "--base-url", fx.url]) == 2  # code used up
    err = capsys.readouterr().err
    assert "refused the authorisation code" in err and "refresh token" not in err  # the code, not a refresh
    assert "authorize-url" in err and "--redirect-url" in err
