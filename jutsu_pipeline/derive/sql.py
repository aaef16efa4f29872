"""SQL of derived timeframes: one statement over all the run's sessions (`derive_sessions`, registered by
the engine), every value a bound parameter; times inside are integer microseconds since the epoch.

Buckets are anchored to the session: the k-th starts at open + k * step and ends at the earlier of
open + (k+1) * step and the close (XNYS 1h: 09:30, ..., 15:30-16:00; 12:30-13:00 on an early close). A
daily bar covers the whole session, keyed by its date. A bucket with fewer base bars than its span needs
is `incomplete`; one without any has no row.
"""

DELETE_DERIVED = """
DELETE FROM bars
USING derive_sessions AS s
WHERE bars.symbol = s.symbol AND bars.timeframe = $timeframe AND bars.ts >= s."start" AND bars.ts < s."end"
"""

# Bound bounds and symbols (not subqueries) so the scan prunes by zone maps and filters in place.
_BASE_BARS = """
SELECT symbol, ts, open, high, low, close, volume FROM bars
WHERE timeframe = $base AND ts >= $lo AND ts < $hi AND list_contains($symbols, symbol)
"""

# Sessions that open and close on their own date in UTC (equity exchanges but e.g. Sydney in summer;
# 24/7 days): a bar's UTC day is its session; a hash join with `derive_days(day, s_open, s_close)` (one
# row per session day) gives its open and close.
_BY_DAY = f"""
SELECT b.symbol, epoch_us(b.ts) AS t, b.open, b.high, b.low, b.close, b.volume, b.day, d.s_open, d.s_close
FROM (SELECT *, epoch_us(ts) // 86400000000 AS day FROM ({_BASE_BARS})) AS b
JOIN derive_days AS d ON b.day = d.day
"""

# Sessions crossing 00:00 UTC: ASOF finds each bar's session with one sort-merge pass.
_BY_ASOF = f"""
SELECT b.symbol, epoch_us(b.ts) AS t, b.open, b.high, b.low, b.close, b.volume,
       s.session - DATE '1970-01-01' AS day, epoch_us(s.open) AS s_open, epoch_us(s.close) AS s_close
FROM ({_BASE_BARS}) AS b
ASOF JOIN derive_sessions AS s ON b.symbol = s.symbol AND b.ts >= s.open
"""

_AGGREGATE = """
bucketed AS (  -- b: the bucket's start (epoch us)
    SELECT *, CASE WHEN $daily THEN s_open ELSE s_open + (t - s_open) // $step_us * $step_us END AS b
    FROM base
    WHERE t >= s_open AND t < s_close
),
buckets AS (
    SELECT symbol, b, any_value(day) AS day, any_value(s_close) AS s_close,
           arg_min(open, t) AS open, max(high) AS high, min(low) AS low, arg_max(close, t) AS close,
           sum(volume) AS volume, count(*) AS n
    FROM bucketed
    GROUP BY symbol, b
),
kept AS (  -- only the run's (symbol, session) partitions
    SELECT * FROM buckets AS bk
    WHERE EXISTS (SELECT 1 FROM derive_sessions AS ds
                  WHERE ds.symbol = bk.symbol AND ds.session = DATE '1970-01-01' + bk.day::INTEGER)
)
SELECT
    symbol,
    $timeframe,
    make_timestamp(CASE WHEN $daily THEN day * 86400000000 ELSE b END) AT TIME ZONE 'UTC' AS ts,
    open, high, low, close, volume,
    NULL,
    $source,
    $ingested_at,
    -- base bars the bucket should hold: its span (clipped at the close) / the base step, rounded up
    n < ceil((least(b + $step_us, s_close) - b) / $base_us) AS incomplete
FROM kept
ORDER BY symbol, ts  -- one ingestion stores its rows in time order (the no_duplicates check relies on it)
"""

_INSERT = "INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume, adj_close, source, ingested_at, incomplete)"

INSERT_DERIVED_BY_DAY = f"{_INSERT}\nWITH base AS ({_BY_DAY}),\n{_AGGREGATE}"
INSERT_DERIVED_BY_ASOF = f"{_INSERT}\nWITH base AS ({_BY_ASOF}),\n{_AGGREGATE}"

COUNT_INCOMPLETE = """
SELECT count(*) FROM bars WHERE timeframe = $timeframe AND incomplete AND ingested_at = $ingested_at
"""
