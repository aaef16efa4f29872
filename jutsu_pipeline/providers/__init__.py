"""Bars providers behind one interface (`BarsProvider`), built by name from a market's config: each
registers a `ProviderSpec` (docs/extending.md); the built-in specs (`builtin`) are registered here."""

from jutsu_pipeline.providers.builtin import BUILT_IN
from jutsu_pipeline.providers.registry import build_provider, is_local, register

for _spec in BUILT_IN:
    register(_spec)

__all__ = ["build_provider", "is_local", "register"]
