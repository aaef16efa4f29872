"""Create and migrate the `indicators` table and the `bars_with_indicators` view."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from jutsu_pipeline.indicators import sql
from jutsu_pipeline.indicators.frame import as_specs, column_names
from jutsu_pipeline.indicators.params import IndicatorParams
from jutsu_pipeline.indicators.registry import COLUMN_PATTERN, IndicatorSpec
from jutsu_pipeline.storage.ddl import create_table, create_view, ensure_schema
from jutsu_pipeline.storage.transactions import retry_conflicts


def ensure_indicator_schema(con: duckdb.DuckDBPyConnection, params: IndicatorParams | Iterable[IndicatorSpec]) -> list[str]:
    """Create `indicators` and its view; add the columns `params` needs (one DOUBLE per output).

    Columns of other parameter sets are kept (markets and strategies may need different periods).
    Returns the columns added. Idempotent; issues no DDL when nothing is missing.
    """
    ensure_schema(con)
    return retry_conflicts(lambda: _migrate(con, params), "create indicators")


def _migrate(con: duckdb.DuckDBPyConnection, params: IndicatorParams | Iterable[IndicatorSpec]) -> list[str]:
    create_table(con, sql.CREATE_INDICATORS)
    existing = {row[0] for row in con.execute(sql.INDICATOR_COLUMNS).fetchall()}
    added = []
    for column in column_names(as_specs(params)):
        if column not in existing:
            if not COLUMN_PATTERN.match(column):  # formatted into DDL: checked once more
                raise ValueError(f"invalid indicator column name {column!r}")
            con.execute(sql.ADD_COLUMN.format(column=column))
            added.append(column)
    view_exists = con.execute(sql.VIEW_EXISTS).fetchall()[0][0] > 0
    if added or not view_exists:  # the view binds its column list when created
        create_view(con, sql.CREATE_BARS_WITH_INDICATORS, replace=True)
    return added
