"""The polars expression of each row rule in `rules.RULES` (True = valid row), and the rule sets per timeframe."""

from __future__ import annotations

import datetime as dt

import polars as pl

from jutsu_pipeline.config import QualityConfig
from jutsu_pipeline.quality.profiles import Severity
from jutsu_pipeline.quality.rules import (
    GRID_COLUMN,
    PRICE_COLUMNS,
    RULES,
    SESSION_COLUMN,
    STORED_ROW_RULE_NAMES,
    WINDOW_COLUMN,
)

_ts = pl.col("ts")
_by_symbol = "symbol"


def previous(column: str | pl.Expr) -> pl.Expr:
    """The previous row's value within the same symbol (a symbol's rows are contiguous and in time order)."""
    expr = pl.col(column) if isinstance(column, str) else column
    same_symbol = pl.col(_by_symbol) == pl.col(_by_symbol).shift(1)
    return pl.when(same_symbol).then(expr.shift(1))


def adjustment_factor() -> pl.Expr:
    """The provider's adjustment factor adj_close / close (null without adj_close)."""
    return pl.col("adj_close") / pl.col("close")


def open_gap() -> pl.Expr:
    """open / previous close - 1 within a symbol (rows in time order); null on a symbol's first row."""
    return (pl.col("open") / previous("close") - 1).fill_nan(None)


def factor_change() -> pl.Expr:
    """Relative change of the adjustment factor against the previous bar (null without adj_close)."""
    factor = adjustment_factor()
    return (factor / previous(factor) - 1).fill_nan(None)


def adjusted_gap() -> pl.Expr:
    """The open gap measured on adjusted prices: what is left of a jump once the factor change is applied."""
    factor = adjustment_factor()
    return (pl.col("open") * factor / (previous("close") * previous(factor)) - 1).fill_nan(None)


def corporate_action(quality: QualityConfig) -> pl.Expr:
    """A jump explained by a change of the adjustment factor (split, reverse split, big dividend)."""
    return (
        (factor_change().abs() > quality.min_factor_change) & (adjusted_gap().abs() <= quality.max_open_gap)
    ).fill_null(False)


def price_jump(quality: QualityConfig, explained: pl.Expr | None = None) -> pl.Expr:
    """True where the bar is NOT an unexplained jump: explained by `corporate_action`, or by `explained` when
    given (the stored checks: a stored corporate action on the bar's ex-date)."""
    jump = (open_gap().abs() > quality.max_open_gap).fill_null(False)
    return ~jump | (corporate_action(quality) if explained is None else explained)


def _flat() -> pl.Expr:
    close = pl.col("close")
    return (pl.col("open") == close) & (pl.col("high") == close) & (pl.col("low") == close) & (close == previous("close"))


STORED_ROW_RULES: dict[str, pl.Expr] = {  # need nothing but the bars themselves
    "ohlcv_not_null": pl.all_horizontal(
        pl.col(c).is_not_null() & pl.col(c).is_not_nan() for c in (*PRICE_COLUMNS, "volume")
    ),
    "high_ge_low": pl.col("high") >= pl.col("low"),
    "high_ge_open_close": pl.col("high") >= pl.max_horizontal("open", "close"),
    "low_le_open_close": pl.col("low") <= pl.min_horizontal("open", "close"),
    "low_positive": pl.col("low") > 0,
    "volume_non_negative": pl.col("volume") >= 0,
    "adj_close_positive": pl.col("adj_close").is_null() | (pl.col("adj_close") > 0),
}
assert tuple(STORED_ROW_RULES) == STORED_ROW_RULE_NAMES  # the names the definitions declare checks with
ROW_RULES: dict[str, pl.Expr] = {
    **STORED_ROW_RULES,
    "ts_unique": (_ts.is_first_distinct() & _ts.is_last_distinct()).over(_by_symbol),
    "ts_increasing": (_ts.diff().fill_null(dt.timedelta(microseconds=1)) > dt.timedelta(0)).over(_by_symbol),
    "inside_partition": pl.col(WINDOW_COLUMN).is_not_null(),
    "on_session": pl.col(SESSION_COLUMN),
}
_same_as_previous = pl.col(_by_symbol).eq_missing(pl.col(_by_symbol).shift(1))
# The same verdicts as ROW_RULES' key rules when each symbol's rows are contiguous and in ts order without
# nulls (a run's fetched bars): neighbours compared, no window per symbol (2.6 of 3.0 s of the gate over
# 4.9 M 1-minute bars, loaded machine).
ORDERED_KEY_RULES: dict[str, pl.Expr] = {
    "ts_unique": ~((_same_as_previous & (_ts == _ts.shift(1)))
                   | (pl.col(_by_symbol).eq_missing(pl.col(_by_symbol).shift(-1)) & (_ts == _ts.shift(-1)))),
    "ts_increasing": pl.when(_same_as_previous).then(_ts.diff()).fill_null(dt.timedelta(microseconds=1)) > dt.timedelta(0),
}
DAILY_RULES: dict[str, pl.Expr] = {
    "daily_at_midnight": _ts.dt.time() == dt.time(0),
}
INTRADAY_RULES: dict[str, pl.Expr] = {
    "on_grid": pl.col(GRID_COLUMN),
}


def suspicious_rules(quality: QualityConfig, explained: pl.Expr | None = None) -> dict[str, pl.Expr]:
    """Row rules for legal but unusual bars (need the rows of a symbol in time order); `explained`: `price_jump`'s."""
    return {
        "price_jump": price_jump(quality, explained),
        "zero_volume": (pl.col("volume") != 0).fill_null(True),
        "constant_price": ~_flat().fill_null(False),
    }


def row_rules(daily: bool, quality: QualityConfig | None = None, ordered: bool = False) -> dict[str, pl.Expr]:
    """Every row-wise rule that applies to a timeframe (`ordered`: for rows contiguous and sorted per symbol)."""
    quality = quality or QualityConfig()
    return {**ROW_RULES, **(ORDERED_KEY_RULES if ordered else {}), **(DAILY_RULES if daily else INTRADAY_RULES),
            **suspicious_rules(quality)}


def blocking_rules(daily: bool, quality: QualityConfig | None = None, ordered: bool = False) -> dict[str, pl.Expr]:
    """The row-wise rules that are errors under the quality profile: what the pre-write gate enforces."""
    quality = quality or QualityConfig()
    return {
        name: expr for name, expr in row_rules(daily, quality, ordered).items()
        if RULES[name].severity(quality.profile) is Severity.ERROR
    }
