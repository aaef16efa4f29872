"""Bars providers behind one interface (`BarsProvider`), built by name from a market's config.

Each provider module declares a `SPEC` (options model, credentials, local or not, factory); the tuple
below registers the built-in ones. docs/extending.md shows how to add one.
"""

from typing import Any

from jutsu_pipeline.providers import alpaca, binance, files, sample, schwab, yahoo
from jutsu_pipeline.providers.registry import ProviderSpec, build_provider, is_local, register

_BUILT_IN: tuple[ProviderSpec[Any], ...] = (  # each spec has its own options model
    sample.SPEC, files.SPEC, binance.SPEC, alpaca.SPEC, schwab.SPEC, yahoo.SPEC,
)
for _spec in _BUILT_IN:
    register(_spec)

__all__ = ["build_provider", "is_local", "register"]
