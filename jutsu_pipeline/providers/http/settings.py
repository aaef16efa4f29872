"""Timeouts, retry, breaker and rate-limit settings of one provider, overridable from market options."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from pydantic import Field, field_validator

from jutsu_pipeline.providers.registry import ProviderOptions


@dataclass(frozen=True)
class HttpSettings:
    """All durations in seconds. Options with the same names (under `options.http`) override them."""

    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    write_timeout: float = 10.0
    pool_timeout: float = 10.0
    deadline: float = 60.0  # total time of one attempt, body included
    max_attempts: int = 5
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    backoff_jitter: float = 0.5
    retry_after_max: float = 120.0  # a longer Retry-After is not waited: the provider is put on hold instead
    ban_hold: float = 600.0  # how long an HTTP 418 without Retry-After holds the provider
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    requests_per_second: float = 5.0
    burst: float = 1.0
    weight_per_minute: float | None = None  # Binance REQUEST_WEIGHT budget
    weight_safety: float = 0.9  # use at most this share of the weight budget
    max_connections: int = 8

    def with_options(self, options: dict[str, Any] | None) -> HttpSettings:
        """A copy with keys of `options` that name a field applied (unknown keys are rejected)."""
        if not options:
            return self
        known = {f.name: f for f in fields(self)}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"unknown http option(s) {unknown}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        for key, value in options.items():
            default = getattr(self, key)
            values[key] = value if value is None else type(default if default is not None else 0.0)(value)
        return replace(self, **values)


class HttpOptions(ProviderOptions):
    """Options every HTTP provider accepts: the API host and `http` overrides of its HttpSettings."""

    base_url: str | None = None  # tests and the fake exchange point it at http://127.0.0.1:<port>
    http: dict[str, float | int | None] = Field(default_factory=dict)

    @field_validator("http")
    @classmethod
    def _known_http_keys(cls, value: dict[str, float | int | None]) -> dict[str, float | int | None]:
        HttpSettings().with_options(value)  # unknown keys raise, listing the known ones
        return value
