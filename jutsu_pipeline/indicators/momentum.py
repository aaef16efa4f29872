"""Momentum oscillators: TA-Lib RSI (Wilder), MACD (EMA alignment of TA_MACD) and slow STOCH."""

from __future__ import annotations

import numpy as np

from jutsu_pipeline.indicators.averages import ema_recursion
from jutsu_pipeline.indicators.kernels import (
    Recursion,
    Segments,
    lag,
    mask_lookback,
    rolling_extreme,
    run_recursions,
    running_sum,
    seed_sums,
)


def rsi(close: np.ndarray, segments: Segments, n: int) -> np.ndarray:
    """Wilder RSI: gains/losses seeded at bar n with their means over bars 1..n, then smoothed 1/n.

    RSI = 100 * gain / (gain + loss), and 0 (not 50) when gain + loss is exactly 0.
    """
    change = close - lag(close, segments, 1, fill=np.nan)
    change[segments.index == 0] = 0.0
    gains = np.where(change < 0.0, 0.0, change)
    losses = np.where(change < 0.0, -change, 0.0)
    recursions = []
    for series in (gains, losses):
        rows, sums = seed_sums(series, segments, 1, n)
        recursions.append(Recursion(series, rows, sums / n, seed_index=n, alpha=1.0 / n))
    gain, loss = run_recursions(segments, recursions)
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total == 0.0, 0.0, 100.0 * (gain / total))
    return mask_lookback(out, segments, n)


def macd(
    close: np.ndarray, segments: Segments, fast: int, slow: int, signal: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal and histogram as TA_MACD computes them.

    Both EMAs start at bar slow-1: the slow one seeded over bars 0..slow-1, the fast one over
    bars slow-fast..slow-1 (not at bar fast-1). The signal EMA is seeded at bar slow+signal-2
    with the mean of the line over the preceding `signal` bars; all three are NULL before it.
    """
    start = slow - 1
    slow_rec = ema_recursion(close, segments, slow)
    fast_rec = ema_recursion(close, segments, fast, first=slow - fast)
    fast_ema, slow_ema = run_recursions(segments, [fast_rec, slow_rec])
    line = fast_ema - slow_ema
    line_filled = np.where(np.isnan(line), 0.0, line)
    (signal_ema,) = run_recursions(segments, [ema_recursion(line_filled, segments, signal, first=start)])
    lookback = start + signal - 1
    hist = line - signal_ema
    return (
        mask_lookback(line, segments, lookback),
        mask_lookback(signal_ema, segments, lookback),
        mask_lookback(hist, segments, lookback),
    )


def stoch(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    segments: Segments,
    fastk: int,
    slowk: int,
    slowd: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Slow stochastic (SMA smoothing): fastK = (C - LL) / (HH - LL) * 100, 0 when HH == LL.

    slowK = SMA(slowk) of fastK, slowD = SMA(slowd) of slowK, both from TA-Lib's running totals;
    both outputs NULL for the first (fastk-1)+(slowk-1)+(slowd-1) bars.
    """
    highest = rolling_extreme(high, segments, fastk, highest=True)
    lowest = rolling_extreme(low, segments, fastk, highest=False)
    diff = highest - lowest
    with np.errstate(invalid="ignore", divide="ignore"):
        fast = np.where(diff != 0.0, (close - lowest) / diff * 100.0, 0.0)
    fast[segments.index < fastk - 1] = 0.0
    slow_k = running_sum(fast, segments, slowk) / slowk
    slow_k[segments.index < fastk + slowk - 2] = 0.0
    slow_d = running_sum(slow_k, segments, slowd) / slowd
    lookback = (fastk - 1) + (slowk - 1) + (slowd - 1)
    return mask_lookback(slow_k, segments, lookback), mask_lookback(slow_d, segments, lookback)
