"""The `yahoo` provider (EXPERIMENTAL, unofficial API): chart v8 with cookie + crumb, chunked by Yahoo's
window caps; null rows inside the arrays are dropped. Yahoo throttles non-browser clients; expect 429s."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import polars as pl

from jutsu_pipeline.actions.model import DIVIDEND, SPLIT, actions_frame
from jutsu_pipeline.providers.base import (
    FetchRequest,
    ProviderCapabilities,
    ProviderError,
    SymbolHistory,
    UnknownSymbolError,
)
from jutsu_pipeline.providers.builtin import YahooOptions
from jutsu_pipeline.providers.http.errors import MalformedPayload, RequestContext, Unauthorized
from jutsu_pipeline.providers.http.frames import query_window
from jutsu_pipeline.providers.http.provider import HttpProvider
from jutsu_pipeline.providers.http.secrets import Secret
from jutsu_pipeline.providers.http.settings import HttpSettings
from jutsu_pipeline.timeframes import Timeframe

UTC = dt.timezone.utc
# timeframe -> (interval, longest window per request)
INTERVALS = {
    Timeframe.M1: ("1m", dt.timedelta(days=7)),
    Timeframe.M5: ("5m", dt.timedelta(days=59)),
    Timeframe.H1: ("60m", dt.timedelta(days=729)),
    Timeframe.D1: ("1d", dt.timedelta(days=20 * 365)),
}
_FIELDS = ("open", "high", "low", "close", "volume")


def _map_error(status: int, text: str, context: RequestContext) -> ProviderError | None:
    if status == 401:
        return Unauthorized(context, "Yahoo rejected the cookie/crumb (HTTP 401) twice",
                            "Yahoo may be blocking this client; retry later or use another provider")
    if status == 404 and ("No data found" in text or "delisted" in text or "Not Found" in text):
        return UnknownSymbolError(f"{context.describe()}: Yahoo has no data for this symbol (may be delisted); "
                                  "check the ticker (Yahoo style, e.g. BRK-B, BTC-USD) or remove it")
    return None


class YahooProvider(HttpProvider):
    """Chart v8 bars; daily rows are keyed by their date in the exchange's timezone (meta)."""

    name = "yahoo"
    default_base_url = "https://query2.finance.yahoo.com"
    default_settings = HttpSettings(requests_per_second=1.0, burst=1.0)

    options: YahooOptions

    def __init__(self, options: YahooOptions, timezone: str) -> None:
        super().__init__(options, timezone, error_mapper=_map_error, headers={"User-Agent": options.user_agent})
        self.capabilities = ProviderCapabilities(timeframes=frozenset(INTERVALS), has_adj_close=True,
                                                 delay=dt.timedelta(minutes=options.delay_minutes))
        self._crumb: Secret | None = None
        self._crumb_lock = threading.Lock()

    def _ensure_crumb(self, context: RequestContext, *, renew: bool = False) -> str:
        with self._crumb_lock:
            if self._crumb is None or renew:
                context = context.for_purpose("cookie and crumb")
                self.client.request("GET", self.options.cookie_url, context, ok_statuses=frozenset({404}), expect_json=False)
                reply = self.client.request("GET", "/v1/test/getcrumb", context, expect_json=False)
                crumb = reply.body.decode("utf-8", errors="replace").strip()
                if not crumb or "<" in crumb:
                    raise MalformedPayload(context, "Yahoo returned no crumb", "retry later")
                self._crumb = Secret(crumb)
            return self._crumb.reveal()

    def _chart(self, context: RequestContext, symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        path = f"/v8/finance/chart/{quote(symbol, safe='')}"

        def call(crumb: str) -> Any:
            return self.client.request("GET", path, context, params={**params, "crumb": crumb}).data
        try:
            payload = call(self._ensure_crumb(context))
        except Unauthorized:
            payload = call(self._ensure_crumb(context, renew=True))  # "Invalid Crumb": renew once
        try:
            result = payload["chart"]["result"]
        except (KeyError, TypeError):
            raise MalformedPayload(context, "response has no chart.result", "report it") from None
        if not result:
            error = (payload.get("chart") or {}).get("error") or {}
            raise MalformedPayload(context, f"chart.result is empty ({error.get('description', 'no description')})",
                                   "check the symbol and interval")
        return result[0]

    def _fetch(self, request: FetchRequest) -> pl.DataFrame:
        context = self.context(request)
        interval, cap = INTERVALS[request.timeframe]
        start, end = query_window(request)
        end = min(end, self.client.server_now() + request.timeframe.duration)
        instants: list[int | None] = []
        columns: dict[str, list[float | None]] = {name: [] for name in (*_FIELDS, "adj_close")}
        day_tz = self.timezone
        chunk_start = start
        while chunk_start < end:  # one request per window cap
            chunk_end = min(chunk_start + cap, end)
            result = self._chart(context, request.symbol, {
                "period1": int(chunk_start.timestamp()), "period2": int(chunk_end.timestamp()),
                "interval": interval, "includePrePost": "false", "events": "div,splits"})
            day_tz = str((result.get("meta") or {}).get("exchangeTimezoneName") or day_tz)
            self._collect(context, result, instants, columns)
            chunk_start = chunk_end
        return self.finalize(request, instants, columns, day_timezone=day_tz)

    def _collect(self, context: RequestContext, result: dict[str, Any], instants: list[int | None],
                 columns: dict[str, list[float | None]]) -> None:
        stamps = result.get("timestamp") or []
        try:
            quote_ = result["indicators"]["quote"][0] if stamps else {}
            adj = (result["indicators"].get("adjclose") or [{}])[0].get("adjclose") if stamps else None
        except (KeyError, IndexError, TypeError, AttributeError):
            raise MalformedPayload(context, "response lacks indicators.quote", "report it") from None
        arrays = {name: quote_.get(name) for name in _FIELDS}
        if any(not isinstance(a, list) or len(a) != len(stamps) for a in arrays.values()) or \
                (adj is not None and len(adj) != len(stamps)):
            sizes = {name: len(a) if isinstance(a, list) else None for name, a in arrays.items()}
            raise MalformedPayload(context, f"arrays of different lengths (timestamp {len(stamps)}, {sizes})",
                                   "Yahoo sent an inconsistent payload; retry later or use another provider")
        instants.extend(None if s is None else int(s) * 1_000_000 for s in stamps)
        for name in _FIELDS:
            columns[name].extend(arrays[name])  # type: ignore[arg-type]
        columns["adj_close"].extend(adj if adj is not None else [None] * len(stamps))

    actions_source = "yahoo"

    def corporate_actions(self, symbol: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Splits and dividends from the chart's `events=div,splits` (one request); Yahoo's OHLC are already
        split-adjusted, the splits are stored for `bars_adjusted` and the anomaly check (docs/providers.md)."""
        context = RequestContext(self.name, symbol, Timeframe.D1, purpose="corporate actions")
        lo = dt.datetime.combine(start, dt.time(), UTC)
        hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), UTC)
        result = self._chart(context, symbol, {"period1": int(lo.timestamp()), "period2": int(hi.timestamp()),
                                               "interval": "1d", "events": "div,splits"})
        zone = ZoneInfo(str((result.get("meta") or {}).get("exchangeTimezoneName") or self.timezone))
        currency = (result.get("meta") or {}).get("currency")
        events = result.get("events") or {}
        rows: list[dict] = []
        try:
            for item in (events.get("splits") or {}).values():
                day = dt.datetime.fromtimestamp(int(item["date"]), zone).date()
                rows.append({"symbol": symbol, "ex_date": day, "kind": SPLIT,
                             "ratio": float(item["numerator"]) / float(item["denominator"])})
            for item in (events.get("dividends") or {}).values():
                day = dt.datetime.fromtimestamp(int(item["date"]), zone).date()
                rows.append({"symbol": symbol, "ex_date": day, "kind": DIVIDEND,
                             "cash_amount": float(item["amount"]), "currency": currency})
        except (KeyError, TypeError, ValueError, AttributeError):
            raise MalformedPayload(context, "an event lacks date, numerator/denominator or amount",
                                   "report it; the API may have changed") from None
        return actions_frame([r for r in rows if start <= r["ex_date"] <= end])

    def history(self, symbol: str, timeframe: Timeframe) -> SymbolHistory:
        """First trade date from the chart metadata (one small request)."""
        context = RequestContext(self.name, symbol, timeframe, purpose="history")
        now = int(self.client.server_now().timestamp())
        meta = self._chart(context, symbol, {"period1": now - 5 * 86400, "period2": now, "interval": "1d"}).get("meta", {})
        first = meta.get("firstTradeDate")
        if first is None:
            return SymbolHistory()
        zone = str(meta.get("exchangeTimezoneName") or self.timezone)
        return self.first_bar(dt.datetime.fromtimestamp(int(first), UTC), timeframe, zone)


