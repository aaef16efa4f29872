"""Indicators of in-memory bars: TA-Lib called per symbol on contiguous numpy slices."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

from jutsu_pipeline.indicators.params import IndicatorParams, as_specs, column_names
from jutsu_pipeline.indicators.registry import IndicatorSpec

KEY_COLUMNS = ("symbol", "ts")
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


def _sorted_bars(bars: pl.DataFrame) -> pl.DataFrame:
    """The input columns as float64, sorted by (symbol, ts), rejecting duplicates and non-finite values."""
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
    if frame.select(pl.any_horizontal(~pl.col(PRICE_COLUMNS).is_finite()).any()).item():
        raise ValueError("bars frame has null, NaN or infinite prices/volumes; indicators need finite inputs")
    return frame


def indicator_columns(bars: pl.DataFrame, specs: Iterable[IndicatorSpec]) -> dict[str, np.ndarray]:
    """Every column of `specs` (NaN where TA-Lib gives NaN) for finite bars sorted by (symbol, ts)."""
    specs = tuple(specs)
    arrays = {c: bars.get_column(c).to_numpy() for c in PRICE_COLUMNS if c in bars.columns}
    out = {column: np.empty(bars.height) for column in column_names(specs)}
    runs = bars.select(pl.col("symbol").rle().struct.field("len")).to_series().to_numpy()
    targets = [(spec, spec.columns()) for spec in specs]  # column names formatted once, not per symbol
    start = 0
    for length in runs.tolist():  # one TA-Lib call per symbol and indicator: C loops over contiguous slices
        window = {name: values[start:start + length] for name, values in arrays.items()}
        for spec, columns in targets:
            for column, values in zip(columns, spec.compute(window)):
                out[column][start:start + length] = values
        start += length
    return out


def indicator_frame(bars: pl.DataFrame, params: IndicatorParams | Iterable[IndicatorSpec]) -> pl.DataFrame:
    """Indicators of in-memory bars (columns symbol, ts, open, high, low, close, volume; any order).

    Returns symbol, ts and one Float64 column per indicator output, sorted by (symbol, ts), null
    where TA-Lib gives NaN. Bars are consecutive rows: a missing date is simply not a bar.
    """
    frame = _sorted_bars(bars)
    values = indicator_columns(frame, as_specs(params))
    return frame.select(KEY_COLUMNS).hstack(pl.DataFrame(values, nan_to_null=True))
