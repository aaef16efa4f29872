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
        out = indicator_frame(bars, IndicatorParams(rsi=[p.period]))
        return out.select("symbol", "ts", pl.col(f"rsi_{p.period}").alias("rsi"))
    if isinstance(p, BollingerReversionParams):
        out = indicator_frame(bars, IndicatorParams(bbands=[(p.period, p.nbdev)]))
        suffix = f"{p.period}_{p.nbdev:g}"
        return out.select(
            "symbol", "ts", pl.col(f"bb_lower_{suffix}").alias("bb_lower"), pl.col(f"bb_middle_{suffix}").alias("bb_middle")
        )
    raise ValueError(f"strategy type {strategy.type} needs no indicator inputs")
