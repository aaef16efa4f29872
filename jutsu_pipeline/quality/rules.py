"""The named OHLCV rules: their class, and one polars expression each (True = valid row).

Shared by the pre-write pandera schemas (`schema.py`) and the asset checks on the stored table
(`stored.py`). Names appear in errors, check metadata and docs/data-quality.md. The expressions live in
`expressions.py`: the definitions declare checks by rule names and classes only.
"""

from __future__ import annotations

from dataclasses import dataclass

from jutsu_pipeline.config import Profile
from jutsu_pipeline.quality.profiles import RuleClass, Severity, severity

WINDOW_COLUMN = "_partition"  # the date key of the partition window a bar falls in (null: none)
SESSION_COLUMN = "_on_session"  # whether the bar's date is a session of the market's calendar
GRID_COLUMN = "_on_grid"  # whether an intraday bar starts on its timeframe's grid (always true for daily)
PRICE_COLUMNS = ("open", "high", "low", "close")
VALUE_COLUMNS = (*PRICE_COLUMNS, "volume", "adj_close")

# The rules `expressions.STORED_ROW_RULES` evaluates on nothing but the stored bars (a test holds them equal).
STORED_ROW_RULE_NAMES = ("ohlcv_not_null", "high_ge_low", "high_ge_open_close", "low_le_open_close", "low_positive",
                         "volume_non_negative", "adj_close_positive")


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


def relax_hint(rules: list[str]) -> str:
    """How to let real bars through the suspicious rules among `rules`: only the strict profile blocks them."""
    suspicious = [r for r in rules if r in RULES and RULES[r].rule_class is RuleClass.SUSPICIOUS]
    if not suspicious:
        return ""
    gap = "raise the market's quality.max_open_gap above the jump (default 0.25 = 25 %) or " \
        if "price_jump" in suspicious else ""
    return (f"; {', '.join(suspicious)} {'blocks' if len(suspicious) == 1 else 'block'} only under quality.profile "
            f"strict: if these bars are real, {gap}set the market's quality.profile to standard, which stores them "
            "and warns")


def add_rule(rule: Rule) -> Rule:
    """Make a new rule known to checks, reports and the pre-write gate's messages."""
    RULES[rule.name] = rule
    return rule

