"""Copy a DuckDB file's tables and views into a DuckLake (`jutsu migrate-to-ducklake`)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from jutsu_pipeline.storage.backend import is_lake
from jutsu_pipeline.storage.ddl import ensure_schema
from jutsu_pipeline.storage.transactions import retry_conflicts, transaction

SOURCE = "migrate_source"

SOURCE_TABLES = f"""
SELECT table_name FROM duckdb_tables() WHERE database_name = '{SOURCE}' AND schema_name = 'main' ORDER BY table_name
"""
SOURCE_VIEWS = f"""
SELECT view_name, sql FROM duckdb_views() WHERE database_name = '{SOURCE}' AND schema_name = 'main' ORDER BY view_name
"""
LAKE_OBJECTS = """
SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'
UNION ALL
SELECT view_name FROM duckdb_views() WHERE database_name = current_database() AND schema_name = 'main'
"""


class MigrationError(RuntimeError):
    """The migration cannot run (wrong target, missing source); the message says what to do."""


def migrate_duckdb_file(con: duckdb.DuckDBPyConnection, source: Path) -> dict[str, int]:
    """Replace the lake's copy of every table of `source` by the file's rows, then create its missing views.

    All tables move in ONE DuckLake transaction (readers see the old or the new data, never a mix);
    the file is attached read-only and not changed. Returns rows copied per table.
    """
    if not is_lake(con):
        raise MigrationError("the configured storage is a DuckDB file: set `storage: {kind: ducklake, ...}` in "
                             "jutsu.yaml first (the file to copy is the command's argument)")
    if not source.exists():
        raise MigrationError(f"{source} does not exist: pass the DuckDB file to copy (e.g. data/jutsu.duckdb)")
    ensure_schema(con)  # contract tables keep their declared types and NOT NULLs
    quoted = str(source).replace("'", "''")
    con.execute(f"ATTACH '{quoted}' AS {SOURCE} (READ_ONLY)")
    try:
        tables = [row[0] for row in con.execute(SOURCE_TABLES).fetchall()]
        views = con.execute(SOURCE_VIEWS).fetchall()

        def copy() -> dict[str, int]:
            copied: dict[str, int] = {}
            with transaction(con):
                existing = {row[0] for row in con.execute(LAKE_OBJECTS).fetchall()}
                for table in tables:
                    if table in existing:
                        _add_missing_columns(con, table)
                        con.execute(f'DELETE FROM "{table}"')
                        con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM {SOURCE}.main."{table}"')
                    else:
                        con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM {SOURCE}.main."{table}"')
                    copied[table] = con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0]
                for name, sql in views:
                    if name not in existing:
                        con.execute(sql)
            return copied

        return retry_conflicts(copy, "migrate a DuckDB file")
    finally:
        con.execute(f"DETACH {SOURCE}")


def _add_missing_columns(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Columns the file has and the lake table lacks (e.g. indicator periods), added before the copy."""
    rows = con.execute(
        "SELECT s.column_name, s.data_type FROM duckdb_columns() s WHERE s.database_name = ? AND s.schema_name = 'main' "
        "AND s.table_name = ? AND s.column_name NOT IN (SELECT column_name FROM duckdb_columns() WHERE "
        "database_name = current_database() AND schema_name = 'main' AND table_name = ?) ORDER BY s.column_index",
        [SOURCE, table, table]).fetchall()
    for column, data_type in rows:
        con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {data_type}')
