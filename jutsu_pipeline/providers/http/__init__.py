"""The shared HTTP layer of the market-data providers (httpx + tenacity, breaker, rate limiter)."""

from jutsu_pipeline.providers.http.client import HttpClient, Reply, parse_retry_after
from jutsu_pipeline.providers.http.errors import (
    AuthExpired,
    Banned,
    CircuitOpen,
    MalformedPayload,
    NotEntitled,
    RateLimited,
    RequestContext,
    RequestRejected,
    TransientServerError,
    Unauthorized,
    UnknownSymbolError,
)
from jutsu_pipeline.providers.http.limits import CircuitBreaker, TokenBucket
from jutsu_pipeline.providers.http.secrets import Secret, redact
from jutsu_pipeline.providers.http.settings import HttpSettings

__all__ = [
    "AuthExpired", "Banned", "CircuitBreaker", "CircuitOpen", "HttpClient", "HttpSettings", "MalformedPayload",
    "NotEntitled", "RateLimited", "Reply", "RequestContext", "RequestRejected", "Secret", "TokenBucket",
    "TransientServerError", "Unauthorized", "UnknownSymbolError", "parse_retry_after", "redact",
]
