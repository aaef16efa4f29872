"""Provider error types: each message names provider, symbol, window and what to do, never a secret."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from jutsu_pipeline.providers.base import ProviderError, UnknownSymbolError  # noqa: F401 - re-exported
from jutsu_pipeline.timeframes import Timeframe


def iso_utc(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RequestContext:
    """What a request is for, so errors can name it (provider, symbol, timeframe, window)."""

    provider: str
    symbol: str | None = None
    timeframe: Timeframe | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    purpose: str = "bars"

    def describe(self) -> str:
        if self.symbol is None:
            return f"{self.provider} ({self.purpose})"
        window = ""
        if self.start is not None and self.end is not None:
            window = f" window [{iso_utc(self.start)}, {iso_utc(self.end)})"
        timeframe = f" {self.timeframe.value}" if self.timeframe is not None else ""
        purpose = f" ({self.purpose})" if self.purpose != "bars" else ""
        return f"{self.provider} {self.symbol}{timeframe}{window}{purpose}"

    def for_purpose(self, purpose: str) -> RequestContext:
        """The same symbol and window, for an auxiliary request (token refresh, crumb)."""
        return replace(self, purpose=purpose)


class HttpProviderError(ProviderError):
    """A provider error raised by the HTTP layer; `retryable` tells tenacity whether to try again."""

    retryable: bool = False
    counts_as_failure: bool = False  # for the circuit breaker

    def __init__(self, context: RequestContext, problem: str, advice: str, *, status: int | None = None) -> None:
        self.context = context
        self.status = status
        super().__init__(f"{context.describe()}: {problem}. {advice}")


class RateLimited(HttpProviderError):
    """HTTP 429 (or an equivalent); retried after Retry-After unless it exceeds the cap."""

    def __init__(self, context: RequestContext, problem: str, advice: str, *, retry_after: float | None,
                 retryable: bool = True, status: int | None = 429) -> None:
        self.retry_after = retry_after
        self.retryable = retryable
        super().__init__(context, problem, advice, status=status)


class Banned(RateLimited):
    """HTTP 418: the provider banned this IP for continuing after 429s."""


class ProviderOnHold(HttpProviderError):
    """Not sent: the provider is on hold after a ban or a long Retry-After (in this or another run)."""

    def __init__(self, context: RequestContext, hold) -> None:  # noqa: ANN001 - hold.Hold
        self.hold = hold
        super().__init__(context, f"not requested: {hold.describe()}",
                         f"nothing is sent to {hold.provider} before then, by this run or any other run of this "
                         f"Dagster instance; these partitions stay missing and `jutsu sync` (or the gap sensor) "
                         f"fetches them after {hold.until:%Y-%m-%d %H:%M:%S} UTC")


class AuthExpired(HttpProviderError):
    """Credentials are missing, invalid or expired; a human must renew them."""


class Unauthorized(AuthExpired):
    """HTTP 401 on a data request: the access token was rejected (providers refresh once, then raise)."""


class NotEntitled(HttpProviderError):
    """The account's plan does not include this data (e.g. recent SIP bars on a free Alpaca plan)."""


class MalformedPayload(HttpProviderError):
    """The body is not what the protocol promises (HTML with 200, truncated JSON, mismatched arrays); retried
    only when `transient` (the server may send the right one next time)."""

    counts_as_failure = True

    def __init__(self, context: RequestContext, problem: str, advice: str, *, transient: bool = False,
                 status: int | None = None) -> None:
        self.retryable = transient
        super().__init__(context, problem, advice, status=status)


class TransientServerError(HttpProviderError):
    """5xx, timeouts, dropped connections: retried, then raised when retries are exhausted."""

    retryable = True
    counts_as_failure = True
    retry_after: float | None = None  # a 503's Retry-After, honoured by the retry wait


class CircuitOpen(HttpProviderError):
    """The provider failed repeatedly; requests fail fast until the breaker half-opens."""


class RequestRejected(HttpProviderError):
    """Any other 4xx the provider does not map to a more specific type (not retried)."""
