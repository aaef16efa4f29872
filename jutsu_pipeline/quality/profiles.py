"""Rule classes and severities: how severe each class of rule is under a market's validation profile."""

from __future__ import annotations

from enum import StrEnum

from jutsu_pipeline.config import Profile


class RuleClass(StrEnum):
    """What kind of promise a rule checks."""

    STRUCTURAL = "structural"  # the row cannot be stored or placed correctly (types, nulls, keys, windows)
    INVARIANT = "invariant"  # OHLCV facts that always hold for correct data (high >= low, volume >= 0, sessions)
    SUSPICIOUS = "suspicious"  # legal but unusual (big gaps, zero volume, flat prices, calendar gaps)


class Severity(StrEnum):
    ERROR = "error"  # blocks the write before storing, and fails blocking checks
    WARNING = "warning"  # stored; reported by the asset checks as a warning


_ERROR_CLASSES: dict[Profile, frozenset[RuleClass]] = {
    Profile.STRICT: frozenset(RuleClass),
    Profile.STANDARD: frozenset({RuleClass.STRUCTURAL, RuleClass.INVARIANT}),
    Profile.LENIENT: frozenset({RuleClass.STRUCTURAL}),
}


def severity(rule_class: RuleClass, profile: Profile) -> Severity:
    """The severity of a class of rule under a profile."""
    return Severity.ERROR if rule_class in _ERROR_CLASSES[profile] else Severity.WARNING
