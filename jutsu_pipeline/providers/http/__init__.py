"""The shared HTTP layer of the market-data providers (httpx + tenacity, breaker, rate limiter); names load
on first use, so reading the configuration (`settings.HttpOptions`) imports no httpx and tenacity."""

from __future__ import annotations

from jutsu_pipeline.lazy import lazy_names

_WHERE = {
    "HttpClient": "client", "Reply": "client", "parse_retry_after": "client",
    **dict.fromkeys(("AuthExpired", "Banned", "CircuitOpen", "MalformedPayload", "NotEntitled", "RateLimited",
                     "RequestContext", "RequestRejected", "TransientServerError", "Unauthorized",
                     "UnknownSymbolError"), "errors"),
    "CircuitBreaker": "limits", "TokenBucket": "limits", "Secret": "secrets", "redact": "secrets",
    "HttpSettings": "settings",
}
__all__ = sorted(_WHERE)
__getattr__ = lazy_names(__name__, _WHERE)
