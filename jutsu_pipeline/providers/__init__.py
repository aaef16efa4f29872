"""Bars providers behind one interface (`BarsProvider`), built by name from a market's config."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

from jutsu_pipeline.providers.base import BarsProvider

# name -> module with `build(options, timezone, resolve) -> BarsProvider`
PROVIDER_MODULES: dict[str, str] = {
    "sample": "jutsu_pipeline.providers.sample",
    "files": "jutsu_pipeline.providers.files",
}


def build_provider(
    name: str, options: dict[str, Any], timezone: str, resolve: Callable[[str], Path]
) -> BarsProvider:
    """Instantiate the provider `name` with the market's options; `resolve` makes config paths absolute."""
    if name not in PROVIDER_MODULES:
        raise ValueError(f"provider {name!r} is not available; choose one of {sorted(PROVIDER_MODULES)}")
    module = import_module(PROVIDER_MODULES[name])
    return module.build(options, timezone, resolve)
