"""The in-memory computation shared by `indicator_frame` and `compute_indicators`."""

from __future__ import annotations

import numpy as np
import polars as pl

from jutsu_pipeline.indicators.averages import bbands, ema_recursion, sma
from jutsu_pipeline.indicators.kernels import Segments, mask_lookback, run_recursions
from jutsu_pipeline.indicators.momentum import macd, rsi, stoch
from jutsu_pipeline.indicators.params import IndicatorParams
from jutsu_pipeline.indicators.volatility import atr
from jutsu_pipeline.indicators.volume import obv

KEY_COLUMNS = ("symbol", "ts")
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


def _sorted_bars(bars: pl.DataFrame) -> pl.DataFrame:
    """Select the input columns as float64, sorted by (symbol, ts), rejecting duplicates and non-finite values."""
    missing = [c for c in (*KEY_COLUMNS, *PRICE_COLUMNS) if c not in bars.columns]
    if missing:
        raise ValueError(f"bars frame lacks columns {missing}")
    frame = bars.select(
        pl.col("symbol").cast(pl.String),
        pl.col("ts"),
        *(pl.col(c).cast(pl.Float64) for c in PRICE_COLUMNS),
    )
    ordered = frame.select(
        ((pl.col("symbol") > pl.col("symbol").shift(1)) | ((pl.col("symbol") == pl.col("symbol").shift(1)) & (pl.col("ts") > pl.col("ts").shift(1))))
        .slice(1)
        .all()
    ).item()
    if not (ordered or frame.height < 2):
        frame = frame.sort(KEY_COLUMNS)
        dup = frame.select(pl.struct(KEY_COLUMNS).is_duplicated().any()).item()
        if dup:
            raise ValueError("bars frame has duplicate (symbol, ts) rows")
    if frame.select(pl.any_horizontal(~pl.col(PRICE_COLUMNS).is_finite()).any()).item():
        raise ValueError("bars frame has null, NaN or infinite prices/volumes; indicators need finite inputs")
    return frame


def indicator_columns(bars: pl.DataFrame, params: IndicatorParams) -> dict[str, np.ndarray]:
    """All indicator columns (NaN where TA-Lib gives NaN) for `bars` already sorted by (symbol, ts)."""
    segments = Segments.from_group(bars.get_column("symbol").rle_id().to_numpy())
    high, low, close, volume = (bars.get_column(c).to_numpy() for c in ("high", "low", "close", "volume"))
    names = params.columns()
    p = params
    (ema,) = run_recursions(segments, [ema_recursion(close, segments, p.ema_period)])
    upper, middle, lower = bbands(close, segments, p.bbands_period, p.bbands_stdev)
    line, signal, hist = macd(close, segments, p.macd_fast, p.macd_slow, p.macd_signal)
    slow_k, slow_d = stoch(high, low, close, segments, p.stoch_fastk, p.stoch_slowk, p.stoch_slowd)
    values = {
        names.sma: sma(close, segments, p.sma_period),
        names.ema: mask_lookback(ema, segments, p.ema_period - 1),
        names.rsi: rsi(close, segments, p.rsi_period),
        names.bb_upper: upper,
        names.bb_middle: middle,
        names.bb_lower: lower,
        names.macd: line,
        names.macd_signal: signal,
        names.macd_hist: hist,
        names.atr: atr(high, low, close, segments, p.atr_period),
        names.stoch_k: slow_k,
        names.stoch_d: slow_d,
        names.obv: obv(close, volume, segments),
    }
    return values


def indicator_frame(bars: pl.DataFrame, params: IndicatorParams) -> pl.DataFrame:
    """Indicators of in-memory bars (columns symbol, ts, open, high, low, close, volume; any order).

    Returns symbol, ts and one Float64 column per indicator, sorted by (symbol, ts), null where
    TA-Lib gives NaN. Bars are consecutive rows: a missing date is simply not a bar.
    """
    frame = _sorted_bars(bars)
    values = indicator_columns(frame, params)
    return frame.select(KEY_COLUMNS).hstack(pl.DataFrame(values, nan_to_null=True))
