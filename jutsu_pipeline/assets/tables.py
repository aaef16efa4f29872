"""Dagster's table conventions for the DuckDB tables the assets write: name, columns, row count."""

from __future__ import annotations

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


def table_metadata(
    con: duckdb.DuckDBPyConnection, table: str, *, timeframe: str | None = None, symbols: Sequence[str] = ()
) -> dict[str, dg.MetadataValue]:
    """Materialisation metadata: the table's columns as stored (`dagster/column_schema`) and the rows
    of the asset's scope, its symbols at its timeframe (`dagster/row_count`); nothing before the
    table exists (a first sync whose every partition failed)."""
    columns = [dg.TableColumn(name, kind, description=comment or None,
                              constraints=dg.TableColumnConstraints(nullable=nullable))
               for name, kind, nullable, comment in con.execute(COLUMNS, {"table": table}).fetchall()]
    if not columns:
        return {}
    scope = scope_filter(timeframe=timeframe is not None)
    rows = con.execute(f"SELECT count(*) FROM {table} WHERE {scope}", scope_params(timeframe, symbols)).fetchall()[0][0]
    return {
        "dagster/column_schema": dg.MetadataValue.table_schema(dg.TableSchema(columns=columns)),
        "dagster/row_count": dg.MetadataValue.int(int(rows)),
    }
