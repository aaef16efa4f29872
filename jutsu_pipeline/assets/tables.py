"""Dagster's table conventions for the DuckDB tables the assets write: name, columns, row count."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import dagster as dg
import duckdb

from jutsu_pipeline.storage.scope import scope_filter, scope_params

COLUMNS = """
SELECT column_name, data_type, is_nullable, comment FROM duckdb_columns()
WHERE schema_name = current_schema() AND table_name = $table ORDER BY column_index
"""


def table_name(table: str) -> dict[str, str]:
    """Definition metadata: the table an asset writes (`dagster/table_name`)."""
    return {"dagster/table_name": table}


@functools.cache
def declared_schema(table: str) -> dict[str, dg.MetadataValue]:
    """Definition metadata: `table`'s columns as the DDL declares them (`dagster/column_schema`); not in the
    materialisation metadata, which Dagster copies into each partition's event of a run (cost doubled)."""
    from jutsu_pipeline.storage.ddl import ensure_schema

    with duckdb.connect(":memory:") as con:
        ensure_schema(con)
        return _column_schema(con, table)


def _column_schema(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, dg.MetadataValue]:
    columns = [dg.TableColumn(name, kind, description=comment or None,
                              constraints=dg.TableColumnConstraints(nullable=nullable))
               for name, kind, nullable, comment in con.execute(COLUMNS, {"table": table}).fetchall()]
    return {"dagster/column_schema": dg.MetadataValue.table_schema(dg.TableSchema(columns=columns))} if columns else {}


def table_metadata(
    con: duckdb.DuckDBPyConnection, table: str, *, timeframe: str | None = None, symbols: Sequence[str] = (),
    columns: bool = True,
) -> dict[str, dg.MetadataValue]:
    """Materialisation metadata: the table's columns as stored (`dagster/column_schema`, unless `columns`
    is False) and the rows of the asset's scope, its symbols at its timeframe (`dagster/row_count`);
    nothing before the table exists (a first sync whose every partition failed)."""
    schema = _column_schema(con, table)
    if not schema:
        return {}
    scope = scope_filter(timeframe=timeframe is not None)
    rows = con.execute(f"SELECT count(*) FROM {table} WHERE {scope}", scope_params(timeframe, symbols)).fetchall()[0][0]
    return {**(schema if columns else {}), "dagster/row_count": dg.MetadataValue.int(int(rows))}
