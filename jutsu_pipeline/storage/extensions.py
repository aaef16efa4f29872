"""DuckDB extensions loaded offline from their installed wheels (never downloaded at run time)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

# Extension name -> the wheel that ships it (pinned in pyproject.toml to duckdb's exact version).
WHEELS = {"ducklake": "duckdb_extension_ducklake", "postgres_scanner": "duckdb_extension_postgres_scanner"}


class ExtensionMissingError(RuntimeError):
    """An extension's wheel is not installed for the running duckdb version."""


def extension_path(name: str) -> Path:
    """The `.duckdb_extension` file of `name` inside its wheel, for the running duckdb version."""
    module = WHEELS[name]
    spec = importlib.util.find_spec(module)
    path = None
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if path is None or not path.exists():
        package = module.replace("_", "-")
        raise ExtensionMissingError(
            f"DuckDB extension {name!r} for duckdb {duckdb.__version__} is not installed ({path or module} missing): "
            f"install `{package}=={duckdb.__version__}` (pyproject.toml pins both; re-run `make install`)"
        )
    return path


def load_extensions(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """LOAD each extension from its wheel's file path."""
    for name in names:
        con.execute(f"LOAD '{extension_path(name)}'")
