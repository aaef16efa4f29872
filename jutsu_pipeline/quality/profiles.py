"""Validation profiles: how severe each class of rule is for a market, and the anomaly thresholds."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Profile(StrEnum):
    """How strictly a market's bars are judged (`quality.profile` in jutsu.yaml)."""

    STRICT = "strict"  # every rule is an error
    STANDARD = "standard"  # structural and invariant rules are errors, suspicious ones warnings
    LENIENT = "lenient"  # only structural rules are errors (providers with known quirks)


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


class QualityConfig(BaseModel):
    """A market's data-quality settings (`markets.<name>.quality` in jutsu.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Profile = Profile.STANDARD
    max_open_gap: float = Field(
        default=0.25, gt=0, description="|open / previous close - 1| above this is a price jump (0.25 = 25 %)."
    )
    min_factor_change: float = Field(
        default=0.01, gt=0, lt=1,
        description="A relative change of adj_close/close above this on a jump's bar marks a corporate action.",
    )
