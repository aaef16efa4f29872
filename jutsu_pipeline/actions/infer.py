"""Infer splits and dividends from a provider's adjusted close, where that is all the provider gives.

The provider's factor f = adj_close / close steps up on each ex-date: k = f_t / f_(t-1). A step near a
simple fraction p/q (>= 1.2 or <= 0.8) is a p:q split; what is left is a dividend D = C_(t-1) * (1 - 1/k),
C_(t-1) the previous raw close, which is exactly the back-adjustment `bars_adjusted` applies, so the
stored actions reproduce the provider's adjusted series (up to the provider's own base: actions after
the last stored bar scale every adj_close by a constant).
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import duckdb
import polars as pl

from jutsu_pipeline.actions.model import DIVIDEND, SPLIT, actions_frame
from jutsu_pipeline.storage.actions import read_adjusted_closes, record_actions

MIN_STEP = 1e-6  # relative factor changes below this are rounding noise of the provider's adj_close
SPLIT_TOLERANCE = 0.005  # a step within 0.5 % of p/q (p, q <= 20) is that split
MAX_DENOMINATOR = 20


def split_ratio(step: float) -> float | None:
    """p/q if `step` is a plausible split ratio (>= 1.2 or <= 0.8 and near a simple fraction), else None."""
    if 0.8 < step < 1.2:
        return None
    fraction = Fraction(step).limit_denominator(MAX_DENOMINATOR)
    if fraction.numerator > 50 * MAX_DENOMINATOR or fraction <= 0:
        return None
    ratio = float(fraction)
    return ratio if abs(step / ratio - 1) <= SPLIT_TOLERANCE else None


def infer_actions(bars: pl.DataFrame, currency: str | None = None) -> pl.DataFrame:
    """Actions explaining the steps of adj_close/close in `bars` (symbol, ts, close, adj_close; daily)."""
    usable = pl.col("close").is_finite() & (pl.col("close") > 0) & pl.col("adj_close").is_finite() \
        & (pl.col("adj_close") > 0)  # the checks report bad values; they explain nothing
    steps = (
        bars.filter(usable).sort("symbol", "ts")
        .with_columns((pl.col("adj_close") / pl.col("close")).alias("factor"))
        .with_columns(
            (pl.col("factor") / pl.col("factor").shift(1).over("symbol")).alias("step"),
            pl.col("close").shift(1).over("symbol").alias("previous_close"),
        )
        .filter(pl.col("step").is_not_null() & ((pl.col("step") - 1).abs() > MIN_STEP))
    )
    rows: list[dict] = []
    for row in steps.iter_rows(named=True):
        step, day = row["step"], row["ts"].date()
        ratio = split_ratio(step)
        if ratio is not None:
            rows.append({"symbol": row["symbol"], "ex_date": day, "kind": SPLIT, "ratio": ratio})
            step /= ratio
        if abs(step - 1) > MIN_STEP:
            rows.append({"symbol": row["symbol"], "ex_date": day, "kind": DIVIDEND, "currency": currency,
                         "cash_amount": row["previous_close"] * (1 - 1 / step)})
    return actions_frame(rows)


def record_inferred_actions(con: duckdb.DuckDBPyConnection, provider: str, symbols: list[str],
                            currency: str | None = None, ingested_at: dt.datetime | None = None) -> int:
    """Infer the actions of `symbols` from their stored daily adj_close and record what changed."""
    actions = infer_actions(read_adjusted_closes(con, symbols), currency)
    return record_actions(con, source=f"inferred:{provider}", symbols=symbols, actions=actions,
                          ingested_at=ingested_at)
