"""DuckLake storages for tests: a local `.ducklake` file, or a catalog schema on the CI Postgres server."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

URL_VAR = "JUTSU_TEST_POSTGRES_URL"  # .ci/run sets it (SQLAlchemy form); the catalog gets its own schema


def postgres_url() -> str | None:
    return os.environ.get(URL_VAR) or None


def require_postgres() -> str:
    url = postgres_url()
    if not url:
        pytest.skip(f"{URL_VAR} is not set: no Postgres server for a DuckLake catalog (.ci/run starts one and sets it)")
    return url


def _libpq(url: str) -> str:
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)


@contextmanager
def postgres_lake(tmp_path: Path) -> Iterator[dict]:
    """`storage:` settings of a fresh DuckLake whose catalog is a new schema in the test Postgres database."""
    import psycopg2

    url = require_postgres()
    schema = f"jutsu_lake_{uuid.uuid4().hex[:12]}"
    try:
        yield {"kind": "ducklake", "catalog": url, "data_path": str(tmp_path / "lake_data"), "metadata_schema": schema}
    finally:
        with psycopg2.connect(_libpq(url)) as pg, pg.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def file_lake(tmp_path: Path) -> dict:
    """`storage:` settings of a DuckLake with a local DuckDB catalog file (one writing process)."""
    return {"kind": "ducklake", "catalog": str(tmp_path / "catalog.ducklake"), "data_path": str(tmp_path / "lake_data")}
