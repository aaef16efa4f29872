"""Bars providers behind one interface (`BarsProvider`), built by name from a market's config."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from pathlib import Path
from typing import Any

from jutsu_pipeline.providers.base import BarsProvider

# name -> module with `build(options, timezone, resolve, secrets=None) -> BarsProvider`
PROVIDER_MODULES: dict[str, str] = {
    "sample": "jutsu_pipeline.providers.sample",
    "files": "jutsu_pipeline.providers.files",
    "binance": "jutsu_pipeline.providers.binance",
    "alpaca": "jutsu_pipeline.providers.alpaca",
    "schwab": "jutsu_pipeline.providers.schwab",
    "yahoo": "jutsu_pipeline.providers.yahoo",
}
LOCAL_PROVIDERS = frozenset({"sample", "files"})


def build_provider(
    name: str,
    options: dict[str, Any],
    timezone: str,
    resolve: Callable[[str], Path],
    *,
    secrets: Mapping[str, Any] | None = None,
) -> BarsProvider:
    """Instantiate the provider `name` with the market's options; `resolve` makes config paths absolute.

    `secrets` (optional, e.g. from the ProviderCredentials resource) overrides credentials that HTTP
    providers otherwise read from environment variables.
    """
    if name not in PROVIDER_MODULES:
        raise ValueError(f"provider {name!r} is not available; choose one of {sorted(PROVIDER_MODULES)}")
    return import_module(PROVIDER_MODULES[name]).build(options, timezone, resolve, secrets=secrets)


def is_local(name: str) -> bool:
    """Whether a provider reads local files (no network, no rate limit)."""
    return name in LOCAL_PROVIDERS
