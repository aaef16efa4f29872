"""Binance spot `/api/v3/klines`, USD-M futures `/fapi/v1/klines` (limit up to 1500), and the server time."""

from __future__ import annotations

from jutsu_fake_exchange.bars import TIMEFRAME_SECONDS
from jutsu_fake_exchange.messages import Request, Response
from jutsu_fake_exchange.routes.common import served_bar

WEIGHT = 2


def _error(code: int, msg: str, status: int = 400) -> Response:
    return Response.json({"code": code, "msg": msg}, status)


def klines(x, req: Request, max_limit: int = 1000) -> Response:  # noqa: ANN001 - x: FakeExchange
    used, over = x.use_weight(WEIGHT)
    headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
    if over:
        return Response.json({"code": -1003, "msg": "Too much request weight used."}, 429,
                             {**headers, "Retry-After": "10"})
    symbol = req.params.get("symbol", "")
    spec = x.bars.spec(symbol)
    if spec is None:
        return _error(-1121, "Invalid symbol.")
    interval = req.params.get("interval", "")
    if interval not in TIMEFRAME_SECONDS:  # Binance names its intervals as the exchange's timeframes
        return _error(-1120, "Invalid interval.")
    try:
        limit = int(req.params.get("limit", "500"))
        start_ms = int(req.params["startTime"]) if "startTime" in req.params else None
        end_ms = int(req.params["endTime"]) if "endTime" in req.params else None
    except ValueError:
        return _error(-1100, "Illegal characters found in a parameter.")
    if not 1 <= limit <= max_limit:
        return _error(-1130, "Data sent for parameter 'limit' is not valid.")
    tf, size = interval, TIMEFRAME_SECONDS[interval]
    now = int(x.clock.now())
    upper = now + 1 if end_ms is None else min(end_ms // 1000 + 1, now + 1)
    if start_ms is None:
        keys = x.bars.times(symbol, tf, upper - (limit + 1) * size, upper)[-limit:]
    else:
        lo = -(-start_ms // 1000)
        if "duplicate_boundary" in req.data_faults:
            lo -= size
        if "stuck_cursor" in req.data_faults:  # serves the previous page again, ignoring startTime
            lo -= limit * size
        keys = x.bars.times(symbol, tf, lo, upper, limit)
        if "outside_range" in req.data_faults and keys:
            keys = [keys[0] - size, *keys, keys[-1] + size]
    rows = []
    for key in keys:
        values = served_bar(x, symbol, tf, key, "forming_jitter" in req.data_faults)
        if values is None and "outside_range" not in req.data_faults:
            continue
        o, h, low, c, v = values or x.bars.bar(symbol, tf, key)
        rows.append([key * 1000, f"{o:.8f}", f"{h:.8f}", f"{low:.8f}", f"{c:.8f}", f"{v:.8f}",
                     (key + size) * 1000 - 1, f"{v * c:.8f}", 10, f"{v / 2:.8f}", f"{v * c / 2:.8f}", "0"])
    if rows and "future_bar" in req.data_faults:  # the page's last bar stamped 30 days after the exchange's now
        rows[-1][0] = ((now + 30 * 86400) // size * size) * 1000
    if rows and "conflicting_duplicate" in req.data_faults:  # the first bar again, with another close
        twin = list(rows[0])
        twin[4] = f"{float(twin[4]) * 1.01:.8f}"
        twin[2] = f"{max(float(twin[2]), float(twin[4])):.8f}"
        rows.insert(1, twin)
    if rows and "off_grid" in req.data_faults:  # the first bar stamped half a bar late
        rows[0][0] += size * 500
    if "descending" in req.data_faults:
        rows.reverse()
    return Response.json(rows, headers=headers)


def server_time(x, req: Request) -> Response:  # noqa: ANN001
    return Response.json({"serverTime": int(x.clock.now() * 1000)})
