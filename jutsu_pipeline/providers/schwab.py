"""The `schwab` provider: Charles Schwab `/marketdata/v1/pricehistory` with OAuth2 (30-min access,
7-day refresh token). One-time authorisation (opens nothing; you paste the redirect URL):

    python -m jutsu_pipeline.providers.schwab authorize-url
    python -m jutsu_pipeline.providers.schwab authorize --redirect-url 'https://127.0.0.1/?code=...&session=...'
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import polars as pl

from jutsu_pipeline.providers.base import FetchRequest, FetchStats, ProviderCapabilities, ProviderError
from jutsu_pipeline.providers.builtin import SchwabOptions
from jutsu_pipeline.providers.http.client import HttpClient
from jutsu_pipeline.providers.http.errors import AuthExpired, MalformedPayload, RequestContext, Unauthorized
from jutsu_pipeline.providers.http.frames import query_window
from jutsu_pipeline.providers.http.oauth import TokenFile, Tokens
from jutsu_pipeline.providers.http.provider import HttpProvider, epoch_ms, read_secret
from jutsu_pipeline.providers.http.secrets import Secret
from jutsu_pipeline.providers.http.settings import HttpSettings
from jutsu_pipeline.timeframes import Timeframe

DEFAULT_BASE_URL = "https://api.schwabapi.com"
DEFAULT_REDIRECT_URI = "https://127.0.0.1"
REFRESH_TTL = 7 * 86400
# timeframe -> (periodType, frequencyType, frequency, longest window per request)
FREQUENCIES = {
    Timeframe.M1: ("day", "minute", 1, dt.timedelta(days=48)),
    Timeframe.M5: ("day", "minute", 5, dt.timedelta(days=270)),
    Timeframe.D1: ("year", "daily", 1, dt.timedelta(days=20 * 365)),
}
ENV_OPTIONS = ("client_id_env", "client_secret_env", "token_file_env")  # names of the credentials' variables
AUTHORIZE_HINT = ("re-authorise once: `python -m jutsu_pipeline.providers.schwab authorize-url`, log in, then "
                  "`python -m jutsu_pipeline.providers.schwab authorize --redirect-url '<the URL you landed on>'`")


def _credentials(options: SchwabOptions, secrets: Mapping[str, Any] | None, purpose: str,
                 then: str) -> tuple[Secret, Secret, Path]:
    """The app's key and secret and the token file's path; `then`: what to do once the path is exported."""
    advice = "register an app at developer.schwab.com and export its key and secret"
    client_id = read_secret("schwab", "schwab_client_id", options.client_id_env, secrets, advice)
    client_secret = read_secret("schwab", "schwab_client_secret", options.client_secret_env, secrets, advice)
    path = (secrets or {}).get("schwab_token_file") or os.environ.get(options.token_file_env)
    if not path:
        raise AuthExpired(RequestContext("schwab", purpose=purpose), f"{options.token_file_env} is not set",
                          f"export {options.token_file_env}=<path of the token JSON file>{then}")
    return client_id, client_secret, Path(path)


def _token_error(status: int, text: str, context: RequestContext) -> ProviderError | None:
    if status in (400, 401) and ("invalid_client" in text or "invalid_grant" in text):
        return AuthExpired(context, f"Schwab refused the refresh token or the app credentials (HTTP {status}; "
                           "refresh tokens expire 7 days after authorisation)", AUTHORIZE_HINT, status=status)
    return None


def _code_error(status: int, text: str, context: RequestContext) -> ProviderError | None:
    """The authorisation step: it is the pasted code (or the app's key/secret) that was refused."""
    if status in (400, 401) and ("invalid_client" in text or "invalid_grant" in text):
        return AuthExpired(context, f"Schwab refused the authorisation code or the app credentials (HTTP {status}; "
                           "a code is valid for about 30 seconds and once)",
                           "open the URL of `python -m jutsu_pipeline.providers.schwab authorize-url` again, log in "
                           "and run `authorize --redirect-url '<the URL you landed on>'` at once; if it is refused "
                           "again, check SCHWAB_CLIENT_ID / SCHWAB_CLIENT_SECRET", status=status)
    return None


def _data_error(status: int, text: str, context: RequestContext) -> ProviderError | None:
    if status == 401:
        return Unauthorized(context, "Schwab rejected the access token (HTTP 401) even after a refresh",
                            AUTHORIZE_HINT, status=status)
    return None


class SchwabProvider(HttpProvider):
    """Price history in windows no longer than Schwab's caps (1m: 48 days, 5m: 270 days), with an access token
    refreshed `options.refresh_leeway_seconds` before expiry and on demand after a 401."""

    name = "schwab"
    default_base_url = DEFAULT_BASE_URL
    default_settings = HttpSettings(requests_per_second=2.0, burst=1.0)  # ~120/minute

    options: SchwabOptions

    def __init__(self, options: SchwabOptions, timezone: str, secrets: Mapping[str, Any] | None = None) -> None:
        client_id, client_secret, path = _credentials(options, secrets, "credentials", f", then {AUTHORIZE_HINT}")
        super().__init__(options, timezone, error_mapper=_data_error, identity=client_id.reveal())  # budget per app
        self.client_id, self.client_secret, self.token_file = client_id, client_secret, TokenFile(path)
        self._tokens: Tokens | None = None
        self._tokens_lock = threading.Lock()
        delay = dt.timedelta(minutes=options.delay_minutes)
        self.capabilities = ProviderCapabilities(timeframes=frozenset(FREQUENCIES), delay=delay)

    def day_timezone(self) -> str:
        return self.options.daily_timezone

    def access_token(self, context: RequestContext, *, force_refresh: bool = False) -> str:
        """A valid access token for a request made for `context` (named in errors)."""
        context = context.for_purpose("token refresh")
        with self._tokens_lock:
            if self._tokens is None:
                self._tokens = self._read_tokens(context)
            if force_refresh or self._tokens.access_expires_at - self.options.refresh_leeway_seconds <= time.time():
                self._tokens = self._refresh_tokens(self._tokens, context)
            return self._tokens.access_token.reveal()

    def _read_tokens(self, context: RequestContext) -> Tokens:
        if not self.token_file.exists():
            raise AuthExpired(context, f"no token file at {self.token_file.path}", AUTHORIZE_HINT)
        try:
            return self.token_file.load()
        except (ValueError, KeyError, OSError) as error:
            raise AuthExpired(context, f"token file {self.token_file.path} is unreadable "
                              f"({type(error).__name__})", AUTHORIZE_HINT) from None

    def _refresh_tokens(self, tokens: Tokens, context: RequestContext) -> Tokens:
        if tokens.refresh_expires_at <= time.time():
            expired = dt.datetime.fromtimestamp(tokens.refresh_expires_at, dt.timezone.utc).isoformat(timespec="seconds")
            raise AuthExpired(context, f"the refresh token expired at {expired} (Schwab refresh tokens last "
                              "7 days)", AUTHORIZE_HINT)
        reply = self.client.request(
            "POST", "/v1/oauth/token", context, error_mapper=_token_error,
            data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token.reveal()},
            auth=(self.client_id.reveal(), self.client_secret.reveal()))
        if not isinstance(reply.data, dict) or "access_token" not in reply.data:
            raise MalformedPayload(context, "token response lacks access_token", "report it")
        fresh = Tokens.from_response(reply.data, REFRESH_TTL, previous=tokens)
        self.token_file.save(fresh)
        return fresh

    def _get(self, context: RequestContext, params: dict[str, Any]) -> Any:
        def call(token: str) -> Any:
            return self.client.request("GET", "/marketdata/v1/pricehistory", context, params=params,
                                       headers={"Authorization": f"Bearer {token}"}).data
        try:
            return call(self.access_token(context))
        except Unauthorized:
            return call(self.access_token(context, force_refresh=True))  # once: a second 401 is raised

    def _fetch(self, request: FetchRequest) -> pl.DataFrame:
        context = self.context(request)
        period_type, frequency_type, frequency, cap = FREQUENCIES[request.timeframe]
        start, end = query_window(request)
        end = min(end, self.client.server_now() - self.capabilities.delay)
        candles: list[dict[str, Any]] = []
        chunk_start = start
        while chunk_start < end:  # one request per window cap
            chunk_end = min(chunk_start + cap, end)
            payload = self._get(context, {
                "symbol": request.symbol, "periodType": period_type, "frequencyType": frequency_type,
                "frequency": frequency, "startDate": epoch_ms(chunk_start), "endDate": epoch_ms(chunk_end) - 1,
                "needExtendedHoursData": "false"})
            if not isinstance(payload, dict) or not isinstance(payload.get("candles", []), list):
                raise MalformedPayload(context, "response lacks a candles list", "report it")
            candles.extend(payload.get("candles", []))
            chunk_start = chunk_end
        try:
            instants = [int(c["datetime"]) * 1000 for c in candles]
            columns = {name: [c[name] for c in candles] for name in ("open", "high", "low", "close", "volume")}
        except (KeyError, TypeError, ValueError) as error:
            raise MalformedPayload(context, f"a candle lacks a field ({type(error).__name__})", "report it") from None
        return self.finalize(request, instants, columns)


# -- one-time authorisation ----------------------------------------------------------------------
def authorize_url(client_id: str, base_url: str = DEFAULT_BASE_URL, redirect_uri: str = DEFAULT_REDIRECT_URI) -> str:
    query = urlencode({"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code"})
    return f"{base_url.rstrip('/')}/v1/oauth/authorize?{query}"


def exchange_code(redirect_url: str, *, options: Mapping[str, Any] | None = None,
                  redirect_uri: str = DEFAULT_REDIRECT_URI) -> Path:
    """Exchange the code in `redirect_url` for tokens and save them to the token file; returns its path."""
    settings = SchwabOptions.model_validate(dict(options or {}))
    code = parse_qs(urlsplit(redirect_url).query).get("code", [""])[0]
    if not code:
        raise ValueError("the redirect URL has no ?code=...; paste the full URL the browser landed on")
    client_id, client_secret, path = _credentials(settings, None, "authorisation", " and run the command again")
    client = HttpClient("schwab", settings.base_url or DEFAULT_BASE_URL, HttpSettings(), FetchStats(),
                        error_mapper=_code_error)
    try:
        reply = client.request(
            "POST", "/v1/oauth/token", RequestContext("schwab", purpose="authorisation"),
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            auth=(client_id.reveal(), client_secret.reveal()))
    finally:
        client.close()
    TokenFile(path).save(Tokens.from_response(reply.data, REFRESH_TTL))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jutsu_pipeline.providers.schwab",
                                     description="One-time Schwab OAuth authorisation (tokens go to $SCHWAB_TOKEN_FILE).")
    sub = parser.add_subparsers(dest="command", required=True)
    url_cmd = sub.add_parser("authorize-url", help="print the URL to open in a browser")
    auth_cmd = sub.add_parser("authorize", help="exchange the redirect URL's code for tokens")
    auth_cmd.add_argument("--redirect-url", required=True, help="the full URL the browser was redirected to")
    for cmd in (url_cmd, auth_cmd):
        cmd.add_argument("--base-url", default=DEFAULT_BASE_URL)
        cmd.add_argument("--redirect-uri", default=DEFAULT_REDIRECT_URI, help="the app's registered callback URL")
        for option in ENV_OPTIONS:  # --client-id-env etc., defaulting to SchwabOptions'
            cmd.add_argument(f"--{option.replace('_', '-')}", default=SchwabOptions.model_fields[option].default)
    args = parser.parse_args(argv)
    options = {name: getattr(args, name) for name in ("base_url", *ENV_OPTIONS)}
    try:
        if args.command == "authorize-url":
            client_id = read_secret("schwab", "schwab_client_id", args.client_id_env, None, "export it")
            print(authorize_url(client_id.reveal(), args.base_url, args.redirect_uri))
            return 0
        path = exchange_code(args.redirect_url, options=options, redirect_uri=args.redirect_uri)
    except (AuthExpired, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"tokens saved to {path} (mode 0600); the refresh token is valid for 7 days — run this again before then")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
