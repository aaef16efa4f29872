"""SQL of the asset checks over the stored `bars` table: one statement per constant, all parameterised.

Every statement reads one asset's bars (`storage.scope.scope_filter`, bound with `scope_params`).
Tables `grid` (partition_date, ts) and `materialized` (symbol, partition_date) are registered Arrow frames.
"""

from __future__ import annotations

from jutsu_pipeline.storage.scope import scope_filter

SCOPE = scope_filter()

TABLE_COLUMNS = """
SELECT column_name, data_type FROM information_schema.columns
WHERE table_catalog = current_database() AND table_name = 'bars' AND table_schema = current_schema()
"""

ROW_COUNT = f"""
SELECT count(*), count(DISTINCT symbol)
FROM bars
WHERE {SCOPE}
"""

# Rows sharing (symbol, timeframe, ts): impossible under the primary key, possible in tables made without it.
DUPLICATE_KEYS = f"""
SELECT symbol, count(*) AS keys, (list(strftime(ts, '%Y-%m-%d %H:%M') ORDER BY ts))[1:3] AS examples
FROM (
    SELECT symbol, ts
    FROM bars
    WHERE {SCOPE}
    GROUP BY symbol, ts
    HAVING count(*) > 1
)
GROUP BY symbol
"""

# Rows written in one ingestion (same ingested_at) whose ts is earlier than the row stored before them.
OUT_OF_ORDER = f"""
SELECT symbol, count(*) AS rows, (list(strftime(ts, '%Y-%m-%d %H:%M') ORDER BY ts))[1:3] AS examples
FROM (
    SELECT symbol, ts, lag(ts) OVER (PARTITION BY symbol, ingested_at ORDER BY rowid) AS previous_ts
    FROM bars
    WHERE {SCOPE}
)
WHERE ts < previous_ts
GROUP BY symbol
"""

# Grid timestamps of materialised partitions, between a symbol's first and last stored bar, without a bar.
CALENDAR_MISSING = f"""
WITH asset_bars AS (
    SELECT symbol, ts FROM bars
    WHERE {SCOPE}
),
life AS (
    SELECT symbol, min(ts) AS first_ts, max(ts) AS last_ts FROM asset_bars GROUP BY symbol
),
expected AS (
    SELECT m.symbol, g.ts
    FROM materialized AS m
    JOIN grid AS g ON g.partition_date = m.partition_date
    JOIN life AS l ON l.symbol = m.symbol AND g.ts BETWEEN l.first_ts AND l.last_ts
)
SELECT e.symbol, count(*) AS missing, (list(strftime(e.ts, '%Y-%m-%d %H:%M') ORDER BY e.ts))[1:3] AS examples
FROM expected AS e
ANTI JOIN asset_bars AS b ON b.symbol = e.symbol AND b.ts = e.ts
GROUP BY e.symbol
"""

# Stored bars that are not on the calendar's grid (off-session days, outside hours, off the bar grid,
# outside the market's history).
CALENDAR_UNEXPECTED = f"""
SELECT b.symbol, count(*) AS unexpected, (list(strftime(b.ts, '%Y-%m-%d %H:%M') ORDER BY b.ts))[1:3] AS examples
FROM bars AS b
ANTI JOIN grid AS g ON g.ts = b.ts
WHERE {scope_filter("b")}
GROUP BY b.symbol
"""

LATEST_BARS = """
SELECT s.symbol, max(b.ts) AS last_ts
FROM (SELECT unnest($symbols::VARCHAR[]) AS symbol) AS s
LEFT JOIN bars AS b ON b.symbol = s.symbol AND b.timeframe = $timeframe
GROUP BY s.symbol
ORDER BY s.symbol
"""

ACTIONS_VIEW_EXISTS = """
SELECT count(*) FROM duckdb_views() WHERE schema_name = current_schema() AND view_name = 'corporate_actions_current'
"""

# The actions in force (one source per action) of the asset's symbols.
ASSET_ACTIONS = f"""
SELECT symbol, ex_date, kind, ratio, cash_amount, source
FROM corporate_actions_current
WHERE {scope_filter(timeframe=False)}
ORDER BY symbol, ex_date, kind
"""
