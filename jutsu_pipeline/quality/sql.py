"""SQL of the asset checks over the stored `bars` table, all parameterised: one statement per constant, or
one per value of `changed` (the whole asset or only its changed rows).

Every statement reads one asset's bars (`storage.scope.scope_filter`, bound with `scope_params`).
Tables `grid` (partition_date, ts) and `materialized` (symbol, partition_date) are registered Arrow frames.
"""

from __future__ import annotations

from jutsu_pipeline.storage.scope import CHANGED_FILTER, CHANGED_JOIN, scope_filter

SCOPE = scope_filter()


# Keyed by `changed`: the asset's rows of `bars AS b` (bind `scope_params`) or only those of the registered
# `changed_scope` (symbol, since; bind `$timeframe` alone).
_JOIN = {False: "", True: CHANGED_JOIN}
_WHERE = {False: scope_filter("b"), True: CHANGED_FILTER}


ROW_COUNT = {c: f"SELECT count(*), count(DISTINCT b.symbol) FROM bars AS b {_JOIN[c]} WHERE {_WHERE[c]}"
             for c in (False, True)}

# A stored row breaking a row rule of the pre-write schema: this mirrors `expressions.STORED_ROW_RULES` (and
# `DAILY_RULES` when $daily: a test holds the two equal on stored bars with bad rows written into them).
ROW_RULE_BROKEN = """(
    open IS NULL OR high IS NULL OR low IS NULL OR close IS NULL OR volume IS NULL
    OR isnan(open) OR isnan(high) OR isnan(low) OR isnan(close) OR isnan(volume)
    OR high < low OR high < greatest(open, close) OR low > least(open, close) OR NOT (low > 0) OR volume < 0
    OR (adj_close IS NOT NULL AND NOT (adj_close > 0))
    OR ($daily AND epoch_us(ts) % 86400000000 <> 0)
)"""

# The symbols with such a row (`ohlcv_schema` loads only theirs, and a changed scope's rows), in a parallel
# scan: inside TABLE_SUSPECTS' one-thread stream the expression cost 0.3 s of its 0.5 s CPU (2.5 M bars).
ROW_RULE_SUSPECTS = f"SELECT DISTINCT symbol FROM bars WHERE {SCOPE} AND {ROW_RULE_BROKEN}"

# Per symbol, whether a whole-table check can find a failing row there; only those symbols' rows are then
# loaded (or scanned in storage order), the others' counted. `OVER ()` streams each row's predecessor in scan
# order: one thread but no sort (0.6-1.7 s of CPU over 2.5 M bars, loaded machine, against 1.1-1.7 s for a
# window in (symbol, ts) order and 2.2 s for loading the bars sorted). Where a symbol's rows come as one run
# of strictly increasing ts (what the writer stores), the predecessor is the previous bar in time and
# increasing rowids mean no ingestion stored its rows out of order; any other symbol is suspect to both rules.
# price_anomalies (`expressions.suspicious_rules` with the same arithmetic, so a superset: a NaN gap and a zero
# previous close count here): a jump beyond $max_open_gap, explained by a stored action or not (those are
# labelled), zero volume, a flat bar repeating the previous close.
# no_duplicates: OUT_OF_ORDER; and DUPLICATE_KEYS, calendar_complete's counts: only an `unordered` symbol's
# rows can repeat a ts (strictly increasing ts in one run are distinct, whatever the order rows stream in).
TABLE_SUSPECTS = f"""
SELECT symbol,
    count(*) FILTER (run_start) <> 1 OR bool_or(NOT (run_start OR coalesce(previous_ts < ts, false))) AS unordered,
    unordered OR bool_or(anomalous) AS price_anomalies,
    unordered OR bool_or(NOT (run_start OR coalesce(previous_rid < rid, false))) AS no_duplicates
FROM (
    SELECT *, previous_symbol IS DISTINCT FROM symbol AS run_start,
        volume = 0 OR (previous_symbol = symbol AND (abs(open / previous_close - 1) > $max_open_gap
            OR previous_close = 0 OR (flat AND close = previous_close))) AS anomalous
    FROM (
        SELECT symbol, ts, open, close, volume, rowid AS rid,
            open = close AND high = close AND low = close AS flat,
            lag(symbol) OVER () AS previous_symbol, lag(ts) OVER () AS previous_ts,
            lag(close) OVER () AS previous_close, lag(rowid) OVER () AS previous_rid
        FROM bars WHERE {SCOPE}
    )
)
WHERE run_start OR anomalous OR NOT coalesce(previous_ts < ts AND previous_rid < rid, false)
GROUP BY symbol HAVING price_anomalies OR no_duplicates
"""

# Rows sharing (symbol, timeframe, ts): impossible under the primary key, possible in tables made without it.
DUPLICATE_KEYS = {c: f"""
SELECT symbol, count(*) AS keys, (list(strftime(ts, '%Y-%m-%d %H:%M') ORDER BY ts))[1:3] AS examples
FROM (
    SELECT b.symbol, b.ts
    FROM bars AS b {_JOIN[c]}
    WHERE {_WHERE[c]}
    GROUP BY b.symbol, b.ts
    HAVING count(*) > 1
)
GROUP BY symbol
""" for c in (False, True)}

# Rows written in one ingestion (same ingested_at) whose ts is earlier than the row stored before them (an
# ingestion writes only the windows of its run, so its rows lie inside the changed scope).
OUT_OF_ORDER = {c: f"""
SELECT symbol, count(*) AS rows, (list(strftime(ts, '%Y-%m-%d %H:%M') ORDER BY ts))[1:3] AS examples
FROM (
    SELECT b.symbol, b.ts, lag(b.ts) OVER (PARTITION BY b.symbol, b.ingested_at ORDER BY b.rowid) AS previous_ts
    FROM bars AS b {_JOIN[c]}
    WHERE {_WHERE[c]}
)
WHERE ts < previous_ts
GROUP BY symbol
""" for c in (False, True)}

# Grid timestamps of materialised partitions, between a symbol's first and last stored bar, without a bar;
# changed: grid timestamps from each changed symbol's `since` on (its life still from all its bars).
CALENDAR_MISSING = {c: f"""
WITH asset_bars AS (
    SELECT b.symbol, b.ts FROM bars AS b {_JOIN[c]} WHERE {_WHERE[c]}
),
life AS (
    SELECT symbol, min(ts) AS first_ts, max(ts) AS last_ts
    FROM {"bars WHERE timeframe = $timeframe AND symbol IN (SELECT symbol FROM changed_scope)" if c else "asset_bars"}
    GROUP BY symbol
),
expected AS (
    SELECT m.symbol, g.ts
    FROM materialized AS m {"JOIN changed_scope AS c ON c.symbol = m.symbol" if c else ""}
    JOIN grid AS g ON g.partition_date = m.partition_date {"AND g.ts >= c.since" if c else ""}
    JOIN life AS l ON l.symbol = m.symbol AND g.ts BETWEEN l.first_ts AND l.last_ts
)
SELECT e.symbol, count(*) AS missing, (list(strftime(e.ts, '%Y-%m-%d %H:%M') ORDER BY e.ts))[1:3] AS examples
FROM expected AS e
ANTI JOIN asset_bars AS b ON b.symbol = e.symbol AND b.ts = e.ts
GROUP BY e.symbol
""" for c in (False, True)}

# The symbols with missing grid timestamps (as CALENDAR_MISSING[False] finds), from counts: per materialised
# partition, the grid timestamps inside the symbol's life against its stored bars on the grid. They count as
# distinct: a symbol whose rows may repeat a ts (`unordered` in TABLE_SUSPECTS) is a candidate anyway
# (`stored.missing_candidates`). No anti join of every bar by (symbol, ts): 0.3 s where that took 1.4 s
# (500 x 10 y daily, 2026-12-02, loaded machine); CALENDAR_MISSING then names only these symbols' examples.
MISSING_CANDIDATES = f"""
WITH life AS (
    SELECT b.symbol, min(b.ts) AS first_ts, max(b.ts) AS last_ts FROM bars AS b WHERE {scope_filter("b")} GROUP BY b.symbol
),
periods AS (SELECT partition_date, count(*) AS n, min(ts) AS lo, max(ts) AS hi FROM grid GROUP BY partition_date),
expected AS (
    SELECT m.symbol, m.partition_date, CASE WHEN p.lo >= l.first_ts AND p.hi <= l.last_ts THEN p.n ELSE (
        SELECT count(*) FROM grid AS g WHERE g.partition_date = m.partition_date AND g.ts BETWEEN l.first_ts AND l.last_ts
    ) END AS n
    FROM materialized AS m JOIN periods AS p USING (partition_date) JOIN life AS l USING (symbol)
),
stored AS (
    SELECT b.symbol, g.partition_date, count(*) AS n
    FROM bars AS b JOIN grid AS g ON g.ts = b.ts
    WHERE {scope_filter("b")}
    GROUP BY b.symbol, g.partition_date
)
SELECT e.symbol FROM expected AS e LEFT JOIN stored AS s USING (symbol, partition_date)
GROUP BY e.symbol HAVING sum(e.n - coalesce(s.n, 0)) > 0
"""

# Stored bars that are not on the calendar's grid (off-session days, outside hours, off the bar grid,
# outside the market's history).
CALENDAR_UNEXPECTED = {c: f"""
SELECT b.symbol, count(*) AS unexpected, (list(strftime(b.ts, '%Y-%m-%d %H:%M') ORDER BY b.ts))[1:3] AS examples
FROM bars AS b {_JOIN[c]}
ANTI JOIN grid AS g ON g.ts = b.ts
WHERE {_WHERE[c]}
GROUP BY b.symbol
""" for c in (False, True)}

LATEST_BARS = """
SELECT s.symbol, max(b.ts) AS last_ts
FROM (SELECT unnest($symbols::VARCHAR[]) AS symbol) AS s
LEFT JOIN bars AS b ON b.symbol = s.symbol AND b.timeframe = $timeframe
GROUP BY s.symbol
ORDER BY s.symbol
"""
