"""Asset checks as objects: a check names its rules, says what it promises, decides whether it blocks
under a profile and evaluates the stored bars. `register` is the one line that puts it on every bars asset."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jutsu_pipeline.config import Profile
from jutsu_pipeline.quality.profiles import Severity
from jutsu_pipeline.quality.rules import RULES
from jutsu_pipeline.storage.scope import EARLIEST

if TYPE_CHECKING:  # polars and the reports load when a check is evaluated: declaring one needs neither
    import duckdb
    import polars as pl

    from jutsu_pipeline.partitions import BarsPartitioning
    from jutsu_pipeline.quality.report import CheckReport


@dataclass(frozen=True)
class Changed:
    """What may have changed since a check's last evaluation: per symbol, the first instant to re-judge
    (`EARLIEST` for all of it); symbols not named are unchanged and passed then."""

    since: Mapping[str, dt.datetime]
    reason: str = ""

    def frame(self) -> pl.DataFrame:
        """symbol, since: the `changed_scope` relation the scoped reads join."""
        import polars as pl

        return pl.DataFrame({"symbol": list(self.since), "since": list(self.since.values())},
                            schema={"symbol": pl.String, "since": pl.Datetime("us", "UTC")})

    def with_symbols(self, symbols: Iterable[str]) -> Changed:
        """Plus the whole history of `symbols`."""
        return Changed({**self.since, **dict.fromkeys(symbols, EARLIEST)}, self.reason)


@dataclass(frozen=True)
class CheckInputs:
    """What an evaluation reads: a connection, the asset's scope, (lazily) its materialised partitions, and
    what changed since the check last ran (None: judge the whole stored table)."""

    con: duckdb.DuckDBPyConnection
    partitioning: BarsPartitioning
    materialized: Callable[[], Iterable[str]] = frozenset
    now: dt.datetime | None = None
    changed: Changed | None = None


@dataclass(frozen=True)
class Check:
    """One asset check of every `<market>/bars_<tf>`."""

    name: str
    rules: tuple[str, ...]  # names in quality.rules.RULES: their classes decide severity and blocking
    description: str
    evaluate: Callable[[CheckInputs], CheckReport]
    never_blocking: bool = False  # e.g. staleness says nothing about the stored rows being wrong
    applies: Callable[[Any], bool] = lambda market: True  # market: config.MarketConfig
    # Judges only `CheckInputs.changed` when given (its verdict on the rest still holds); a check that reads
    # the whole table every time (e.g. a user's) leaves this False and is never given a `changed`.
    incremental: bool = False

    def __post_init__(self) -> None:
        unknown = [rule for rule in self.rules if rule not in RULES]
        if unknown:
            raise ValueError(f"check {self.name}: unknown rule(s) {unknown}; add them to quality.rules.RULES")

    def is_blocking(self, profile: Profile) -> bool:
        """Blocks downstream when one of its rules is an error under `profile`."""
        return not self.never_blocking and any(RULES[r].severity(profile) is Severity.ERROR for r in self.rules)

    def empty_report(self) -> CheckReport:
        from jutsu_pipeline.quality.report import CheckReport

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
