"""The `binance` provider: public klines (no key, 24/7) of the spot market (`/api/v3/klines`, 1000 bars a
page) or of USD-M futures (`/fapi/v1/klines`, 1500 bars a page), chosen by `options.market`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import polars as pl

from jutsu_pipeline.providers.base import (
    FetchRequest,
    ProviderCapabilities,
    ProviderError,
    SymbolHistory,
    UnknownSymbolError,
)
from jutsu_pipeline.providers.builtin import BINANCE_MARKETS as MARKETS
from jutsu_pipeline.providers.builtin import BinanceOptions
from jutsu_pipeline.providers.http.errors import MalformedPayload, RequestContext
from jutsu_pipeline.providers.http.provider import HttpProvider, epoch_ms
from jutsu_pipeline.providers.http.settings import HttpSettings
from jutsu_pipeline.timeframes import Timeframe

UTC = dt.timezone.utc
INTERVALS = {Timeframe.M1: "1m", Timeframe.M5: "5m", Timeframe.H1: "1h", Timeframe.D1: "1d"}


def _map_error(status: int, text: str, context: RequestContext) -> ProviderError | None:
    if status == 400 and "-1121" in text:
        return UnknownSymbolError(f"{context.describe()}: Binance does not know this symbol ({text[:120]}). "
                                  "Use the exchange's pair name, e.g. BTCUSDT or BTC/USDT, or remove it")
    return None


class BinanceProvider(HttpProvider):
    """Klines paginated by startTime; a bar is final when its close time is before the server's clock."""

    name = "binance"
    options: BinanceOptions

    def __init__(self, options: BinanceOptions, timezone: str) -> None:
        self.market = MARKETS[options.market]
        self.default_base_url = self.market.base_url
        self.default_settings = HttpSettings(requests_per_second=20.0, burst=10.0,
                                             weight_per_minute=self.market.weight_per_minute)
        super().__init__(options, timezone, error_mapper=_map_error)
        self.page_limit = options.page_limit or self.market.max_limit
        self.capabilities = ProviderCapabilities(timeframes=frozenset(INTERVALS))

    def day_timezone(self) -> str:
        return "UTC"

    def provider_symbol(self, symbol: str) -> str:
        """'BTC/USDT' or 'btc-usdt' -> 'BTCUSDT' (an explicit `options.symbols` mapping wins)."""
        return self.options.symbols.get(symbol) or symbol.replace("/", "").replace("-", "").upper()

    def _observe_weight(self, response: httpx.Response) -> None:
        used = response.headers.get("x-mbx-used-weight-1m")
        limiter = self.client.weight_limiter
        if used and used.isdigit() and limiter is not None:
            limiter.limit_available(limiter.capacity - int(used))

    def _page(self, context: RequestContext, params: dict[str, Any]) -> list[list[Any]]:
        reply = self.client.request("GET", self.market.klines_path, context, params=params,
                                    weight=self.market.weight(int(params.get("limit", 500))),
                                    on_response=self._observe_weight)
        rows = reply.data
        if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) < 7 for r in rows):
            raise MalformedPayload(context, "klines are not a list of 12-field arrays",
                                   "the API changed or a proxy rewrote the body; report it")
        return rows

    def _fetch(self, request: FetchRequest) -> pl.DataFrame:
        context = self.context(request)
        symbol = self.provider_symbol(request.symbol)
        step = int(request.timeframe.duration.total_seconds() * 1000)
        first_ms, last_ms = epoch_ms(request.start), epoch_ms(request.end) - 1
        cursor, number = first_ms, 0
        rows: list[list[Any]] = []
        # Complete when a short page says nothing more exists up to endTime, or the cursor passes the window's
        # end or the server's clock (the rest is not final yet).
        while cursor <= last_ms and cursor + step <= epoch_ms(self.client.server_now()):
            number += 1
            page = self._page(context, {"symbol": symbol, "interval": INTERVALS[request.timeframe],
                                        "startTime": cursor, "endTime": last_ms, "limit": self.page_limit})
            rows.extend(page)
            if len(page) < self.page_limit:
                break
            cursor = self._next_cursor(context, page, number, cursor, first_ms, last_ms, step)
        return self._frame(request, rows, context)

    @staticmethod
    def _next_cursor(context: RequestContext, page: list[list[Any]], number: int, cursor: int, first_ms: int,
                     last_ms: int, step: int) -> int:
        """The startTime after a full page. A bar outside the requested range (e.g. stamped in the future)
        never moves the cursor: it would skip the rest of the window and store it incomplete."""
        try:
            inside = [int(r[0]) for r in page if first_ms <= int(r[0]) <= last_ms]
        except (TypeError, ValueError):
            raise MalformedPayload(context, f"page {number} (startTime={cursor}) has a non-numeric open time",
                                   "the API changed or a proxy rewrote the body; report it") from None
        following = max(inside) + step if inside else cursor
        if following <= cursor:
            raise MalformedPayload(
                context, f"page {number} (startTime={cursor}) is full ({len(page)} klines) but does not advance the "
                "cursor: none of its bars lies after startTime inside the window",
                "nothing of this window is stored; report it to the provider and re-run later")
        return following

    def _frame(self, request: FetchRequest, rows: list[list[Any]], context: RequestContext) -> pl.DataFrame:
        try:
            instants = [int(r[0]) * 1000 for r in rows]
            columns = {name: [float(r[i]) for r in rows] for i, name in
                       enumerate(("open", "high", "low", "close", "volume"), start=1)}
        except (TypeError, ValueError) as error:
            raise MalformedPayload(context, f"kline fields are not numbers ({error})",
                                   "the API changed or a proxy rewrote the body; report it") from None
        return self.finalize(request, instants, columns)

    def history(self, symbol: str, timeframe: Timeframe) -> SymbolHistory:
        """First bar via startTime=0 (Binance returns the listing's first candle)."""
        context = RequestContext(self.name, symbol, timeframe, purpose="history")
        page = self._page(context, {"symbol": self.provider_symbol(symbol), "interval": INTERVALS[timeframe],
                                    "startTime": 0, "limit": 1})
        if not page:
            return SymbolHistory()
        return self.first_bar(dt.datetime.fromtimestamp(int(page[0][0]) / 1000, UTC), timeframe)

