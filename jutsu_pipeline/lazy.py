"""Package names that load on first use (PEP 562), so that importing a package stays cheap."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from importlib import import_module, metadata
from typing import Any


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` giving each name of `where` from its submodule of `package`."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{where[name]}"), name)

    return __getattr__


@cache
def installed_version(distribution: str) -> str | None:
    """The installed version of `distribution`, read without importing it (None when not installed)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
