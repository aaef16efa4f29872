"""SQL of the HTML report: read-only, scoped to one market's symbols, every value a bound parameter.

Registered Arrow tables: `grid` (partition_date, ts) is the calendar's expected bars (quality.grid).
"""

from __future__ import annotations

from jutsu_pipeline.storage.scope import scope_filter

# Stored bars per symbol and partition that fall on the calendar's grid (a window's expected bars).
BARS_PER_PARTITION = f"""
SELECT b.symbol, g.partition_date, count(*) AS bars
FROM bars AS b
JOIN grid AS g ON b.ts = g.ts
WHERE {scope_filter("b")}
GROUP BY ALL
"""

# The latest $bars bars of each symbol, with the indicator columns the market computes when {columns} names
# them and {join} is INDICATORS_JOIN (formatted identifiers come from IndicatorParams.columns(), validated).
PRICE = f"""
SELECT * FROM (
    SELECT b.symbol, epoch(b.ts)::BIGINT AS t, b.open, b.high, b.low, b.close{{columns}},
           row_number() OVER (PARTITION BY b.symbol ORDER BY b.ts DESC) AS age
    FROM {{source}} AS b{{join}}
    WHERE {scope_filter("b")}
)
WHERE age <= $bars
ORDER BY symbol, t
"""
INDICATORS_JOIN = " LEFT JOIN indicators AS i USING (symbol, timeframe, ts)"

LEADERBOARD = """
SELECT l.rank, l.strategy, l.symbol, l.timeframe, l.sharpe_ratio, l.return_pct, l.max_drawdown_pct, l.n_trades,
       p.return_ann_pct, p.win_rate_pct, p.buy_hold_return_pct, p.equity_final
FROM backtest_leaderboard AS l
LEFT JOIN backtest_performance AS p USING (strategy, symbol, timeframe)
WHERE l.market = $market AND l.rank <= $top
ORDER BY l.rank
"""

# Equity and drawdown of the leaderboard's top results ($strategies, $symbols, $timeframes: their keys, as
# lists so that the filter reaches through the backtest_equity view to its scans).
LEADERBOARD_CURVES = """
SELECT l.rank, epoch(e.ts)::BIGINT AS t, e.equity, e.drawdown_pct
FROM backtest_leaderboard AS l
JOIN backtest_equity AS e USING (strategy, symbol, timeframe)
WHERE l.market = $market AND l.rank <= $top AND list_contains($strategies::VARCHAR[], e.strategy)
  AND list_contains($symbols::VARCHAR[], e.symbol) AND list_contains($timeframes::VARCHAR[], e.timeframe)
ORDER BY l.rank, e.ts
"""
