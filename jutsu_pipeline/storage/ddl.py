"""The DuckDB contract users query directly: table `bars`, views `bars_adjusted` and `coverage`."""

from __future__ import annotations

import duckdb

CREATE_BARS = """
CREATE TABLE IF NOT EXISTS bars (
    symbol      VARCHAR     NOT NULL,
    timeframe   VARCHAR     NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,  -- bar start, UTC; daily bars: session date 00:00 UTC
    open        DOUBLE      NOT NULL,
    high        DOUBLE      NOT NULL,
    low         DOUBLE      NOT NULL,
    close       DOUBLE      NOT NULL,
    volume      DOUBLE      NOT NULL,
    adj_close   DOUBLE,                -- provider's split/dividend-adjusted close, NULL if none
    source      VARCHAR     NOT NULL,  -- provider name
    ingested_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, timeframe, ts)
)
"""

# Prices scaled by adj_close/close, volume inversely, so splits are continuous; raw where NULL.
CREATE_BARS_ADJUSTED = """
CREATE OR REPLACE VIEW bars_adjusted AS
SELECT
    symbol,
    timeframe,
    ts,
    open * factor  AS open,
    high * factor  AS high,
    low * factor   AS low,
    close * factor AS close,
    volume / factor AS volume,
    factor AS adjustment_factor,
    source
FROM (
    SELECT *, coalesce(adj_close / nullif(close, 0), 1.0) AS factor FROM bars
)
"""

CREATE_COVERAGE = """
CREATE OR REPLACE VIEW coverage AS
SELECT
    symbol,
    timeframe,
    min(ts)          AS first_ts,
    max(ts)          AS last_ts,
    count(*)         AS bars,
    string_agg(DISTINCT source, ',' ORDER BY source) AS source,
    max(ingested_at) AS last_ingested_at
FROM bars
GROUP BY symbol, timeframe
"""

SCHEMA_STATEMENTS = (CREATE_BARS, CREATE_BARS_ADJUSTED, CREATE_COVERAGE)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables and views if they do not exist (idempotent)."""
    for statement in SCHEMA_STATEMENTS:
        con.execute(statement)
