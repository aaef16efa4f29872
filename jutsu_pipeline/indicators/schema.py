"""Create and migrate the `indicators` table and the `bars_with_indicators` view."""

from __future__ import annotations

import duckdb

from jutsu_pipeline.indicators import sql
from jutsu_pipeline.indicators.params import COLUMN_PATTERN, IndicatorParams
from jutsu_pipeline.storage.ddl import ensure_schema


def ensure_indicator_schema(con: duckdb.DuckDBPyConnection, params: IndicatorParams) -> list[str]:
    """Create `indicators` (PK symbol, timeframe, ts) and its view; add columns `params` needs.

    Columns of other parameter sets are kept (markets may configure different periods).
    Returns the columns added. Idempotent; issues no DDL when nothing is missing.
    """
    ensure_schema(con)
    con.execute(sql.CREATE_INDICATORS)
    existing = {row[0] for row in con.execute(sql.INDICATOR_COLUMNS).fetchall()}
    added = []
    for column in params.column_names():
        if column not in existing:
            if not COLUMN_PATTERN.match(column):
                raise ValueError(f"invalid indicator column name {column!r}")
            con.execute(sql.ADD_COLUMN.format(column=column))
            added.append(column)
    view_exists = con.execute(sql.VIEW_EXISTS).fetchone()[0] > 0
    if added or not view_exists:  # the view binds its column list when created
        con.execute(sql.CREATE_BARS_WITH_INDICATORS)
    return added
