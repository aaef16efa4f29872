"""The fake exchange: a real HTTP/1.1 server on 127.0.0.1 (random port, background thread)."""

from __future__ import annotations

import datetime as dt
import email.utils
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jutsu_fake_exchange.bars import DEFAULT_SYMBOLS, BarSource, SymbolSpec, xnys_sessions
from jutsu_fake_exchange.faults import DATA_KINDS, Fault, FaultPlan
from jutsu_fake_exchange.messages import Request, Response
from jutsu_fake_exchange.routes import ROUTES, SchwabAuthState

UTC = dt.timezone.utc
HTML_PAGE = b"<!DOCTYPE html><html><head><title>Will be right back</title></head><body>Down</body></html>"


class FakeClock:
    """The exchange's notion of now: real time, or frozen at a set instant."""

    def __init__(self) -> None:
        self._frozen: float | None = None

    def now(self) -> float:
        frozen = self._frozen  # one read: another thread may reset it
        return frozen if frozen is not None else time.time()

    def now_dt(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now(), UTC)

    def set(self, when: dt.datetime) -> None:
        """Freeze the clock at `when`."""
        self._frozen = when.timestamp()

    def advance(self, delta: dt.timedelta) -> None:
        """Freeze the clock `delta` after now."""
        self.set(self.now_dt() + delta)

    def reset(self) -> None:
        self._frozen = None


@dataclass(frozen=True)
class FakeAction:
    """A split (`ratio` new shares per old share) or cash dividend (`cash_amount`) the exchange publishes."""

    symbol: str
    ex_date: dt.date
    kind: str  # 'split' or 'dividend'
    ratio: float | None = None
    cash_amount: float | None = None


@dataclass(frozen=True)
class LoggedRequest:
    at: float  # time.monotonic() when the request arrived
    method: str
    route: str
    path: str
    params: dict[str, str]
    status: int
    faults: tuple[str, ...]


class _Bucket:
    """The exchange's own limiter: `rate` requests/s with a burst of `rate`."""

    def __init__(self, rate: float) -> None:
        self.rate, self.tokens, self.stamp = rate, rate, time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


Handler = Callable[["FakeExchange", Request], Response]


class _HTTPHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # otherwise Nagle + delayed ACK add ~40 ms to every response
    server: _Server

    def do_GET(self) -> None:  # noqa: N802
        self.server.exchange.handle(self)

    do_POST = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr access log
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    exchange: FakeExchange


class FakeExchange:
    """Binance, Alpaca, Schwab and Yahoo protocols on one local port. Use as a context manager.

    Controls: `clock`, `faults` (FaultPlan), `latency` (s per request), `set_rate_limit(n)` (requests/s,
    429 beyond), `log` (requests), `schwab` (OAuth state). Credentials it accepts are attributes.
    """

    def __init__(self, *, port: int = 0, seed: int = 7, symbols: tuple[SymbolSpec, ...] = DEFAULT_SYMBOLS,
                 latency: float = 0.0, rate_limit: float | None = None,
                 alpaca_key_id: str = "fake-alpaca-key-id", alpaca_secret_key: str = "fake-alpaca-secret-key",
                 schwab_client_id: str = "fake-schwab-client-id",
                 schwab_client_secret: str = "fake-schwab-client-secret") -> None:
        self.bars = BarSource(symbols, seed)
        self.clock = FakeClock()
        self.faults = FaultPlan()
        self.latency = latency
        self.alpaca_key_id, self.alpaca_secret_key = alpaca_key_id, alpaca_secret_key
        self.alpaca_sip_delay = dt.timedelta(minutes=15)  # recent SIP bars are refused (free plan)
        self.schwab = SchwabAuthState(self, schwab_client_id, schwab_client_secret)
        self.yahoo_sessions: dict[str, str] = {}  # cookie value -> crumb
        self.corporate_actions: list[FakeAction] = []  # served by Alpaca's actions endpoint and Yahoo's events
        self.binance_weight_limit = 6000
        self._weight_window: tuple[int, int] = (0, 0)  # (minute, used weight)
        self._routes = ROUTES
        self._bucket: _Bucket | None = None
        self.rate_limit_retry_after = 1.0  # Retry-After (s) of the exchange's own 429s
        self.set_rate_limit(rate_limit)
        self.log: list[LoggedRequest] = []
        self._log_lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), _HTTPHandler)
        self._server.exchange = self
        self.port = self._server.server_address[1]

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def base_urls(self) -> dict[str, str]:
        """The `base_url` option of each provider (and Yahoo's cookie URL) for this server."""
        return {"binance": self.url, "alpaca": self.url, "schwab": self.url, "yahoo": self.url,
                "yahoo_cookie_url": f"{self.url}/fc"}

    def start(self) -> FakeExchange:
        if any(spec.kind == "equity" for spec in self.bars.symbols.values()):
            xnys_sessions()  # load the exchange calendar before the first request, not during it
        threading.Thread(target=self._server.serve_forever, name=f"fake-exchange-{self.port}",
                         kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Clear faults, log, clock and rate limit (between tests sharing one server)."""
        self.faults.clear()
        self.clock.reset()
        self.set_rate_limit(None)
        self.latency = 0.0
        with self._log_lock:
            self.log.clear()

    def set_rate_limit(self, per_second: float | None) -> None:
        self._bucket = _Bucket(per_second) if per_second else None

    # -- request log -----------------------------------------------------------------------------
    def requests(self, route: str | None = None) -> list[LoggedRequest]:
        with self._log_lock:
            return [r for r in self.log if route is None or r.route == route]

    def count(self, route: str | None = None, status: int | None = None) -> int:
        return sum(1 for r in self.requests(route) if status is None or r.status == status)

    # -- Binance weight --------------------------------------------------------------------------
    def use_weight(self, weight: int) -> tuple[int, bool]:
        """Add weight in the current minute; returns (used, over_limit)."""
        with self._log_lock:
            minute = int(self.clock.now() // 60)
            current, used = self._weight_window
            used = used + weight if current == minute else weight
            self._weight_window = (minute, used)
            return used, used > self.binance_weight_limit

    def set_used_weight(self, used: int) -> None:
        """Weight already used in the current minute of the exchange's clock (freeze it to keep the minute)."""
        with self._log_lock:
            self._weight_window = (int(self.clock.now() // 60), used)

    # -- dispatch --------------------------------------------------------------------------------
    def handle(self, h: _HTTPHandler) -> None:
        arrived = time.monotonic()
        url = urlsplit(h.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        length = int(h.headers.get("Content-Length") or 0)
        raw_form = h.rfile.read(length).decode() if length else ""
        cookies = {k: m.value for k, m in SimpleCookie(h.headers.get("Cookie", "")).items()}
        route, handler = self._match(h.command, url.path)
        if self.latency:
            time.sleep(self.latency)
        faults = self.faults.next(route, params) if route != "unknown" else []
        transport = next((f for f in faults if f.kind not in DATA_KINDS), None)
        request = Request(h.command, url.path, params, {k.lower(): v for k, v in h.headers.items()},
                          dict(parse_qsl(raw_form)), cookies, frozenset(f.kind for f in faults if f.kind in DATA_KINDS))
        if route in _LIMITED_ROUTES and self._bucket is not None and not self._bucket.take():
            response = Response.json({"code": -1003, "message": "rate limit exceeded"}, 429,
                                     {"Retry-After": f"{self.rate_limit_retry_after:g}"})
            transport = None
        elif transport is not None and transport.kind == "status":
            response = self._status_fault(transport)
        else:
            response = handler(self, request)
        body = response.body
        if transport is not None and transport.kind == "truncated_json" and response.status == 200:
            body = body[: max(len(body) // 2, 1)]
        elif transport is not None and transport.kind == "html_200":
            response = Response(200, HTML_PAGE, {"Content-Type": "text/html; charset=utf-8"})
            body = response.body
        with self._log_lock:
            self.log.append(LoggedRequest(arrived, h.command, route, url.path, params, response.status,
                                          tuple(f.kind for f in faults)))
        self._write(h, response, body, transport)

    def _match(self, method: str, path: str) -> tuple[str, Handler]:
        for (route_method, prefix), (route, handler) in self._routes.items():
            if method == route_method and (path == prefix or (prefix.endswith("/") and path.startswith(prefix))):
                return route, handler
        return "unknown", _not_found

    def _status_fault(self, fault: Fault) -> Response:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            if fault.http_date:
                # HTTP-dates have 1 s resolution: round up so the client never waits less than asked.
                headers["Retry-After"] = email.utils.formatdate(int(self.clock.now() + fault.retry_after + 0.999),
                                                                usegmt=True)
            else:
                headers["Retry-After"] = f"{fault.retry_after:g}"
        body = (fault.body or '{"message":"fault"}').encode()
        return Response(fault.status or 500, body, {"Content-Type": "application/json", **headers})

    def _write(self, h: _HTTPHandler, response: Response, body: bytes, fault: Fault | None) -> None:
        kind = fault.kind if fault else None
        if kind == "slow_headers":
            time.sleep(fault.seconds if fault else 0)
        h.send_response_only(response.status)
        h.send_header("Date", email.utils.formatdate(self.clock.now(), usegmt=True))
        h.send_header("Server", "fake-exchange")
        for name, value in response.headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            if kind in ("drop_mid_body", "stall_body"):
                h.wfile.write(body[: len(body) // 2])
                h.wfile.flush()
                if kind == "stall_body" and fault:
                    time.sleep(fault.seconds)
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            h.wfile.write(body)
            h.wfile.flush()
        except OSError:
            h.close_connection = True


_LIMITED_ROUTES = frozenset({"binance", "binance_futures", "alpaca", "schwab", "yahoo"})


def _not_found(exchange: FakeExchange, request: Request) -> Response:
    return Response.json({"message": f"no route {request.method} {request.path}"}, 404)
