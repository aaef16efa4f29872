"""Common plumbing of the HTTP providers: options, credentials, the client, stats and finality."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from jutsu_pipeline.providers.base import (
    FetchRequest,
    FetchStats,
    ProviderCapabilities,
    ProviderError,
    SymbolHistory,
)
from jutsu_pipeline.providers.http.client import ErrorMapper, HttpClient
from jutsu_pipeline.providers.http.errors import AuthExpired, MalformedPayload, RequestContext
from jutsu_pipeline.providers.http.frames import ConflictingBars, build_frame
from jutsu_pipeline.providers.http.secrets import Secret
from jutsu_pipeline.providers.http.settings import HttpOptions, HttpSettings
from jutsu_pipeline.timeframes import Timeframe


def read_secret(provider: str, name: str, env_var: str, secrets: Mapping[str, Any] | None, advice: str) -> Secret:
    """A credential from `secrets[name]` (e.g. a Dagster resource), else env var `env_var`, else the file
    named by `<env_var>_FILE`. Raises AuthExpired naming the variable (never its value) when absent."""
    value = (secrets or {}).get(name)
    if isinstance(value, Secret):
        return value
    if not value:
        value = os.environ.get(env_var)
    if not value and os.environ.get(f"{env_var}_FILE"):
        value = Path(os.environ[f"{env_var}_FILE"]).read_text().strip()
    if not value:
        raise AuthExpired(RequestContext(provider, purpose="credentials"), f"credential {name} is not set",
                          f"export {env_var} (or {env_var}_FILE naming a file holding it); {advice}")
    return Secret(str(value))


class HttpProvider:
    """Base of the HTTP providers: subclasses set `name`, `capabilities` and implement `_fetch`."""

    name = "http"
    default_base_url = ""
    default_settings = HttpSettings()
    capabilities: ProviderCapabilities

    def __init__(self, options: HttpOptions, timezone: str, *, error_mapper: ErrorMapper | None = None,
                 headers: Mapping[str, str] | None = None, identity: str | None = None) -> None:
        self.options = options
        self.timezone = timezone
        self.stats = FetchStats()
        self.settings = self.default_settings.with_options(options.http)
        self.base_url = str(options.base_url or self.default_base_url).rstrip("/")
        # `identity` (an API key id, never logged: only its hash keys the budget) separates rate budgets of
        # different accounts on the same provider.
        self.client = HttpClient(self.name, self.base_url, self.settings, self.stats, headers=headers,
                                 error_mapper=error_mapper, identity=identity)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- the BarsProvider protocol ---------------------------------------------------------------
    def fetch(self, request: FetchRequest) -> pl.DataFrame:
        """Final bars of the window; any page failing after retries raises (nothing partial is returned)."""
        if request.timeframe not in self.capabilities.timeframes:
            raise ProviderError(f"{self.context(request).describe()}: {self.name} does not serve "
                                f"{request.timeframe.value} bars; use one of "
                                f"{sorted(t.value for t in self.capabilities.timeframes)} or another provider")
        frame = self._fetch(request)
        self.stats.bars += frame.height
        return frame

    def history(self, symbol: str, timeframe: Timeframe) -> SymbolHistory:
        return SymbolHistory()

    def first_bar(self, first: dt.datetime, timeframe: Timeframe, zone: str | None = None) -> SymbolHistory:
        """History from the first bar's start; a daily bar is keyed by its date in `zone` (the day zone)."""
        if not timeframe.is_intraday:
            day = first.astimezone(ZoneInfo(zone or self.day_timezone())).date()
            first = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
        return SymbolHistory(first_ts=first)

    def close(self) -> None:
        self.client.close()

    # -- helpers for subclasses ------------------------------------------------------------------
    def _fetch(self, request: FetchRequest) -> pl.DataFrame:
        raise NotImplementedError

    def context(self, request: FetchRequest) -> RequestContext:
        return RequestContext(self.name, request.symbol, request.timeframe, request.start, request.end)

    def day_timezone(self) -> str:
        """The zone whose local date keys daily bars (the market's; crypto providers use UTC)."""
        return self.timezone

    def finalize(self, request: FetchRequest, instants_us: Sequence[int | None],
                 columns: Mapping[str, Sequence[float | None]], day_timezone: str | None = None) -> pl.DataFrame:
        """The canonical frame of the final bars; conflicting duplicates raise a (non-retried) MalformedPayload."""
        try:
            return build_frame(instants_us, columns, request, day_timezone=day_timezone or self.day_timezone(),
                               now=self.client.server_now(), delay=self.capabilities.delay, stats=self.stats)
        except ConflictingBars as error:
            raise MalformedPayload(self.context(request), str(error).rstrip("."), "") from None


def epoch_ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)
