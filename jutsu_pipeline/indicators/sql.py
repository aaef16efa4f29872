"""SQL of the indicators contract, one statement per constant.

Symbols and timeframes are always bound parameters. The only formatted identifiers are indicator
column names from `IndicatorParams.columns()` (validated integers/multipliers, checked against
`COLUMN_PATTERN`), substituted as `{column}`.
"""

CREATE_INDICATORS = """
CREATE TABLE IF NOT EXISTS indicators (
    symbol    VARCHAR     NOT NULL,
    timeframe VARCHAR     NOT NULL,
    ts        TIMESTAMPTZ NOT NULL,  -- the bar's ts in bars / bars_adjusted
    PRIMARY KEY (symbol, timeframe, ts)
)
"""

# Existing columns of `indicators`, to add only the missing ones (migration, no catalog churn).
INDICATOR_COLUMNS = """
SELECT column_name FROM duckdb_columns()
WHERE schema_name = current_schema() AND table_name = 'indicators'
"""

VIEW_EXISTS = """
SELECT count(*) FROM duckdb_views() WHERE schema_name = current_schema() AND view_name = 'bars_with_indicators'
"""

ADD_COLUMN = 'ALTER TABLE indicators ADD COLUMN "{column}" DOUBLE'

# Adjusted bars with every indicator column present in the table (NULL where not computed).
CREATE_BARS_WITH_INDICATORS = """
CREATE OR REPLACE VIEW bars_with_indicators AS
SELECT b.*, i.* EXCLUDE (symbol, timeframe, ts)
FROM bars_adjusted AS b
LEFT JOIN indicators AS i USING (symbol, timeframe, ts)
"""

# The whole history of the requested symbols, in the order the computation needs.
SELECT_BARS = """
SELECT symbol, ts, open, high, low, close, volume
FROM bars_adjusted
WHERE timeframe = $timeframe AND symbol IN (SELECT unnest($symbols))
ORDER BY symbol, ts
"""

# Rows of these symbols whose bar no longer exists (re-written keys are upserted, not deleted:
# DuckDB's DELETE + re-INSERT of the same primary keys costs ~5x an INSERT OR REPLACE).
DELETE_STALE = """
DELETE FROM indicators AS i
WHERE i.timeframe = $timeframe
  AND i.symbol IN (SELECT unnest($symbols))
  AND NOT EXISTS (SELECT 1 FROM staged_indicators AS s WHERE s.symbol = i.symbol AND s.ts = i.ts)
"""

# Columns matched by name: indicator columns of other parameter sets become NULL for these rows.
UPSERT_STAGED = """
INSERT OR REPLACE INTO indicators BY NAME
SELECT $timeframe AS timeframe, * FROM staged_indicators
"""
