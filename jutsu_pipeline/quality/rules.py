"""The named OHLCV rules: one polars expression each (True = valid row), shared by every schema.

Names appear in errors, check metadata and docs/data-quality.md.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

WINDOW_COLUMN = "_partition"  # the date key of the partition window a bar falls in (null: none)
SESSION_COLUMN = "_on_session"  # whether the bar's date is a session of the market's calendar
PRICE_COLUMNS = ("open", "high", "low", "close")
VALUE_COLUMNS = (*PRICE_COLUMNS, "volume", "adj_close")

_ts = pl.col("ts")
_by_symbol = "symbol"

RULE_DESCRIPTIONS: dict[str, str] = {
    "column_types": "ts is a timezone-aware UTC timestamp; prices and volume are float64",
    "ohlcv_not_null": "open, high, low, close and volume are present (not null, not NaN)",
    "high_ge_open_close": "high >= max(open, close)",
    "low_le_open_close": "low <= min(open, close)",
    "low_positive": "low > 0",
    "volume_non_negative": "volume >= 0",
    "adj_close_positive": "adj_close, where given, is > 0",
    "ts_unique": "no two bars of a symbol share a timestamp",
    "ts_increasing": "a symbol's timestamps are strictly increasing",
    "daily_at_midnight": "daily bars are keyed by the session date at 00:00 UTC",
    "inside_partition": "every bar lies inside its partition's window (within the market's history)",
    "on_session": "every bar falls on a trading session of the market's calendar",
}

ROW_RULES: dict[str, pl.Expr] = {
    "ohlcv_not_null": pl.all_horizontal(
        pl.col(c).is_not_null() & pl.col(c).is_not_nan() for c in (*PRICE_COLUMNS, "volume")
    ),
    "high_ge_open_close": pl.col("high") >= pl.max_horizontal("open", "close"),
    "low_le_open_close": pl.col("low") <= pl.min_horizontal("open", "close"),
    "low_positive": pl.col("low") > 0,
    "volume_non_negative": pl.col("volume") >= 0,
    "adj_close_positive": pl.col("adj_close").is_null() | (pl.col("adj_close") > 0),
    "ts_unique": (_ts.is_first_distinct() & _ts.is_last_distinct()).over(_by_symbol),
    "ts_increasing": (_ts.diff().fill_null(dt.timedelta(microseconds=1)) > dt.timedelta(0)).over(_by_symbol),
    "inside_partition": pl.col(WINDOW_COLUMN).is_not_null(),
    "on_session": pl.col(SESSION_COLUMN),
}
DAILY_RULES: dict[str, pl.Expr] = {
    "daily_at_midnight": _ts.dt.time() == dt.time(0),
}


def row_rules(daily: bool) -> dict[str, pl.Expr]:
    """The row-wise rules that apply to a timeframe."""
    return {**ROW_RULES, **(DAILY_RULES if daily else {})}
