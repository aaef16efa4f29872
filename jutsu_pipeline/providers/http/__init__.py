"""The shared HTTP layer of the market-data providers (httpx + tenacity, breaker, rate limiter).

Names load on first use, so reading the configuration (which needs only `settings.HttpOptions`) does not
import httpx and tenacity.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "HttpClient": "client", "Reply": "client", "parse_retry_after": "client",
    **dict.fromkeys(("AuthExpired", "Banned", "CircuitOpen", "MalformedPayload", "NotEntitled", "RateLimited",
                     "RequestContext", "RequestRejected", "TransientServerError", "Unauthorized",
                     "UnknownSymbolError"), "errors"),
    "CircuitBreaker": "limits", "TokenBucket": "limits", "Secret": "secrets", "redact": "secrets",
    "HttpSettings": "settings",
}
__all__ = [
    "AuthExpired", "Banned", "CircuitBreaker", "CircuitOpen", "HttpClient", "HttpSettings", "MalformedPayload",
    "NotEntitled", "RateLimited", "Reply", "RequestContext", "RequestRejected", "Secret", "TokenBucket",
    "TransientServerError", "Unauthorized", "UnknownSymbolError", "parse_retry_after", "redact",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
