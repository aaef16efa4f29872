"""Indicators of in-memory bars: TA-Lib called per symbol on contiguous numpy slices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import polars as pl

from jutsu_pipeline.indicators.params import IndicatorParams, as_specs, column_names
from jutsu_pipeline.indicators.registry import IndicatorSpec

KEY_COLUMNS = ("symbol", "ts")
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


def sorted_runs(position: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """The permutation ordering rows by (position, ts), None when they already are (the columns are then used
    as they are), and where each position's run starts in that order and how long it is. Duplicates: ValueError."""
    order = None
    if not ((np.diff(position) > 0) | ((np.diff(position) == 0) & (np.diff(ts) > 0))).all():
        order = np.lexsort((ts, position))
        position, ts = position[order], ts[order]
        if ((np.diff(position) == 0) & (np.diff(ts) == 0)).any():
            raise ValueError("bars have duplicate (symbol, ts) rows")
    starts = np.flatnonzero(np.diff(position, prepend=position[:1] - 1))
    return order, starts, np.diff(starts, append=position.size)


def check_finite(arrays: Mapping[str, np.ndarray], symbols: Sequence[str], starts: np.ndarray, source: str) -> None:
    """ValueError naming the symbols (runs from `starts`) with a null, NaN or infinite input."""
    for column, values in arrays.items():
        bad = ~np.isfinite(values)
        if bad.any():
            named = [symbols[k] for k in np.flatnonzero(np.logical_or.reduceat(bad, starts)).tolist()]
            raise ValueError(f"{source}: null, NaN or infinite {column} in the bars of {named}; indicators need "
                             "finite inputs: correct or re-sync those bars")


def indicator_columns(arrays: Mapping[str, np.ndarray], lengths: np.ndarray,
                      specs: Sequence[IndicatorSpec]) -> dict[str, np.ndarray]:
    """Every column of `specs` (NaN where TA-Lib gives NaN) over runs of `lengths[k]` consecutive rows of
    `arrays` (finite float64 inputs; one symbol per run, in ts order)."""
    out = {column: np.empty(int(lengths.sum())) for column in column_names(specs)}
    calls = [(spec.function(), spec.indicator.inputs, spec.columns()) for spec in specs]  # bound once, not per symbol
    stop = 0
    for length in lengths.tolist():  # one TA-Lib call per symbol and indicator: C loops over contiguous slices
        start, stop = stop, stop + length
        for function, inputs, columns in calls:
            for column, values in zip(columns, function(*(arrays[name][start:stop] for name in inputs))):
                out[column][start:stop] = values
    return out


def indicator_frame(bars: pl.DataFrame, params: IndicatorParams | Iterable[IndicatorSpec]) -> pl.DataFrame:
    """Indicators of in-memory bars (columns symbol, ts, open, high, low, close, volume; any order).

    Returns symbol, ts and one Float64 column per indicator output, sorted by (symbol, ts), null
    where TA-Lib gives NaN. Bars are consecutive rows: a missing date is simply not a bar.
    """
    missing = [c for c in (*KEY_COLUMNS, *PRICE_COLUMNS) if c not in bars.columns]
    if missing:
        raise ValueError(f"bars frame lacks columns {missing}")
    frame = bars.select(pl.col("symbol").cast(pl.String), "ts", *(pl.col(c).cast(pl.Float64) for c in PRICE_COLUMNS))
    order, starts, lengths = sorted_runs(frame.get_column("symbol").rank("dense").to_numpy().astype(np.int64),
                                         frame.get_column("ts").to_physical().to_numpy())
    frame = frame if order is None else frame[order]
    arrays = {c: frame.get_column(c).to_numpy() for c in PRICE_COLUMNS}
    check_finite(arrays, frame.get_column("symbol").gather(starts).to_list(), starts, "bars frame")
    values = indicator_columns(arrays, lengths, as_specs(params))
    return frame.select(KEY_COLUMNS).hstack(pl.DataFrame(values, nan_to_null=True))
