"""TA-Lib-exact indicator inputs (RSI, Bollinger bands) for the indicator strategies.

Computed by ``jutsu_pipeline.indicators.indicator_frame`` over the session's ``_bt_bars`` and
registered as ``_bt_indicators(symbol, ts, rsi | bb_lower, bb_middle)`` for the signal SQL.
"""

from __future__ import annotations

import duckdb
import polars as pl

from jutsu_pipeline.backtest.strategies import BollingerReversionParams, RsiReversionParams, StrategyConfig

BARS_FOR_INDICATORS = "SELECT symbol, ts, open, high, low, close, volume FROM _bt_bars ORDER BY symbol, ts"


def register_indicators(con: duckdb.DuckDBPyConnection, strategy: StrategyConfig) -> None:
    """Compute ``strategy``'s indicators over ``_bt_bars`` and register them as ``_bt_indicators``."""
    bars = con.sql(BARS_FOR_INDICATORS).pl()
    frame = compute_indicators(bars, strategy)
    con.register("_bt_indicators", frame.to_arrow())


def compute_indicators(bars: pl.DataFrame, strategy: StrategyConfig) -> pl.DataFrame:
    """symbol, ts and the generic indicator columns the signal SQL of ``strategy.type`` reads."""
    from jutsu_pipeline.indicators import IndicatorParams, indicator_frame  # noqa: PLC0415

    p = strategy.typed_params
    if isinstance(p, RsiReversionParams):
        params = IndicatorParams(rsi_period=p.period)
        names = params.columns()
        return indicator_frame(bars, params).select("symbol", "ts", pl.col(names.rsi).alias("rsi"))
    if isinstance(p, BollingerReversionParams):
        params = IndicatorParams(bbands_period=p.period, bbands_stdev=p.nbdev)
        names = params.columns()
        return indicator_frame(bars, params).select(
            "symbol", "ts", pl.col(names.bb_lower).alias("bb_lower"), pl.col(names.bb_middle).alias("bb_middle")
        )
    raise ValueError(f"strategy type {strategy.type} needs no indicator inputs")
