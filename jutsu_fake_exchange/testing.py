"""Helpers to point providers at a FakeExchange (used by tests, benchmarks and `python -m`)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from jutsu_fake_exchange.server import FakeExchange
from jutsu_pipeline.providers.http.oauth import TokenFile, Tokens

# Short timeouts and backoff so fault tests run in milliseconds; no client-side throttling by default.
# Fast retries, but timeouts that a loaded machine never hits by accident: tests of timeouts set their own.
FAST_HTTP: dict[str, Any] = {
    "connect_timeout": 30.0, "read_timeout": 60.0, "write_timeout": 30.0, "pool_timeout": 30.0, "deadline": 120.0,
    "backoff_initial": 0.01, "backoff_max": 0.05, "backoff_jitter": 0.01, "retry_after_max": 5.0,
    "requests_per_second": 1000.0, "burst": 1000.0, "breaker_cooldown": 0.5,
}


def provider_options(fx: FakeExchange, provider: str, http: dict[str, Any] | None = None, **extra: Any) -> dict:
    """`options:` for `provider` talking to `fx` (base URLs, and FAST_HTTP overridden by `http`)."""
    urls = fx.base_urls()
    options: dict[str, Any] = {"base_url": urls[provider], "http": {**FAST_HTTP, **(http or {})}}
    if provider == "yahoo":
        options["cookie_url"] = urls["yahoo_cookie_url"]
    return {**options, **extra}


def credential_env(fx: FakeExchange, token_file: Path) -> dict[str, str]:
    """Environment variables the Alpaca and Schwab providers read, with the fake's credentials."""
    return {"APCA_API_KEY_ID": fx.alpaca_key_id, "APCA_API_SECRET_KEY": fx.alpaca_secret_key,
            "SCHWAB_CLIENT_ID": fx.schwab.client_id, "SCHWAB_CLIENT_SECRET": fx.schwab.client_secret,
            "SCHWAB_TOKEN_FILE": str(token_file)}


def seed_schwab_tokens(fx: FakeExchange, token_file: Path, *, access_valid_for: float = 1800.0,
                       refresh_valid_for: float = 7 * 86400.0) -> Tokens:
    """Write a token file as `authorize` would, with tokens the fake exchange accepts."""
    tokens = replace(Tokens.from_response(fx.schwab.issue_tokens(), refresh_valid_for),
                     access_expires_at=time.time() + access_valid_for)
    TokenFile(token_file).save(tokens)
    return tokens
