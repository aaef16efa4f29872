"""The `indicators` table, its `bars_with_indicators` view, and the replacement of a set of symbols' rows.

Symbols and timeframes are always bound parameters. The only formatted identifiers are indicator column
names, checked against `scope.IDENTIFIER`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import duckdb
import pyarrow as pa

from jutsu_pipeline.storage.ddl import column_names, create_table, create_view, ensure_schema, relation_exists
from jutsu_pipeline.storage.scope import IDENTIFIER, scope_filter, scope_params
from jutsu_pipeline.storage.transactions import retry_conflicts

# Derived data, rebuilt whole per symbol: (symbol, timeframe, ts) is unique by construction (it comes
# from `bars`' primary key and indicator_frame rejects duplicates), so no index is kept: an ART index
# made a full refresh ~5x slower.
CREATE_INDICATORS = """
CREATE TABLE IF NOT EXISTS indicators (
    symbol    VARCHAR     NOT NULL,
    timeframe VARCHAR     NOT NULL,
    ts        TIMESTAMPTZ NOT NULL  -- the bar's ts in bars / bars_adjusted
)
"""

ADD_COLUMN = 'ALTER TABLE indicators ADD COLUMN "{column}" DOUBLE'

# Adjusted bars with every indicator column present in the table (NULL where not computed).
CREATE_BARS_WITH_INDICATORS = """
CREATE OR REPLACE VIEW bars_with_indicators AS
SELECT b.*, i.* EXCLUDE (symbol, timeframe, ts)
FROM bars_adjusted AS b
LEFT JOIN indicators AS i USING (symbol, timeframe, ts)
"""

# Every row of these symbols at this timeframe: their full history is recomputed and re-inserted.
DELETE_SYMBOLS = f"DELETE FROM indicators WHERE {scope_filter()}"

# Columns matched by name: indicator columns of other parameter sets stay NULL for these rows.
INSERT_STAGED = """
INSERT INTO indicators BY NAME
SELECT $timeframe AS timeframe, * FROM staged_indicators
"""


def ensure_indicator_table(con: duckdb.DuckDBPyConnection, columns: Iterable[str]) -> list[str]:
    """Create `indicators` and its view; add the DOUBLE `columns` it lacks, keeping the others (markets
    and strategies may need different periods). Returns the columns added; no DDL when none is missing."""
    ensure_schema(con)
    wanted = list(columns)
    bad = [c for c in wanted if not IDENTIFIER.match(c)]  # formatted into DDL
    if bad:
        raise ValueError(f"invalid indicator column name(s) {bad}")

    def migrate() -> list[str]:
        create_table(con, CREATE_INDICATORS)
        existing = set(column_names(con, "indicators"))  # add only the missing ones: no catalog churn
        added = [c for c in wanted if c not in existing]
        for column in added:
            con.execute(ADD_COLUMN.format(column=column))
        if added or not relation_exists(con, "bars_with_indicators"):  # the view binds its columns when created
            create_view(con, CREATE_BARS_WITH_INDICATORS, replace=True)
        return added

    return retry_conflicts(migrate, "create indicators")


def replace_indicators(con: duckdb.DuckDBPyConnection, *, timeframe: str, symbols: Sequence[str],
                       staged: pa.Table) -> None:
    """Replace every row of `symbols` at `timeframe` by `staged` (symbol, ts, indicator columns).
    Run it inside the caller's transaction."""
    con.register("staged_indicators", staged)
    try:
        con.execute(DELETE_SYMBOLS, scope_params(timeframe, symbols))
        con.execute(INSERT_STAGED, {"timeframe": timeframe})
    finally:
        con.unregister("staged_indicators")
