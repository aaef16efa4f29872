"""Which storage backend holds the tables: `storage:` in jutsu.yaml."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_POSTGRES = re.compile(r"^postgres(ql)?(\+\w+)?://")


class DuckDBStorage(BaseModel):
    """One DuckDB file: the embedded default (one writing process at a time)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["duckdb"] = "duckdb"
    path: Path = Path("data/jutsu.duckdb")


class DuckLakeStorage(BaseModel):
    """A DuckLake: a SQL catalog (Postgres, which several processes may write at once, or a local `.ducklake`
    file) plus Parquet files under `data_path`. `${VAR}` in `catalog` expands when connecting (a password
    can stay in the environment)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["ducklake"]
    catalog: str = Field(description="postgresql://user:pass@host:port/db, or a path ending in .ducklake")
    data_path: str = Field(description="folder (or s3://… with DuckDB's httpfs) for the Parquet files")
    metadata_schema: str | None = Field(default=None, description="Postgres schema of the catalog tables")

    @field_validator("catalog")
    @classmethod
    def _catalog_kind(cls, value: str) -> str:
        if not (_POSTGRES.match(value) or value.endswith(".ducklake")):
            raise ValueError(f"catalog {redact_url(value)!r} must be a postgresql:// URL or a file ending in .ducklake")
        return value

    @field_validator("metadata_schema")
    @classmethod
    def _schema_identifier(cls, value: str | None) -> str | None:
        if value is not None and not _IDENTIFIER.match(value):
            raise ValueError(f"metadata_schema {value!r} must match {_IDENTIFIER.pattern}")
        return value

    @property
    def postgres(self) -> bool:
        return bool(_POSTGRES.match(self.catalog))


StorageSettings = Annotated[DuckDBStorage | DuckLakeStorage, Field(discriminator="kind")]


def redact_url(url: str) -> str:
    """`url` with any password replaced by ***, for messages and metadata."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)
