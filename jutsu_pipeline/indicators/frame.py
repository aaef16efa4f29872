"""Indicators of in-memory bars: TA-Lib called per symbol on contiguous numpy slices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import polars as pl

from jutsu_pipeline.indicators.params import IndicatorParams, as_specs, column_names
from jutsu_pipeline.indicators.registry import IndicatorSpec

KEY_COLUMNS = ("symbol", "ts")
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


def _sorted_bars(bars: pl.DataFrame) -> pl.DataFrame:
    """The input columns as float64, sorted by (symbol, ts), rejecting duplicates."""
    missing = [c for c in (*KEY_COLUMNS, *PRICE_COLUMNS) if c not in bars.columns]
    if missing:
        raise ValueError(f"bars frame lacks columns {missing}")
    frame = bars.select(pl.col("symbol").cast(pl.String), "ts", *(pl.col(c).cast(pl.Float64) for c in PRICE_COLUMNS))
    ordered = frame.select((
        (pl.col("symbol") > pl.col("symbol").shift(1))
        | ((pl.col("symbol") == pl.col("symbol").shift(1)) & (pl.col("ts") > pl.col("ts").shift(1)))
    ).slice(1).all()).item()
    if not (ordered or frame.height < 2):
        frame = frame.sort(KEY_COLUMNS)
        if frame.select(pl.struct(KEY_COLUMNS).is_duplicated().any()).item():
            raise ValueError("bars frame has duplicate (symbol, ts) rows")
    return frame


def check_finite(arrays: Mapping[str, np.ndarray], symbols: Sequence[str], lengths: np.ndarray, source: str) -> None:
    """ValueError naming the symbols (runs of `lengths` rows) with a null, NaN or infinite input."""
    starts = np.cumsum(lengths) - lengths
    for column, values in arrays.items():
        bad = ~np.isfinite(values)
        if bad.any():
            named = [symbols[k] for k in np.flatnonzero(np.logical_or.reduceat(bad, starts))]
            raise ValueError(f"{source}: null, NaN or infinite {column} in the bars of {named}; indicators need "
                             "finite inputs: correct or re-sync those bars")


def indicator_columns(arrays: Mapping[str, np.ndarray], lengths: np.ndarray,
                      specs: Iterable[IndicatorSpec]) -> dict[str, np.ndarray]:
    """Every column of `specs` (NaN where TA-Lib gives NaN) over runs of `lengths[k]` consecutive rows of
    `arrays` (finite float64 inputs; one symbol per run, in ts order)."""
    specs = tuple(specs)
    rows = int(lengths.sum())
    out = {column: np.empty(rows) for column in column_names(specs)}
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
    frame = _sorted_bars(bars)
    runs = frame.get_column("symbol").rle()
    lengths = runs.struct.field("len").to_numpy().astype(np.int64)
    arrays = {c: frame.get_column(c).to_numpy() for c in PRICE_COLUMNS}
    check_finite(arrays, runs.struct.field("value").to_list(), lengths, "bars frame")
    values = indicator_columns(arrays, lengths, as_specs(params))
    return frame.select(KEY_COLUMNS).hstack(pl.DataFrame(values, nan_to_null=True))
