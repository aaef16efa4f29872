"""Entry/exit signals in DuckDB SQL, one statement per strategy type, over all symbols at once.

Every statement reads ``_bt_bars(symbol, ts, open, close)`` (and, for the indicator strategies,
``_bt_indicators(symbol, ts, ...)``) and returns one row per bar ordered by symbol, ts with
``symbol, ts, open, close, entry, exit, warmup``.

``warmup`` mirrors backtesting.py's ``_indicator_warmup_nbars``: the largest index of the first
non-NULL value over the strategy's indicators, where an indicator that is NULL everywhere counts
as 0 (numpy ``argmin`` of an all-True mask). backtesting.py first calls ``Strategy.next()`` on
bar ``warmup + 1``, so signals on earlier bars are masked; Buy & Hold is measured from ``warmup``.
"""

from __future__ import annotations

from typing import Any

from jutsu_pipeline.backtest.strategies import StrategyConfig

# SMA(n) = mean of the last n closes, NULL on the first n-1 bars of each symbol.
SMA_CROSS_SIGNALS = """
WITH sma AS (
    SELECT
        symbol, ts, open, close,
        row_number() OVER w - 1 AS bar,
        count(*) OVER (PARTITION BY symbol) AS n_bars,
        CASE WHEN row_number() OVER w >= $fast
             THEN avg(close) OVER (w ROWS BETWEEN $fast - 1 PRECEDING AND CURRENT ROW) END AS fast,
        CASE WHEN row_number() OVER w >= $slow
             THEN avg(close) OVER (w ROWS BETWEEN $slow - 1 PRECEDING AND CURRENT ROW) END AS slow
    FROM _bt_bars
    WINDOW w AS (PARTITION BY symbol ORDER BY ts)
),
crosses AS (
    SELECT
        *,
        greatest(CASE WHEN n_bars >= $fast THEN $fast - 1 ELSE 0 END,
                 CASE WHEN n_bars >= $slow THEN $slow - 1 ELSE 0 END) AS warmup,
        coalesce(lag(fast) OVER w < lag(slow) OVER w AND fast > slow, false) AS cross_up,
        coalesce(lag(slow) OVER w < lag(fast) OVER w AND slow > fast, false) AS cross_down
    FROM sma
    WINDOW w AS (PARTITION BY symbol ORDER BY bar)
)
SELECT symbol, ts, open, close, cross_up AND bar > warmup AS entry, cross_down AND bar > warmup AS exit, warmup
FROM crosses
ORDER BY symbol, ts
"""

# RSI crossing below `lower` enters, crossing above `upper` exits (strict on both bars).
RSI_REVERSION_SIGNALS = """
WITH joined AS (
    SELECT b.symbol, b.ts, b.open, b.close, i.rsi, row_number() OVER w - 1 AS bar
    FROM _bt_bars b
    LEFT JOIN _bt_indicators i USING (symbol, ts)
    WINDOW w AS (PARTITION BY b.symbol ORDER BY b.ts)
),
crosses AS (
    SELECT
        *,
        coalesce(min(bar) FILTER (WHERE rsi IS NOT NULL) OVER (PARTITION BY symbol), 0) AS warmup,
        coalesce(lag(rsi) OVER w > $lower AND rsi < $lower, false) AS cross_below_lower,
        coalesce(lag(rsi) OVER w < $upper AND rsi > $upper, false) AS cross_above_upper
    FROM joined
    WINDOW w AS (PARTITION BY symbol ORDER BY bar)
)
SELECT symbol, ts, open, close,
       cross_below_lower AND bar > warmup AS entry,
       cross_above_upper AND bar > warmup AS exit,
       warmup
FROM crosses
ORDER BY symbol, ts
"""

# Close below the lower band enters; close at or above the middle band exits.
BOLLINGER_REVERSION_SIGNALS = """
WITH joined AS (
    SELECT b.symbol, b.ts, b.open, b.close, i.bb_lower, i.bb_middle, row_number() OVER w - 1 AS bar
    FROM _bt_bars b
    LEFT JOIN _bt_indicators i USING (symbol, ts)
    WINDOW w AS (PARTITION BY b.symbol ORDER BY b.ts)
),
levels AS (
    SELECT
        *,
        greatest(coalesce(min(bar) FILTER (WHERE bb_lower IS NOT NULL) OVER (PARTITION BY symbol), 0),
                 coalesce(min(bar) FILTER (WHERE bb_middle IS NOT NULL) OVER (PARTITION BY symbol), 0)) AS warmup
    FROM joined
)
SELECT symbol, ts, open, close,
       coalesce(close < bb_lower, false) AND bar > warmup AS entry,
       coalesce(close >= bb_middle, false) AND bar > warmup AS exit,
       warmup
FROM levels
ORDER BY symbol, ts
"""

SIGNAL_SQL: dict[str, str] = {
    "sma_cross": SMA_CROSS_SIGNALS,
    "rsi_reversion": RSI_REVERSION_SIGNALS,
    "bollinger_reversion": BOLLINGER_REVERSION_SIGNALS,
}


def signal_query(strategy: StrategyConfig) -> tuple[str, dict[str, Any]]:
    """The statement and bound parameters producing ``strategy``'s signals."""
    p = strategy.typed_params
    if strategy.type == "sma_cross":
        return SMA_CROSS_SIGNALS, {"fast": p.fast, "slow": p.slow}  # type: ignore[attr-defined]
    if strategy.type == "rsi_reversion":
        return RSI_REVERSION_SIGNALS, {"lower": p.lower, "upper": p.upper}  # type: ignore[attr-defined]
    return BOLLINGER_REVERSION_SIGNALS, {}
