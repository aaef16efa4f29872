"""On-Balance Volume (TA-Lib OBV: starts at volume[0], not 0)."""

from __future__ import annotations

import numpy as np

from jutsu_pipeline.indicators.kernels import Segments, lag, segmented_cumsum


def obv(close: np.ndarray, volume: np.ndarray, segments: Segments) -> np.ndarray:
    """OBV[0] = V[0]; then + V on an up close, - V on a down close, unchanged on an equal close."""
    prev_close = lag(close, segments, 1)
    signed = np.where(close > prev_close, volume, np.where(close < prev_close, -volume, 0.0))
    first = segments.index == 0
    signed[first] = volume[first]
    return segmented_cumsum(signed, segments.starts, segments.lengths)
