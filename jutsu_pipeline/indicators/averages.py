"""Moving averages and Bollinger Bands (TA-Lib SMA, EMA, BBANDS with an SMA middle band)."""

from __future__ import annotations

import numpy as np

from jutsu_pipeline.indicators.kernels import Recursion, Segments, lag, mask_lookback, running_sum, seed_sums


def sma(close: np.ndarray, segments: Segments, n: int) -> np.ndarray:
    """Simple moving average: TA-Lib's running total / n; first valid bar n-1."""
    return mask_lookback(running_sum(close, segments, n) / n, segments, n - 1)


def ema_recursion(values: np.ndarray, segments: Segments, n: int, *, first: int = 0, seed_index: int | None = None) -> Recursion:
    """TA-Lib EMA: k = 2/(n+1), seeded with the mean of the n bars ending at `seed_index`.

    Plain EMA seeds at bar n-1 over bars 0..n-1; MACD's fast EMA passes a later `first`.
    """
    rows, sums = seed_sums(values, segments, first, n)
    return Recursion(
        values=values,
        seed_rows=rows,
        seed_values=sums / n,
        seed_index=first + n - 1 if seed_index is None else seed_index,
        alpha=2.0 / (n + 1),
    )


def bbands(close: np.ndarray, segments: Segments, n: int, stdev: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger Bands (upper, middle, lower): middle = SMA(n), width = stdev * population std (ddof=0).

    The variance uses deviations from the window's latest close (shifted data):
    mean(d^2) - mean(d)^2 with d = x[t-k] - x[t], so a flat window gives exactly 0 (as TA-Lib does)
    and there is no E[x^2] - mean^2 cancellation at large prices. Within ~2e-10 of TA-Lib 0.8
    on the sample data (TA-Lib's own variance is ~6e-11 from the exact value).
    """
    middle = running_sum(close, segments, n) / n
    total = np.zeros_like(close)
    total_sq = np.zeros_like(close)
    for k in range(1, n):  # one vectorised pass per window offset, not per bar
        deviation = lag(close, segments, k) - close
        total += deviation
        total_sq += deviation * deviation
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean * mean, 0.0))
    width = std * stdev
    upper = mask_lookback(middle + width, segments, n - 1)
    lower = mask_lookback(middle - width, segments, n - 1)
    return upper, mask_lookback(middle, segments, n - 1), lower
