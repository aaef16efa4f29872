"""The `alpaca` provider: US stock bars from Alpaca market data v2 `/v2/stocks/bars` (key + secret)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import polars as pl

from jutsu_pipeline.actions.model import DIVIDEND, SPLIT, actions_frame
from jutsu_pipeline.providers.base import (
    FetchRequest,
    ProviderCapabilities,
    ProviderError,
    SymbolHistory,
    UnknownSymbolError,
)
from jutsu_pipeline.providers.builtin import AlpacaOptions
from jutsu_pipeline.providers.http.errors import AuthExpired, MalformedPayload, NotEntitled, RequestContext, iso_utc
from jutsu_pipeline.providers.http.frames import query_window
from jutsu_pipeline.providers.http.provider import HttpProvider, read_secret
from jutsu_pipeline.providers.http.settings import HttpSettings
from jutsu_pipeline.timeframes import Timeframe

UTC = dt.timezone.utc
TIMEFRAMES = {Timeframe.M1: "1Min", Timeframe.M5: "5Min", Timeframe.H1: "1Hour", Timeframe.D1: "1Day"}
ACTION_TYPES = "forward_split,reverse_split,cash_dividend"
_ENTITLEMENT_HINTS = ("subscription", "too late", "not permit")


class AlpacaProvider(HttpProvider):
    """Bars paginated with next_page_token; with feed=sip the last `delay_minutes` (15) are never asked for."""

    name = "alpaca"
    default_base_url = "https://data.alpaca.markets"
    default_settings = HttpSettings(requests_per_second=3.0, burst=1.0)  # free plan: 200 requests/minute

    options: AlpacaOptions

    def __init__(self, options: AlpacaOptions, timezone: str, secrets: Mapping[str, Any] | None = None) -> None:
        advice = "create keys at alpaca.markets (free plan works) and set them in the environment"
        key_id = read_secret("alpaca", "alpaca_key_id", options.key_id_env, secrets, advice).reveal()
        secret_key = read_secret("alpaca", "alpaca_secret_key", options.secret_key_env, secrets, advice).reveal()
        super().__init__(options, timezone, error_mapper=self._map_error,
                         headers={"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key}, identity=key_id)
        delay = options.delay_minutes if options.delay_minutes is not None else 15 if options.feed == "sip" else 0
        self.capabilities = ProviderCapabilities(timeframes=frozenset(TIMEFRAMES), delay=dt.timedelta(minutes=delay))

    def _map_error(self, status: int, text: str, context: RequestContext) -> ProviderError | None:
        if status in (401, 403, 422) and any(hint in text.lower() for hint in _ENTITLEMENT_HINTS):
            return NotEntitled(context, f"the plan does not include this data (HTTP {status}: {text[:120]})",
                               "free plans cannot query the last 15 minutes of SIP data: set options.feed: iex, "
                               "or options.delay_minutes: 15 or more, or upgrade the Alpaca subscription",
                               status=status)
        if status in (401, 403):
            return AuthExpired(context, f"Alpaca rejected the API key (HTTP {status})",
                               f"check the environment variables {self.options.key_id_env} and "
                               f"{self.options.secret_key_env} "
                               "(paper and live keys differ); regenerate the keys if they were revoked", status=status)
        if status in (400, 422) and "symbol" in text.lower():
            return UnknownSymbolError(f"{context.describe()}: Alpaca rejected the symbol ({text[:120]}); "
                                      "check the ticker or remove it")
        return None

    def _pages(self, context: RequestContext, symbol: str, timeframe: Timeframe, start: dt.datetime,
               end: dt.datetime, limit: int, follow: bool = True) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"symbols": symbol, "timeframe": TIMEFRAMES[timeframe], "start": iso_utc(start),
                                  "end": iso_utc(end), "limit": limit, "adjustment": self.options.adjustment,
                                  "feed": self.options.feed, "sort": "asc"}
        bars: list[dict[str, Any]] = []
        seen_tokens: set[str] = set()
        reached: dt.datetime | None = None
        while True:  # one request per page until next_page_token is null
            payload = self.client.request("GET", "/v2/stocks/bars", context, params=params).data
            if not isinstance(payload, dict) or "bars" not in payload:
                raise MalformedPayload(context, "response has no 'bars' field", "report it; the API may have changed")
            page = payload["bars"] or {}
            page = page.get(symbol, []) if isinstance(page, dict) else page
            bars.extend(page)
            token = payload.get("next_page_token")
            if not token or not follow:
                return bars
            latest = max((_parse_t(b["t"]) for b in page if isinstance(b, dict) and "t" in b), default=None)
            if token in seen_tokens or latest is None or (reached is not None and latest <= reached):
                raise MalformedPayload(context, f"page {len(seen_tokens) + 1} has a next_page_token but does not "
                                       "advance (token repeated or no bar after the previous page)",
                                       "nothing of this window is stored; report it")
            reached = latest
            seen_tokens.add(token)
            params["page_token"] = token

    def _fetch(self, request: FetchRequest) -> pl.DataFrame:
        context = self.context(request)
        start, end = query_window(request)
        end = min(end, self.client.server_now() - self.capabilities.delay) - dt.timedelta(seconds=1)  # end inclusive
        bars = self._pages(context, request.symbol, request.timeframe, start, end, self.options.page_limit) \
            if end >= start else []
        try:
            instants = [int(_parse_t(b["t"]).timestamp() * 1_000_000) for b in bars]
            columns = {name: [b[key] for b in bars] for name, key in
                       (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c"), ("volume", "v"))}
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise MalformedPayload(context, f"a bar lacks t/o/h/l/c/v ({type(error).__name__})",
                                   "report it; the API may have changed") from None
        return self.finalize(request, instants, columns)

    actions_source = "alpaca"

    def corporate_actions(self, symbol: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Splits and cash dividends from `/v1/corporate-actions` (paginated, one symbol)."""
        context = RequestContext(self.name, symbol, purpose="corporate actions")
        params: dict[str, Any] = {"symbols": symbol, "types": ACTION_TYPES, "start": start.isoformat(),
                                  "end": end.isoformat(), "limit": 1000}
        rows: list[dict] = []
        seen: set[str] = set()
        while True:
            payload = self.client.request("GET", self.options.actions_path, context,
                                          params=params).data
            groups = payload.get("corporate_actions") if isinstance(payload, dict) else None
            if not isinstance(groups, dict):
                raise MalformedPayload(context, "response has no 'corporate_actions' object", "report it")
            try:
                rows += _alpaca_actions(symbol, groups)
            except (KeyError, TypeError, ValueError) as error:
                raise MalformedPayload(context, f"an action lacks ex_date or rates ({type(error).__name__})",
                                       "report it; the API may have changed") from None
            token = payload.get("next_page_token")
            if not token:
                return actions_frame(rows)
            if token in seen:
                raise MalformedPayload(context, "next_page_token repeats", "report it")
            seen.add(token)
            params["page_token"] = token

    def history(self, symbol: str, timeframe: Timeframe) -> SymbolHistory:
        """The first bar (one request); a symbol without any bar is unknown to Alpaca."""
        context = RequestContext(self.name, symbol, timeframe, purpose="history")
        end = self.client.server_now() - self.capabilities.delay - dt.timedelta(minutes=1)
        bars = self._pages(context, symbol, timeframe, dt.datetime(2000, 1, 1, tzinfo=UTC), end, 1, follow=False)
        if not bars:
            raise UnknownSymbolError(f"{context.describe()}: Alpaca has no {timeframe.value} bars at all for "
                                     f"{symbol}; check the ticker or remove it")
        return self.first_bar(_parse_t(bars[0]["t"]), timeframe)


def _parse_t(value: str) -> dt.datetime:
    """A bar's RFC-3339 `t`. Alpaca documents these in UTC, so one without an offset is read as UTC,
    never in the host's zone (a naive datetime's .timestamp() would use the machine's TZ)."""
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _alpaca_actions(symbol: str, groups: dict[str, Any]) -> list[dict]:
    """ACTION_SCHEMA rows from Alpaca's grouped actions (splits: new_rate / old_rate; dividends: rate)."""
    rows = []
    for group in ("forward_splits", "reverse_splits"):
        for item in groups.get(group) or []:
            rows.append({"symbol": symbol, "ex_date": dt.date.fromisoformat(item["ex_date"]), "kind": SPLIT,
                         "ratio": float(item["new_rate"]) / float(item["old_rate"])})
    for item in groups.get("cash_dividends") or []:
        rows.append({"symbol": symbol, "ex_date": dt.date.fromisoformat(item["ex_date"]), "kind": DIVIDEND,
                     "cash_amount": float(item["rate"]), "currency": item.get("currency") or "USD"})
    return rows


