"""Asset checks as objects: a check names its rules, says what it promises, decides whether it blocks
under a profile and evaluates the stored bars. `register` is the one line that puts it on every bars asset."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jutsu_pipeline.config import Profile
from jutsu_pipeline.quality.profiles import Severity
from jutsu_pipeline.quality.report import CheckReport
from jutsu_pipeline.quality.rules import RULES

if TYPE_CHECKING:
    import duckdb

    from jutsu_pipeline.partitions import BarsPartitioning


@dataclass(frozen=True)
class CheckInputs:
    """What an evaluation reads: a connection, the asset's scope, and (lazily) its materialised partitions."""

    con: duckdb.DuckDBPyConnection
    partitioning: BarsPartitioning
    materialized: Callable[[], Iterable[str]] = frozenset
    now: dt.datetime | None = None


@dataclass(frozen=True)
class Check:
    """One asset check of every `<market>/bars_<tf>`."""

    name: str
    rules: tuple[str, ...]  # names in quality.rules.RULES: their classes decide severity and blocking
    description: str
    evaluate: Callable[[CheckInputs], CheckReport]
    never_blocking: bool = False  # e.g. staleness says nothing about the stored rows being wrong
    applies: Callable[[Any], bool] = lambda market: True  # market: config.MarketConfig

    def __post_init__(self) -> None:
        unknown = [rule for rule in self.rules if rule not in RULES]
        if unknown:
            raise ValueError(f"check {self.name}: unknown rule(s) {unknown}; add them to quality.rules.RULES")

    def is_blocking(self, profile: Profile) -> bool:
        """Blocks downstream when one of its rules is an error under `profile`."""
        return not self.never_blocking and any(RULES[r].severity(profile) is Severity.ERROR for r in self.rules)

    def empty_report(self) -> CheckReport:
        return CheckReport(self.name, self.rules, 0, 0)


_CHECKS: dict[str, Check] = {}


def register(check: Check) -> Check:
    """Put `check` on every bars asset of the markets it applies to (re-registering a name replaces it)."""
    _CHECKS[check.name] = check
    return check


def unregister(name: str) -> None:
    _CHECKS.pop(name, None)


def get(name: str) -> Check:
    return _CHECKS[name]


def checks_for(market: Any) -> list[Check]:
    """The registered checks that apply to a market (config.MarketConfig), in registration order."""
    return [check for check in _CHECKS.values() if check.applies(market)]
