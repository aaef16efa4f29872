"""Average True Range (TA-Lib ATR: Wilder smoothing of TRANGE, bar 0's range never used)."""

from __future__ import annotations

import numpy as np

from jutsu_pipeline.indicators.kernels import Recursion, Segments, lag, mask_lookback, run_recursions, seed_sums


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray, segments: Segments) -> np.ndarray:
    """max(H-L, |H-C[t-1]|, |L-C[t-1]|) from bar 1; 0 at bar 0 (which TA-Lib never uses)."""
    prev_close = lag(close, segments, 1)
    tr = np.maximum(np.maximum(high - low, np.abs(prev_close - high)), np.abs(prev_close - low))
    tr[segments.index == 0] = 0.0
    return tr


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, segments: Segments, n: int) -> np.ndarray:
    """ATR: seeded at bar n with mean(TR[1..n]), then atr = (atr * (n-1) + TR) / n."""
    tr = true_range(high, low, close, segments)
    rows, sums = seed_sums(tr, segments, 1, n)
    (out,) = run_recursions(segments, [Recursion(tr, rows, sums / n, seed_index=n, alpha=1.0 / n)])
    return mask_lookback(out, segments, n)
