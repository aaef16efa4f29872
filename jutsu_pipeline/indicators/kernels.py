"""Vectorised building blocks over many symbols at once, reproducing TA-Lib's arithmetic order.

All arrays are flat float64 over rows sorted by (symbol, ts); `Segments` tells where each
symbol's rows start. Every output at row t depends only on rows <= t of the same symbol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class Segments:
    """Row layout of a frame sorted by (symbol, ts): one contiguous segment per symbol."""

    starts: np.ndarray  # first row of each symbol
    lengths: np.ndarray  # bars per symbol
    group: np.ndarray  # per row: segment number
    index: np.ndarray  # per row: bar number within its symbol, 0-based

    @classmethod
    def from_group(cls, group: np.ndarray) -> Segments:
        """Build from per-row segment numbers 0, 0, ..., 1, 1, ... (non-decreasing)."""
        n = group.shape[0]
        starts = np.flatnonzero(np.diff(group, prepend=-1)) if n else np.zeros(0, dtype=np.int64)
        lengths = np.diff(starts, append=n)
        index = np.arange(n, dtype=np.int64) - np.repeat(starts, lengths)
        return cls(starts=starts, lengths=lengths, group=group, index=index)

    @property
    def n_rows(self) -> int:
        return int(self.group.shape[0])


def lag(values: np.ndarray, segments: Segments, k: int, fill: float = 0.0) -> np.ndarray:
    """values[t-k] within the same symbol; `fill` for the first k bars of each symbol."""
    if k == 0:
        return values.copy()
    out = np.empty_like(values)
    out[:k] = fill
    out[k:] = values[:-k]
    out[segments.index < k] = fill
    return out


def segmented_cumsum(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Strictly sequential running total restarting at 0 at each segment (one numpy call per symbol)."""
    out = np.empty_like(values)
    for start, length in zip(starts.tolist(), lengths.tolist()):
        np.cumsum(values[start : start + length], out=out[start : start + length])
    return out


def running_sum(values: np.ndarray, segments: Segments, n: int) -> np.ndarray:
    """TA-Lib's SMA running total at each bar: `total += x[t]; out = total; total -= x[t-n+1]`.

    The adds and subtracts are interleaved into one array so a sequential cumsum performs exactly
    TA-Lib's floating-point operations in its order (bit-identical, drift included).
    `values` must be finite, with 0.0 for bars before the series becomes defined.
    """
    steps = np.empty(2 * values.shape[0])
    steps[0::2] = values
    steps[1::2] = -lag(values, segments, n - 1) if n > 1 else -values
    totals = segmented_cumsum(steps, 2 * segments.starts, 2 * segments.lengths)
    return totals[0::2]


def rolling_extreme(values: np.ndarray, segments: Segments, n: int, *, highest: bool) -> np.ndarray:
    """Max (or min) of the last n bars; rows with fewer than n bars hold garbage, mask them."""
    pick = np.maximum if highest else np.minimum
    out = values.copy()
    for k in range(1, n):
        pick(out[k:], values[:-k], out=out[k:])
    return out


def seed_sums(values: np.ndarray, segments: Segments, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per symbol with enough bars: sequential sum of values[first : first+count] (TA-Lib's seeding loop).

    Returns (row of the last summed bar, sum), for the symbols that have first+count bars.
    """
    eligible = segments.lengths >= first + count
    base = segments.starts[eligible] + first
    window = values[base[:, None] + np.arange(count)]
    sums = np.cumsum(window, axis=1)[:, -1] if count else np.zeros(base.shape[0])
    return base + (count - 1), sums


@dataclass(frozen=True)
class Recursion:
    """y[seed] = seed value; afterwards y[t] = (1 - alpha) * y[t-1] + alpha * x[t]."""

    values: np.ndarray
    seed_rows: np.ndarray
    seed_values: np.ndarray
    seed_index: int  # bar index of the seed within every symbol
    alpha: float


def run_recursions(segments: Segments, recursions: Sequence[Recursion]) -> list[np.ndarray]:
    """Evaluate several seeded exponential recursions in one polars pass (NaN before each seed).

    polars' `ewm_mean(adjust=False)` starts at the first non-null value, so nulling the bars before
    the seed and substituting the seed value yields TA-Lib's EMA / Wilder smoothing.
    """
    columns: dict[str, np.ndarray] = {"_g": segments.group}
    for k, rec in enumerate(recursions):
        x = np.where(segments.index > rec.seed_index, rec.values, np.nan)
        x[rec.seed_rows] = rec.seed_values
        columns[f"r{k}"] = x
    frame = pl.DataFrame(columns, nan_to_null=True)
    smoothed = frame.select(
        pl.col(f"r{k}").ewm_mean(alpha=rec.alpha, adjust=False).over("_g") for k, rec in enumerate(recursions)
    )
    return [smoothed.get_column(f"r{k}").to_numpy().astype(np.float64, copy=False) for k in range(len(recursions))]


def mask_lookback(values: np.ndarray, segments: Segments, lookback: int) -> np.ndarray:
    """Set the first `lookback` bars of every symbol to NaN (TA-Lib's undefined prefix)."""
    values[segments.index < lookback] = np.nan
    return values
