"""Finding jutsu.yaml and reading only its storage location: apart from `config` (which imports pandas,
TA-Lib and polars to validate markets), so read-only commands such as `jutsu coverage` stay fast."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import TypeAdapter, ValidationError

from jutsu_pipeline.storage.settings import DuckDBStorage, DuckLakeStorage, StorageSettings

if TYPE_CHECKING:
    from jutsu_pipeline.storage.backend import LakeTarget

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_PATH = REPO_ROOT / "jutsu.yaml"
CONFIG_ENV_VAR = "JUTSU_CONFIG"


class ConfigError(ValueError):
    """The configuration file is invalid; the message names the file and the bad key."""


def config_path() -> Path:
    """The config file in use: $JUTSU_CONFIG, else jutsu.yaml at the repo root."""
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH).expanduser().resolve()


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} not found (set {CONFIG_ENV_VAR} to point elsewhere)") from None


def storage_alias(data: Any) -> Any:
    """`duckdb_path: <file>` (the first releases' key) means `storage: {kind: duckdb, path: <file>}`."""
    if isinstance(data, dict) and "duckdb_path" in data:
        if "storage" in data:
            raise ValueError("duckdb_path and storage are both set: keep only storage (duckdb_path is its old "
                             "spelling for {kind: duckdb, path: ...})")
        data = {**data, "storage": {"kind": "duckdb", "path": data["duckdb_path"]}}
        del data["duckdb_path"]
    return data


def resolve_path(source_path: Path | None, path: str | Path) -> Path:
    """A path from the config, made absolute relative to the config file's folder."""
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    base = source_path.parent if source_path else REPO_ROOT
    return (base / path).resolve()


def lake_target(source_path: Path | None, lake: DuckLakeStorage) -> LakeTarget:
    """The DuckLake location with relative paths resolved."""
    from jutsu_pipeline.storage.backend import LakeTarget

    catalog = lake.catalog if lake.postgres else str(resolve_path(source_path, lake.catalog))
    data_path = lake.data_path if "://" in lake.data_path else str(resolve_path(source_path, lake.data_path))
    return LakeTarget(catalog, data_path, lake.metadata_schema)


_STORAGE: TypeAdapter[StorageSettings] = TypeAdapter(StorageSettings)


def load_storage(path: str | Path | None = None) -> Path | LakeTarget | None:
    """The DuckDB file (a Path) or DuckLake (a LakeTarget) of a configuration, without validating its
    markets; None for a file YAML cannot read this way (e.g. a date such as 2024-13-01): the caller's full
    `config.load_config` names the bad key (config imports this module, not the other way round)."""
    path = Path(path).expanduser().resolve() if path else config_path()
    try:
        data = storage_alias(yaml.safe_load(read_text(path)))
        if not isinstance(data, dict):
            raise ValueError("not a mapping")
        storage = _STORAGE.validate_python(data["storage"]) if "storage" in data else DuckDBStorage()
    except (yaml.YAMLError, ValueError, ValidationError):
        return None
    if isinstance(storage, DuckDBStorage):
        return resolve_path(path, storage.path)
    return lake_target(path, storage)
