"""Secrets never reach logs, exception text, repr or stdout — even with DEBUG logging and failures."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from jutsu_fake_exchange import FakeExchange, Fault
from jutsu_fake_exchange.testing import credential_env, provider_options, seed_schwab_tokens
from jutsu_pipeline.providers import build_provider
from jutsu_pipeline.providers.base import FetchRequest, ProviderError
from jutsu_pipeline.providers.http import Secret, redact
from jutsu_pipeline.timeframes import Timeframe

UTC = dt.timezone.utc
KEY_ID, SECRET_KEY = "AKTESTKEYID0123456789", "sEcReT-alpaca-0123456789abcdef"
CLIENT_ID, CLIENT_SECRET = "schwab-app-key-0123456789", "schwab-app-secret-0123456789"
JAN = FetchRequest("AAPL", Timeframe.D1, dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 2, 1, tzinfo=UTC))


@pytest.fixture
def fx(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeExchange]:
    with FakeExchange(alpaca_key_id=KEY_ID, alpaca_secret_key=SECRET_KEY, schwab_client_id=CLIENT_ID,
                      schwab_client_secret=CLIENT_SECRET) as exchange:
        for name, value in credential_env(exchange, tmp_path / "tokens.json").items():
            monkeypatch.setenv(name, value)
        yield exchange


def assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"secret leaked: {secret[:4]}…"


def test_secret_value_never_prints() -> None:
    secret = Secret("hunter2-very-secret")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret) and "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2-very-secret"
    assert redact("token=hunter2-very-secret&x=1") == "token=***&x=1"


def test_alpaca_keys_stay_out_of_logs_errors_and_repr(fx: FakeExchange, caplog: pytest.LogCaptureFixture,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    options = provider_options(fx, "alpaca", http={"max_attempts": 2})
    p = build_provider("alpaca", options, "America/New_York", Path)
    fx.faults.script("alpaca", Fault.server_error(503))
    p.fetch(JAN)
    errors: list[str] = []
    for bad in ({"delay_minutes": 0}, {}):
        if not bad:
            monkeypatch.setenv("APCA_API_SECRET_KEY", "another-wrong-secret-xyz")
        q = build_provider("alpaca", {**options, **bad}, "America/New_York", Path)
        now = dt.datetime.now(UTC)
        with pytest.raises(ProviderError) as error:
            q.fetch(FetchRequest("AAPL", Timeframe.M1, now - dt.timedelta(days=1), now))
        errors.append(f"{error.value} {error.value!r}")
    text = caplog.text + "".join(errors) + repr(p) + repr(p.__dict__) + "".join(capsys.readouterr())
    assert "HTTP Request" in caplog.text  # httpx did log (with URLs)
    assert_clean(text, [KEY_ID, SECRET_KEY, "another-wrong-secret-xyz"])


def test_schwab_tokens_stay_out_of_logs_and_errors(fx: FakeExchange, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = seed_schwab_tokens(fx, tmp_path / "tokens.json", access_valid_for=10)
    p = build_provider("schwab", provider_options(fx, "schwab"), "America/New_York", Path)
    p.fetch(JAN)  # refresh before expiry
    fx.schwab.revoke_access_tokens()
    p.fetch(JAN)  # 401 -> refresh -> retry
    fresh = (tmp_path / "tokens.json").read_text()
    fx.schwab.revoke_access_tokens()
    fx.schwab.expire_refresh_tokens()
    with pytest.raises(ProviderError) as error:
        p.fetch(JAN)
    text = caplog.text + f"{error.value} {error.value!r}" + repr(p) + repr(p.__dict__) + "".join(capsys.readouterr())
    import json

    saved = json.loads(fresh)
    assert_clean(text, [CLIENT_ID, CLIENT_SECRET, tokens.access_token.reveal(), tokens.refresh_token.reveal(),
                        saved["access_token"]])


def test_yahoo_crumb_in_query_is_masked_in_httpx_logs(fx: FakeExchange, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    p = build_provider("yahoo", provider_options(fx, "yahoo"), "America/New_York", Path)
    p.fetch(JAN)
    crumb = next(iter(fx.yahoo_sessions.values()))
    assert "crumb=***" in caplog.text
    assert_clean(caplog.text, [crumb])
