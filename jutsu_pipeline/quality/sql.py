"""SQL of the asset checks over the stored `bars` table: one statement per constant, all parameterised.

Every statement reads one asset's bars (`storage.scope.scope_filter`, bound with `scope_params`).
Tables `grid` (partition_date, ts) and `materialized` (symbol, partition_date) are registered Arrow frames.
"""

from __future__ import annotations

from jutsu_pipeline.storage.scope import changed_filter, changed_join, scope_filter

SCOPE = scope_filter()
# The `*_CHANGED` variants read only the registered `changed_scope` (symbol, since): bind `$timeframe` alone.
CHANGED = f"{changed_join()} WHERE {changed_filter()}"

ROW_COUNT = f"""
SELECT count(*), count(DISTINCT symbol)
FROM bars
WHERE {SCOPE}
"""

ROW_COUNT_CHANGED = f"""
SELECT count(*), count(DISTINCT b.symbol)
FROM bars AS b {CHANGED}
"""

# Symbols with a stored row breaking a row rule of the pre-write schema: the whole table in one scan, so
# rows changed outside any run (an UPDATE in the DuckDB file) are found too; `ohlcv_schema` then judges
# those symbols' rows with the rules' polars expressions (this mirrors `rules.STORED_ROW_RULES`, a superset
# where NaN is involved, and `DAILY_RULES` when $daily).
ROW_RULE_SUSPECTS = f"""
SELECT DISTINCT symbol
FROM bars
WHERE {SCOPE} AND (
    open IS NULL OR high IS NULL OR low IS NULL OR close IS NULL OR volume IS NULL
    OR isnan(open) OR isnan(high) OR isnan(low) OR isnan(close) OR isnan(volume)
    OR high < low OR high < greatest(open, close) OR low > least(open, close) OR NOT (low > 0) OR volume < 0
    OR (adj_close IS NOT NULL AND NOT (adj_close > 0))
    OR ($daily AND epoch_us(ts) % 86400000000 <> 0)
)
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

DUPLICATE_KEYS_CHANGED = f"""
SELECT symbol, count(*) AS keys, (list(strftime(ts, '%Y-%m-%d %H:%M') ORDER BY ts))[1:3] AS examples
FROM (
    SELECT b.symbol, b.ts
    FROM bars AS b {CHANGED}
    GROUP BY b.symbol, b.ts
    HAVING count(*) > 1
)
GROUP BY symbol
"""

# An ingestion writes only the windows of its run, so its rows lie inside the changed scope.
OUT_OF_ORDER_CHANGED = f"""
SELECT symbol, count(*) AS rows, (list(strftime(ts, '%Y-%m-%d %H:%M') ORDER BY ts))[1:3] AS examples
FROM (
    SELECT b.symbol, b.ts, lag(b.ts) OVER (PARTITION BY b.symbol, b.ingested_at ORDER BY b.rowid) AS previous_ts
    FROM bars AS b {CHANGED}
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

# The same, for grid timestamps from each changed symbol's `since` on (its life from all its bars).
CALENDAR_MISSING_CHANGED = f"""
WITH asset_bars AS (
    SELECT b.symbol, b.ts FROM bars AS b {CHANGED}
),
life AS (
    SELECT symbol, min(ts) AS first_ts, max(ts) AS last_ts FROM bars
    WHERE timeframe = $timeframe AND symbol IN (SELECT symbol FROM changed_scope) GROUP BY symbol
),
expected AS (
    SELECT m.symbol, g.ts
    FROM materialized AS m
    JOIN changed_scope AS c ON c.symbol = m.symbol
    JOIN grid AS g ON g.partition_date = m.partition_date AND g.ts >= c.since
    JOIN life AS l ON l.symbol = m.symbol AND g.ts BETWEEN l.first_ts AND l.last_ts
)
SELECT e.symbol, count(*) AS missing, (list(strftime(e.ts, '%Y-%m-%d %H:%M') ORDER BY e.ts))[1:3] AS examples
FROM expected AS e
ANTI JOIN asset_bars AS b ON b.symbol = e.symbol AND b.ts = e.ts
GROUP BY e.symbol
"""

CALENDAR_UNEXPECTED_CHANGED = f"""
SELECT b.symbol, count(*) AS unexpected, (list(strftime(b.ts, '%Y-%m-%d %H:%M') ORDER BY b.ts))[1:3] AS examples
FROM bars AS b {changed_join()}
ANTI JOIN grid AS g ON g.ts = b.ts
WHERE {changed_filter()}
GROUP BY b.symbol
"""

LATEST_BARS = """
SELECT s.symbol, max(b.ts) AS last_ts
FROM (SELECT unnest($symbols::VARCHAR[]) AS symbol) AS s
LEFT JOIN bars AS b ON b.symbol = s.symbol AND b.timeframe = $timeframe
GROUP BY s.symbol
ORDER BY s.symbol
"""

# The actions in force (one source per action) of the asset's symbols.
ASSET_ACTIONS = f"""
SELECT symbol, ex_date, kind, ratio, cash_amount, source
FROM corporate_actions_current
WHERE {scope_filter(timeframe=False)}
ORDER BY symbol, ex_date, kind
"""
