"""Schwab `/marketdata/v1/pricehistory` (window caps, bearer token) and its OAuth2 endpoints."""

from __future__ import annotations

import base64
import secrets
import threading
import time
from urllib.parse import quote, urlencode

from jutsu_fake_exchange.messages import Request, Response
from jutsu_fake_exchange.routes.common import keys_for_instants, local_midnight, served_bar

ACCESS_TTL = 1800
REFRESH_TTL = 7 * 86400
# (frequencyType, frequency) -> (timeframe, max window in days)
FREQUENCIES = {("minute", "1"): ("1m", 48), ("minute", "5"): ("5m", 270), ("daily", "1"): ("1d", 20 * 366)}


class SchwabAuthState:
    """Issued codes and tokens, on the exchange's clock. Tests use the control methods."""

    def __init__(self, exchange, client_id: str, client_secret: str) -> None:  # noqa: ANN001
        self.exchange = exchange
        self.client_id, self.client_secret = client_id, client_secret
        self.access_ttl = ACCESS_TTL
        self.codes: dict[str, float] = {}  # code -> real monotonic expiry
        self.access: dict[str, float] = {}  # token -> expiry, fake-clock epoch seconds
        self.refresh: dict[str, float] = {}
        self.lock = threading.Lock()

    def issue_code(self) -> str:
        """An authorization code as Schwab puts it in the redirect URL (valid 60 s)."""
        code = f"C0.{secrets.token_urlsafe(24)}@"
        with self.lock:
            self.codes[code] = time.monotonic() + 60
        return code

    def issue_tokens(self, refresh_token: str | None = None) -> dict:
        now = self.exchange.clock.now()
        with self.lock:
            access = f"I0.{secrets.token_urlsafe(32)}@"
            self.access[access] = now + self.access_ttl
            if refresh_token is None:
                refresh_token = f"R0.{secrets.token_urlsafe(32)}@"
                self.refresh[refresh_token] = now + REFRESH_TTL
        return {"expires_in": self.access_ttl, "token_type": "Bearer", "scope": "api",
                "refresh_token": refresh_token, "access_token": access, "id_token": "fake.id.token"}

    def revoke_access_tokens(self) -> None:
        with self.lock:
            self.access.clear()

    def expire_refresh_tokens(self) -> None:
        with self.lock:
            self.refresh.clear()

    def valid(self, grants: dict[str, float], token: str) -> bool:
        """`token` is one of `grants` (`access` or `refresh`) and has not expired."""
        with self.lock:
            expires_at = grants.get(token)
        return expires_at is not None and expires_at > self.exchange.clock.now()


def _client_ok(x, req: Request) -> bool:  # noqa: ANN001
    expected = base64.b64encode(f"{x.schwab.client_id}:{x.schwab.client_secret}".encode()).decode()
    return req.headers.get("authorization") == f"Basic {expected}"


def token(x, req: Request) -> Response:  # noqa: ANN001 - x: FakeExchange
    if not _client_ok(x, req):
        return Response.json({"error": "invalid_client", "error_description": "client authentication failed"}, 401)
    grant = req.form.get("grant_type")
    state = x.schwab
    if grant == "authorization_code":
        code = req.form.get("code", "")
        with state.lock:
            expiry = state.codes.pop(code, None)
        if expiry is None or expiry < time.monotonic():
            return Response.json({"error": "invalid_grant", "error_description": "authorization code invalid"}, 400)
        return Response.json(state.issue_tokens())
    if grant == "refresh_token":
        refresh = req.form.get("refresh_token", "")
        if not state.valid(state.refresh, refresh):
            return Response.json({"error": "invalid_client", "error_description": "refresh token invalid"}, 400)
        return Response.json(state.issue_tokens(refresh))
    return Response.json({"error": "unsupported_grant_type"}, 400)


def authorize(x, req: Request) -> Response:  # noqa: ANN001
    """Pretend the user logged in and consented: redirect to the callback with a code."""
    if req.params.get("client_id") != x.schwab.client_id:
        return Response.json({"error": "invalid_client"}, 400)
    target = req.params.get("redirect_uri", "https://127.0.0.1")
    query = urlencode({"code": x.schwab.issue_code(), "session": "fake-session"}, quote_via=quote)
    return Response(302, b"", {"Location": f"{target}?{query}"})


def pricehistory(x, req: Request) -> Response:  # noqa: ANN001
    auth = req.headers.get("authorization", "")
    if not auth.startswith("Bearer ") or not x.schwab.valid(x.schwab.access, auth[7:]):
        return Response.json({"errors": [{"status": "401", "title": "Unauthorized",
                                          "detail": "access token invalid or expired"}]}, 401)
    p = req.params
    key = (p.get("frequencyType", ""), p.get("frequency", "1"))
    if key not in FREQUENCIES:
        return Response.json({"errors": [{"status": "400", "title": "Bad Request",
                                          "detail": f"unsupported frequency {key}"}]}, 400)
    timeframe, cap_days = FREQUENCIES[key]
    try:
        start, end = int(p["startDate"]) // 1000, int(p["endDate"]) // 1000
    except (KeyError, ValueError):
        return Response.json({"errors": [{"status": "400", "title": "Bad Request",
                                          "detail": "startDate and endDate (epoch ms) are required"}]}, 400)
    if end - start > cap_days * 86400:
        return Response.json({"errors": [{"status": "400", "title": "Bad Request",
                                          "detail": f"range exceeds {cap_days} days for {key}"}]}, 400)
    symbol = p.get("symbol", "")
    if x.bars.spec(symbol) is None:
        return Response.json({"symbol": symbol, "empty": True, "candles": []})
    stamp = (lambda k: local_midnight(k, "America/Chicago")) if timeframe == "1d" else (lambda k: k)
    lo = start - (86400 if "outside_range" in req.data_faults else 0)
    candles = []
    for k, instant in keys_for_instants(x, symbol, timeframe, lo, end + 1, stamp):
        values = served_bar(x, symbol, timeframe, k, "forming_jitter" in req.data_faults)
        if values is None:
            continue
        o, h, low, c, v = values
        candles.append({"open": o, "high": h, "low": low, "close": c, "volume": v, "datetime": instant * 1000})
    if "descending" in req.data_faults:
        candles.reverse()
    return Response.json({"symbol": symbol, "empty": not candles, "candles": candles})
