"""The named OHLCV rules: their class, and one polars expression each (True = valid row).

Shared by the pre-write pandera schemas (`schema.py`) and the asset checks on the stored table
(`stored.py`). Names appear in errors, check metadata and docs/data-quality.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from jutsu_pipeline.config import Profile, QualityConfig
from jutsu_pipeline.quality.profiles import RuleClass, Severity, severity

WINDOW_COLUMN = "_partition"  # the date key of the partition window a bar falls in (null: none)
SESSION_COLUMN = "_on_session"  # whether the bar's date is a session of the market's calendar
GRID_COLUMN = "_on_grid"  # whether an intraday bar starts on its timeframe's grid (always true for daily)
PRICE_COLUMNS = ("open", "high", "low", "close")
VALUE_COLUMNS = (*PRICE_COLUMNS, "volume", "adj_close")

_ts = pl.col("ts")
_by_symbol = "symbol"


@dataclass(frozen=True)
class Rule:
    """One named rule: what it promises and its class (which decides its severity under a profile)."""

    name: str
    rule_class: RuleClass
    description: str

    def severity(self, profile: Profile) -> Severity:
        return severity(self.rule_class, profile)


_S, _I, _X = RuleClass.STRUCTURAL, RuleClass.INVARIANT, RuleClass.SUSPICIOUS
RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule("column_types", _S, "ts is a timezone-aware UTC timestamp; prices and volume are float64"),
        Rule("ohlcv_not_null", _S, "open, high, low, close and volume are present (not null, not NaN)"),
        Rule("daily_at_midnight", _S, "daily bars are keyed by the session date at 00:00 UTC"),
        Rule("ts_unique", _S, "no two bars of a symbol share a timestamp"),
        Rule("ts_increasing", _S, "a symbol's timestamps are strictly increasing"),
        Rule("inside_partition", _S, "every bar lies inside its partition's window (within the market's history; "
             "intraday: between the session's open and close)"),
        Rule("high_ge_low", _I, "high >= low"),
        Rule("high_ge_open_close", _I, "high >= max(open, close)"),
        Rule("low_le_open_close", _I, "low <= min(open, close)"),
        Rule("low_positive", _I, "low > 0"),
        Rule("volume_non_negative", _I, "volume >= 0"),
        Rule("adj_close_positive", _I, "adj_close, where given, is > 0"),
        Rule("on_session", _I, "every bar falls on a trading session of the market's calendar"),
        Rule("on_grid", _I, "an intraday bar starts on its timeframe's grid: a whole multiple of the bar length "
             "after its session's open (XNYS 1h bars at 09:30, 10:30, ...; 24/7 1h bars at :00 UTC)"),
        Rule("price_jump", _X, "|open / previous close - 1| <= quality.max_open_gap, unless the adjustment "
             "factor adj_close/close changes on that bar and explains the jump (a probable corporate action)"),
        Rule("zero_volume", _X, "volume > 0"),
        Rule("constant_price", _X, "not open = high = low = close = previous close (a flat, stale bar)"),
        Rule("calendar_missing", _X, "every session (intraday: every bar start between open and close) of a "
             "materialised partition within the symbol's stored life has a bar"),
        Rule("calendar_unexpected", _X, "every stored bar is on the calendar's grid: a session date (daily) or "
             "a bar start between the session's open and close (intraday), inside the market's history"),
        Rule("stale", _X, "the latest stored bar is no older than the last closed session (open-ended markets)"),
    )
}


def add_rule(rule: Rule) -> Rule:
    """Make a new rule known to checks, reports and the pre-write gate's messages."""
    RULES[rule.name] = rule
    return rule


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


def price_jump(quality: QualityConfig) -> pl.Expr:
    """True where the bar is NOT an unexplained jump."""
    jump = (open_gap().abs() > quality.max_open_gap).fill_null(False)
    return ~jump | corporate_action(quality)


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
ROW_RULES: dict[str, pl.Expr] = {
    **STORED_ROW_RULES,
    "ts_unique": (_ts.is_first_distinct() & _ts.is_last_distinct()).over(_by_symbol),
    "ts_increasing": (_ts.diff().fill_null(dt.timedelta(microseconds=1)) > dt.timedelta(0)).over(_by_symbol),
    "inside_partition": pl.col(WINDOW_COLUMN).is_not_null(),
    "on_session": pl.col(SESSION_COLUMN),
}
DAILY_RULES: dict[str, pl.Expr] = {
    "daily_at_midnight": _ts.dt.time() == dt.time(0),
}
INTRADAY_RULES: dict[str, pl.Expr] = {
    "on_grid": pl.col(GRID_COLUMN),
}


def suspicious_rules(quality: QualityConfig) -> dict[str, pl.Expr]:
    """Row rules for legal but unusual bars (need the rows of a symbol in time order)."""
    return {
        "price_jump": price_jump(quality),
        "zero_volume": (pl.col("volume") != 0).fill_null(True),
        "constant_price": ~_flat().fill_null(False),
    }


def row_rules(daily: bool, quality: QualityConfig | None = None) -> dict[str, pl.Expr]:
    """Every row-wise rule that applies to a timeframe."""
    quality = quality or QualityConfig()
    return {**ROW_RULES, **(DAILY_RULES if daily else INTRADAY_RULES), **suspicious_rules(quality)}


def blocking_rules(daily: bool, quality: QualityConfig | None = None) -> dict[str, pl.Expr]:
    """The row-wise rules that are errors under the quality profile: what the pre-write gate enforces."""
    quality = quality or QualityConfig()
    return {
        name: expr for name, expr in row_rules(daily, quality).items()
        if RULES[name].severity(quality.profile) is Severity.ERROR
    }
