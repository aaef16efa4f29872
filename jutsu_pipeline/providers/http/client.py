"""The shared HTTP client: httpx with explicit timeouts, tenacity retries, breaker and rate limiter."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from jutsu_pipeline.providers.base import FetchStats, ProviderError
from jutsu_pipeline.providers.http.budget import SharedTokenBucket, budget_key, budget_path
from jutsu_pipeline.providers.http.errors import (
    Banned,
    CircuitOpen,
    HttpProviderError,
    MalformedPayload,
    ProviderOnHold,
    RateLimited,
    RequestContext,
    RequestRejected,
    TransientServerError,
)
from jutsu_pipeline.providers.http.hold import current_store
from jutsu_pipeline.providers.http.limits import CircuitBreaker, TokenBucket
from jutsu_pipeline.providers.http.secrets import install_log_redaction, redact
from jutsu_pipeline.providers.http.settings import HttpSettings

log = logging.getLogger("jutsu_pipeline.providers.http")
UTC = dt.timezone.utc
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
_CHUNK = 65536

# Limiters are per provider (name + base URL + credentials): one SQLite-backed budget for every process
# (budget.py), or per process when no budget file is configured. Breakers are per process.
_shared_lock = threading.Lock()
_limiters: dict[tuple, TokenBucket | SharedTokenBucket] = {}
_breakers: dict[tuple[str, str], CircuitBreaker] = {}


def shared_limiter(key: tuple[str, str, str], rate: float, capacity: float,
                   identity: str | None = None) -> TokenBucket | SharedTokenBucket:
    """The bucket of `key` (provider, base URL, scope) and credential `identity`: shared by all processes
    through the budget file when there is one, else by all instances of this process."""
    path = budget_path()
    cache_key = (*key, identity, rate, capacity, str(path))
    with _shared_lock:
        if cache_key not in _limiters:
            _limiters[cache_key] = (TokenBucket(rate, capacity) if path is None
                                    else SharedTokenBucket(path, budget_key(*key, identity), rate, capacity))
        return _limiters[cache_key]


@dataclass
class Reply:
    """A successful response: status, headers and raw body."""

    status: int
    headers: httpx.Headers
    body: bytes
    data: Any = None  # the parsed JSON body when the request expected JSON

    def json(self, context: RequestContext) -> Any:
        """The body as JSON; HTML or truncated JSON raise a (retryable) MalformedPayload."""
        text = self.body.decode("utf-8", errors="replace")
        head = text.lstrip()[:1]
        if head == "<" or "html" in self.headers.get("content-type", "").lower():
            raise MalformedPayload(context, f"got HTML instead of JSON (HTTP {self.status})",
                                   "the provider is probably down or blocking this client; retry later",
                                   transient=True, status=self.status)
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise MalformedPayload(context, f"invalid or truncated JSON ({len(self.body)} bytes, {error.msg} "
                                   f"at {error.pos})", "retry later; report it if it persists",
                                   transient=True, status=self.status) from None


# Maps a non-2xx response the HTTP layer does not handle itself to a provider error (or None).
ErrorMapper = Callable[[int, str, RequestContext], ProviderError | None]


def parse_retry_after(value: str | None, server_time: dt.datetime | None) -> float | None:
    """Seconds to wait from a Retry-After header in seconds or HTTP-date form (None if absent/invalid)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        when = _http_date(value)
    return None if when is None else max((when - (server_time or dt.datetime.now(UTC))).total_seconds(), 0.0)


def _http_date(value: str) -> dt.datetime | None:
    """An HTTP-date header value (UTC when it names no zone), or None if it is not one."""
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _wait_retry_after(fallback: Callable[[RetryCallState], float], cap: float) -> Callable[[RetryCallState], float]:
    """A tenacity wait: the last error's Retry-After (at most `cap`) when the server sent one, else `fallback`."""
    def wait(state: RetryCallState) -> float:
        retry_after = getattr(state.outcome.exception() if state.outcome else None, "retry_after", None)
        return fallback(state) if retry_after is None else min(retry_after, cap)

    return wait


class HttpClient:
    """One reused httpx.Client per provider instance; `request` returns a Reply or raises a ProviderError."""

    def __init__(self, provider: str, base_url: str, settings: HttpSettings, stats: FetchStats, *,
                 headers: Mapping[str, str] | None = None, error_mapper: ErrorMapper | None = None,
                 identity: str | None = None) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self.stats = stats
        self._error_mapper = error_mapper
        timeout = httpx.Timeout(connect=settings.connect_timeout, read=settings.read_timeout,
                                write=settings.write_timeout, pool=settings.pool_timeout)
        self._client = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers=dict(headers or {}), follow_redirects=False,
            limits=httpx.Limits(max_connections=settings.max_connections,
                                max_keepalive_connections=settings.max_connections),
        )
        install_log_redaction("httpx", "httpcore", log.name)
        self.limiter = shared_limiter((provider, self.base_url, "requests"), settings.requests_per_second,
                                      max(settings.burst, 1.0), identity)
        self.weight_limiter: TokenBucket | SharedTokenBucket | None = None
        if settings.weight_per_minute:
            budget = settings.weight_per_minute * settings.weight_safety
            self.weight_limiter = shared_limiter((provider, self.base_url, "weight"), budget / 60.0, budget, identity)
        with _shared_lock:
            self.breaker = _breakers.setdefault((provider, self.base_url),
                                                CircuitBreaker(settings.breaker_threshold, settings.breaker_cooldown))
        self.holds = current_store()  # bans and long back-offs, shared by every run of the Dagster instance
        self._clock_lock = threading.Lock()
        self._server_time: tuple[dt.datetime, float] | None = None

    # -- clock ---------------------------------------------------------------------------------
    def server_now(self) -> dt.datetime:
        """The provider's clock: the last Date header plus the time elapsed since (local clock before any)."""
        with self._clock_lock:
            if self._server_time is None:
                return dt.datetime.now(UTC)
            stamp, mono = self._server_time
        return stamp + dt.timedelta(seconds=time.monotonic() - mono)

    def _observe_date(self, headers: httpx.Headers) -> dt.datetime | None:
        when = _http_date(headers.get("date") or "")
        if when is not None:
            with self._clock_lock:
                self._server_time = (when, time.monotonic())
        return when

    # -- requests ------------------------------------------------------------------------------
    def request(self, method: str, path: str, context: RequestContext, *, params: Mapping[str, Any] | None = None,
                headers: Mapping[str, str] | None = None, data: Mapping[str, str] | None = None,
                auth: tuple[str, str] | None = None, weight: float = 1.0,
                on_response: Callable[[httpx.Response], None] | None = None,
                error_mapper: ErrorMapper | None = None, ok_statuses: frozenset[int] = frozenset(),
                expect_json: bool = True) -> Reply:
        """Send with retries for transient failures, else raise a ProviderError; a 2xx JSON body is parsed into
        `Reply.data`; `ok_statuses` return, `error_mapper` maps other non-2xx statuses to specific errors."""
        s = self.settings
        retrying = Retrying(
            retry=retry_if_exception(lambda error: isinstance(error, HttpProviderError) and error.retryable),
            stop=stop_after_attempt(max(s.max_attempts, 1)),
            wait=_wait_retry_after(wait_exponential_jitter(multiplier=s.backoff_initial, max=s.backoff_max,
                                                           jitter=s.backoff_jitter), s.retry_after_max),
            before_sleep=lambda state: self._log_retry(state, context),
            reraise=True,
        )
        send = partial(self._send, method, path, context, params=params, headers=headers, data=data, auth=auth,
                       on_response=on_response, error_mapper=error_mapper or self._error_mapper,
                       ok_statuses=ok_statuses, expect_json=expect_json)
        return retrying(self._attempt, context, weight, send)

    def _log_retry(self, state: RetryCallState, context: RequestContext) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        self.stats.extra["retries"] = self.stats.extra.get("retries", 0) + 1
        self.stats.extra["retry_wait_ms"] = self.stats.extra.get("retry_wait_ms", 0) + round(wait * 1000)
        log.warning("%s: attempt %d failed (%s); retrying in %.2f s", context.describe(), state.attempt_number,
                    redact(type(error).__name__ + (f" HTTP {status}" if (status := getattr(error, "status", None)) else "")),
                    wait)

    def _attempt(self, context: RequestContext, weight: float, send: Callable[[], Reply]) -> Reply:
        hold = self.holds.active(self.provider, self.base_url)
        if hold is not None:
            raise ProviderOnHold(context, hold)
        wait_open = self.breaker.allow()
        if wait_open is not None:
            raise CircuitOpen(context, f"circuit breaker open after {self.settings.breaker_threshold} consecutive "
                              f"failures of {self.provider}", f"not calling it for {wait_open:.1f} s more; check the "
                              "provider's status and re-run the failed partitions later")
        self.limiter.acquire(1.0)
        if self.weight_limiter is not None:
            self.weight_limiter.acquire(weight)
        self.stats.requests += 1
        try:
            reply = send()
        except ProviderError as error:
            if isinstance(error, HttpProviderError) and error.counts_as_failure:
                self.breaker.record_failure()
            else:
                self.breaker.record_neutral()
            raise
        self.breaker.record_success()
        return reply

    def _send(self, method: str, path: str, context: RequestContext, *, params: Mapping[str, Any] | None,
              headers: Mapping[str, str] | None, data: Mapping[str, str] | None, auth: tuple[str, str] | None,
              on_response: Callable[[httpx.Response], None] | None, error_mapper: ErrorMapper | None,
              ok_statuses: frozenset[int], expect_json: bool) -> Reply:
        deadline = time.monotonic() + self.settings.deadline
        request = self._client.build_request(method, path, params=params, headers=headers, data=data)
        try:
            response = self._client.send(request, stream=True, auth=httpx.BasicAuth(*auth) if auth else None)
            try:
                chunks: list[bytes] = []
                for chunk in response.iter_bytes(_CHUNK):
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise TransientServerError(context, f"response exceeded the {self.settings.deadline:.1f} s "
                                                   "deadline", "retry later; raise options.http.deadline if the "
                                                   "provider is just slow")
            finally:
                response.close()
        except httpx.TimeoutException as error:
            raise TransientServerError(context, f"timed out ({type(error).__name__})",
                                       "retry later; raise options.http.read_timeout if the provider is slow") from None
        except httpx.TransportError as error:
            raise TransientServerError(context, f"connection failed ({type(error).__name__})",
                                       "retry later; check connectivity to the provider") from None
        body = b"".join(chunks)
        server_time = self._observe_date(response.headers)
        if on_response is not None:
            on_response(response)
        if response.status_code not in ok_statuses:
            self._raise_for_status(response.status_code, response.headers, body, server_time, context, error_mapper)
        reply = Reply(response.status_code, response.headers, body)
        if expect_json and response.status_code < 300:
            reply.data = reply.json(context)  # inside the attempt: truncated JSON / HTML are retried
        return reply

    def _raise_for_status(self, status: int, headers: httpx.Headers, body: bytes, server_time: dt.datetime | None,
                          context: RequestContext, error_mapper: ErrorMapper | None) -> None:
        if status < 300:
            return
        text = redact(body[:300].decode("utf-8", errors="replace").strip())
        cap = self.settings.retry_after_max
        retry_after = parse_retry_after(headers.get("retry-after"), server_time)
        too_long = retry_after is not None and retry_after > cap
        if status in (429, 418) or (status == 503 and too_long):
            kind = Banned if status == 418 else RateLimited
            what = {418: "banned this IP (HTTP 418)", 429: "rate limited this client (HTTP 429)",
                    503: "is unavailable (HTTP 503)"}[status]
            wait = f"Retry-After {retry_after:.0f} s" if retry_after is not None else "no Retry-After"
            if status == 418 or too_long:  # a ban or a long back-off: every later request of every run waits
                seconds = retry_after if retry_after is not None else self.settings.ban_hold
                hold = self.holds.put(self.provider, self.base_url, seconds, status, f"HTTP {status}, {wait}")
                advice = (f"waiting longer than options.http.retry_after_max={cap:.0f} s is not done automatically"
                          if too_long else "a ban is never retried") + \
                    f"; re-run after {seconds:.0f} s ({hold.describe()}) and lower options.http.requests_per_second"
                raise kind(context, f"{what}, {wait}", advice, retry_after=retry_after, retryable=False, status=status)
            if retry_after is not None:  # every process sharing the rate budget waits, not only this request
                self.limiter.hold(retry_after)
            raise kind(context, f"{what}, {wait}", "lower options.http.requests_per_second or run fewer concurrent "
                       "syncs", retry_after=retry_after, retryable=True, status=status)
        if status in TRANSIENT_STATUSES:
            error = TransientServerError(context, f"server error HTTP {status}",
                                         "the provider is failing; retry later", status=status)
            error.retry_after = retry_after  # honoured by the retry wait when present (503)
            raise error
        if error_mapper is not None:
            mapped = error_mapper(status, text, context)
            if mapped is not None:
                raise mapped
        raise RequestRejected(context, f"request rejected with HTTP {status}: {text[:200]}",
                              "check the symbol, timeframe and options; this is not retried", status=status)

    def close(self) -> None:
        self._client.close()
