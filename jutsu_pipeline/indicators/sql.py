"""SQL of the indicators contract, one statement per constant.

Symbols and timeframes are always bound parameters. The only formatted identifiers are indicator
column names from `IndicatorParams.columns()` (validated integers/multipliers, checked against
`COLUMN_PATTERN`), substituted as `{column}`.
"""

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

# Existing columns of `indicators`, to add only the missing ones (migration, no catalog churn).
INDICATOR_COLUMNS = """
SELECT column_name FROM duckdb_columns()
WHERE database_name = current_database() AND schema_name = current_schema() AND table_name = 'indicators'
"""

VIEW_EXISTS = """
SELECT count(*) FROM duckdb_views()
WHERE database_name = current_database() AND schema_name = current_schema() AND view_name = 'bars_with_indicators'
"""

ADD_COLUMN = 'ALTER TABLE indicators ADD COLUMN "{column}" DOUBLE'

# Adjusted bars with every indicator column present in the table (NULL where not computed).
CREATE_BARS_WITH_INDICATORS = """
CREATE OR REPLACE VIEW bars_with_indicators AS
SELECT b.*, i.* EXCLUDE (symbol, timeframe, ts)
FROM bars_adjusted AS b
LEFT JOIN indicators AS i USING (symbol, timeframe, ts)
"""

# The whole history of the requested symbols, in the order the computation needs, from
# `bars_adjusted` (split/dividend-adjusted prices, the default) or the provider's raw `bars`.
SELECT_BARS = """
SELECT symbol, ts, open, high, low, close, volume
FROM {source}
WHERE timeframe = $timeframe AND symbol IN (SELECT unnest($symbols))
ORDER BY symbol, ts
"""

# Every row of these symbols at this timeframe: their full history is recomputed and re-inserted.
DELETE_SYMBOLS = """
DELETE FROM indicators
WHERE timeframe = $timeframe AND symbol IN (SELECT unnest($symbols))
"""

# Columns matched by name: indicator columns of other parameter sets stay NULL for these rows.
INSERT_STAGED = """
INSERT INTO indicators BY NAME
SELECT $timeframe AS timeframe, * FROM staged_indicators
"""
