"""Yahoo chart v8 with its cookie + crumb dance (`/fc`, `/v1/test/getcrumb`, `/v8/finance/chart/{symbol}`)."""

from __future__ import annotations

import datetime as dt
import secrets

from jutsu_fake_exchange.messages import Request, Response
from jutsu_fake_exchange.routes.common import keys_for_instants, local_midnight, served_bar

INTERVALS = {"1m": ("1m", 8), "5m": ("5m", 60), "60m": ("1h", 730), "1h": ("1h", 730), "1d": ("1d", None)}


def _chart_error(code: str, description: str, status: int) -> Response:
    return Response.json({"chart": {"result": None, "error": {"code": code, "description": description}}}, status)


def cookie(x, req: Request) -> Response:  # noqa: ANN001 - x: FakeExchange
    """Like fc.yahoo.com: a 404 page that sets the A3 cookie."""
    value = f"d=AQAB{secrets.token_hex(12)}"
    x.yahoo_sessions[value] = ""
    return Response(404, b"not found", {"Set-Cookie": f"A3={value}; Path=/; HttpOnly", "Content-Type": "text/plain"})


def crumb(x, req: Request) -> Response:  # noqa: ANN001
    session = req.cookies.get("A3")
    if session not in x.yahoo_sessions:
        return Response(403, b"Forbidden", {"Content-Type": "text/plain"})
    x.yahoo_sessions[session] = x.yahoo_sessions[session] or secrets.token_urlsafe(8)
    return Response(200, x.yahoo_sessions[session].encode(), {"Content-Type": "text/plain"})


def chart(x, req: Request) -> Response:  # noqa: ANN001
    session = req.cookies.get("A3")
    if not session or not x.yahoo_sessions.get(session) or req.params.get("crumb") != x.yahoo_sessions[session]:
        return Response.json({"finance": {"result": None, "error": {"code": "Unauthorized",
                                                                    "description": "Invalid Crumb"}}}, 401)
    symbol = req.path.rsplit("/", 1)[-1]
    spec = x.bars.spec(symbol)
    if spec is None:
        return _chart_error("Not Found", "No data found, symbol may be delisted", 404)
    interval = req.params.get("interval", "1d")
    if interval not in INTERVALS:
        return _chart_error("Unprocessable Entity", f"Invalid input - interval={interval} is not supported", 422)
    timeframe, cap_days = INTERVALS[interval]
    try:
        start, end = int(req.params["period1"]), int(req.params["period2"])
    except (KeyError, ValueError):
        return _chart_error("Bad Request", "period1 and period2 are required", 400)
    if cap_days is not None and end - start > cap_days * 86400:
        return _chart_error("Unprocessable Entity", f"{interval} data not available for startTime={start} and "
                            f"endTime={end}. The requested range must be within {cap_days} days.", 422)
    stamp = (lambda k: x.bars.session_open(symbol, k)) if timeframe == "1d" else (lambda k: k)
    now = int(x.clock.now())
    stamps, cols = [], {"open": [], "high": [], "low": [], "close": [], "volume": []}
    for key, instant in keys_for_instants(x, symbol, timeframe, start, end, stamp):
        values = served_bar(x, symbol, timeframe, key, "forming_jitter" in req.data_faults)
        if values is None:
            continue
        stamps.append(now if x.bars.bar_end(symbol, timeframe, key) > now else instant)  # live row: last trade
        for name, value in zip(cols, values, strict=True):
            cols[name].append(value)
    if "outside_range" in req.data_faults and stamps:  # Yahoo appends the latest price even after period2
        stamps.append(end + 3600)
        for name in cols:
            cols[name].append(cols[name][-1])
    if "nulls" in req.data_faults:
        for i in range(1, len(stamps), 5):
            for name in cols:
                cols[name][i] = None
    if "mismatched_arrays" in req.data_faults and stamps:
        cols["close"] = cols["close"][:-1]
    tz = "UTC" if spec.kind == "crypto" else "America/New_York"
    first = x.bars.times(symbol, "1d", 0, 2**40, 1)[0]
    result = {
        "meta": {"currency": "USD", "symbol": symbol, "exchangeTimezoneName": tz, "dataGranularity": interval,
                 "firstTradeDate": x.bars.session_open(symbol, first) if spec.kind == "equity" else int(first),
                 "regularMarketTime": now},
        "timestamp": stamps,
        "indicators": {"quote": [cols]},
    }
    if "div" in req.params.get("events", "") or "split" in req.params.get("events", ""):
        result["events"] = _events(x, symbol, start, end, req.params["events"])
    if timeframe == "1d":
        result["indicators"]["adjclose"] = [{"adjclose": [None if c is None else round(c * 0.99, 6)
                                                          for c in cols["close"]]}]
    return Response.json({"chart": {"result": [result], "error": None}})


def _events(x, symbol: str, start: int, end: int, wanted: str) -> dict:  # noqa: ANN001
    """Yahoo's `events`: dividends and splits keyed by the ex-date's session open (epoch s)."""
    out: dict[str, dict] = {}
    for action in x.corporate_actions:
        if action.symbol != symbol:
            continue
        key = int(dt.datetime.combine(action.ex_date, dt.time(), dt.timezone.utc).timestamp())
        instant = local_midnight(key, "America/New_York") + 9 * 3600 + 1800
        if not start <= instant < end:
            continue
        if action.kind == "split" and "split" in wanted:
            numerator, denominator = (action.ratio, 1.0) if (action.ratio or 1) >= 1 else (1.0, 1 / action.ratio)
            out.setdefault("splits", {})[str(instant)] = {
                "date": instant, "numerator": numerator, "denominator": denominator,
                "splitRatio": f"{numerator:g}:{denominator:g}"}
        elif action.kind == "dividend" and "div" in wanted:
            out.setdefault("dividends", {})[str(instant)] = {"amount": action.cash_amount, "date": instant}
    return out
