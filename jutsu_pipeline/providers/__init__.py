"""Bars providers behind one interface (`BarsProvider`), built by name from a market's config.

A provider declares a `SPEC` (options model, credentials, local or not, factory); the built-in ones are
in `builtin` (options only: each factory imports its provider's module, so reading the configuration
loads no polars or httpx) and registered below. docs/extending.md shows how to add one.
"""

from jutsu_pipeline.providers.builtin import BUILT_IN
from jutsu_pipeline.providers.registry import build_provider, is_local, register

for _spec in BUILT_IN:
    register(_spec)

__all__ = ["build_provider", "is_local", "register"]
