"""Alpaca market data v2 `/v2/stocks/bars` (multi-symbol, next_page_token cursor, 15-min SIP delay)."""

from __future__ import annotations

import base64
import datetime as dt

from jutsu_fake_exchange.messages import Request, Response
from jutsu_fake_exchange.routes.common import keys_for_instants, local_midnight, served_bar

UTC = dt.timezone.utc
TIMEFRAMES = {"1Min": "1m", "5Min": "5m", "1Hour": "1h", "1Day": "1d"}
ADJUSTMENTS = {"raw", "split", "dividend", "all"}
FEEDS = {"iex", "sip", "delayed_sip"}


def _parse_time(value: str) -> int:
    if len(value) == 10:
        return int(dt.datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp())
    return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def _iso(instant: int) -> str:
    return dt.datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token(symbol: str, instant: int) -> str:
    return base64.b64encode(f"{symbol}|{_iso(instant)}".encode()).decode()


def bars(x, req: Request) -> Response:  # noqa: ANN001 - x: FakeExchange
    if (req.headers.get("apca-api-key-id") != x.alpaca_key_id
            or req.headers.get("apca-api-secret-key") != x.alpaca_secret_key):
        return Response.json({"message": "unauthorized."}, 401)
    p = req.params
    timeframe = TIMEFRAMES.get(p.get("timeframe", ""))
    if timeframe is None:
        return Response.json({"message": "invalid timeframe"}, 400)
    if p.get("adjustment", "raw") not in ADJUSTMENTS or p.get("feed", "sip") not in FEEDS:
        return Response.json({"message": "invalid adjustment or feed"}, 400)
    try:
        limit = int(p.get("limit", "1000"))
        now = int(x.clock.now())
        start = _parse_time(p["start"]) if "start" in p else now - 86400
        end = _parse_time(p["end"]) if "end" in p else now
    except (KeyError, ValueError):
        return Response.json({"message": "invalid start or end"}, 400)
    if not 1 <= limit <= 10000:
        return Response.json({"message": "invalid limit: must be between 1 and 10000"}, 422)
    if p.get("feed", "sip") == "sip" and end > now - x.alpaca_sip_delay.total_seconds():
        return Response.json({"message": "subscription does not permit querying recent SIP data"}, 403)
    cursor: tuple[str, int] | None = None
    if p.get("page_token"):
        symbol_part, _, stamp_part = base64.b64decode(p["page_token"]).decode().partition("|")
        cursor = (symbol_part, _parse_time(stamp_part))
    symbols = sorted(s for s in p.get("symbols", "").split(",") if s)
    stamp = (lambda key: local_midnight(key, "America/New_York")) if timeframe == "1d" else (lambda key: key)
    out: dict[str, list[dict]] = {}
    taken, next_token = 0, None
    last: tuple[str, int] = ("", 0)  # the last bar served; set before `taken` can reach `limit` (>= 1)
    for symbol in symbols:
        if x.bars.spec(symbol) is None or (cursor and symbol < cursor[0]):
            continue
        lo = cursor[1] + 1 if cursor and symbol == cursor[0] else start
        if cursor and symbol == cursor[0] and "duplicate_boundary" in req.data_faults:
            lo = cursor[1]
        items = keys_for_instants(x, symbol, timeframe, lo, min(end, now) + 1, stamp)
        for key, instant in items:
            if taken == limit:
                next_token = _token(*last)
                break
            values = served_bar(x, symbol, timeframe, key, "forming_jitter" in req.data_faults)
            if values is None:
                continue
            o, h, low, c, v = values
            stamp_text = _iso(instant)[:-1] if "naive_timestamps" in req.data_faults else _iso(instant)
            out.setdefault(symbol, []).append({"t": stamp_text, "o": o, "h": h, "l": low, "c": c, "v": v,
                                               "n": 100, "vw": round((h + low + c) / 3, 6)})
            taken, last = taken + 1, (symbol, instant)
        if next_token:
            break
    if "descending" in req.data_faults:
        out = {s: rows[::-1] for s, rows in out.items()}
    headers = {"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "199", "X-RateLimit-Reset": str(now + 60)}
    return Response.json({"bars": out, "next_page_token": next_token, "currency": "USD"}, headers=headers)


def corporate_actions(x, req: Request) -> Response:  # noqa: ANN001 - x: FakeExchange
    """`/v1/corporate-actions`: grouped by type, filtered by symbols, types and ex-date range; 2 per page."""
    if (req.headers.get("apca-api-key-id") != x.alpaca_key_id
            or req.headers.get("apca-api-secret-key") != x.alpaca_secret_key):
        return Response.json({"message": "unauthorized."}, 401)
    p = req.params
    symbols = {s for s in p.get("symbols", "").split(",") if s}
    types = {t for t in p.get("types", "forward_split,reverse_split,cash_dividend").split(",") if t}
    try:
        start = dt.date.fromisoformat(p.get("start", "1900-01-01"))
        end = dt.date.fromisoformat(p.get("end", "2100-01-01"))
        offset = int(p.get("page_token") or 0)
    except ValueError:
        return Response.json({"message": "invalid start, end or page_token"}, 400)
    matching = [a for a in sorted(x.corporate_actions, key=lambda a: (a.ex_date, a.symbol))
                if (not symbols or a.symbol in symbols) and start <= a.ex_date <= end]
    grouped: dict[str, list[dict]] = {}
    items = []
    for action in matching:
        if action.kind == "split":
            kind = "forward_split" if (action.ratio or 1) >= 1 else "reverse_split"
            new, old = (action.ratio, 1.0) if kind == "forward_split" else (1.0, 1 / (action.ratio or 1))
            item = {"symbol": action.symbol, "new_rate": new, "old_rate": old}
        else:
            kind = "cash_dividend"
            item = {"symbol": action.symbol, "rate": action.cash_amount, "special": False, "foreign": False}
        if kind in types:
            day = action.ex_date.isoformat()
            items.append((kind + "s", {**item, "process_date": day, "ex_date": day, "record_date": day,
                                       "payable_date": day}))
    page = items[offset:offset + 2]
    for group, item in page:
        grouped.setdefault(group, []).append(item)
    token = str(offset + 2) if offset + 2 < len(items) else None
    return Response.json({"corporate_actions": grouped, "next_page_token": token})
