"""Asset checks on every `<market>/bars_<tf>`: they judge the asset's whole stored table, not a partition.

Partition-scoped checks misbehave in single-run range runs (docs/data-quality.md), so each check reads
the stored bars of the asset (market symbols × timeframe) and reports per-symbol results in metadata.
"""

# No `from __future__ import annotations`: Dagster inspects the context annotation at definition time.

from pathlib import Path

import dagster as dg

from jutsu_pipeline.assets.bars.assets import DUCKDB_WRITER_POOL, bars_asset_key
from jutsu_pipeline.config import JutsuConfig
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.quality.profiles import Profile, Severity
from jutsu_pipeline.quality.report import CheckReport
from jutsu_pipeline.quality.rules import RULES
from jutsu_pipeline.quality.stored import (
    CHECK_DESCRIPTIONS,
    CHECK_RULES,
    check_anomalies,
    check_calendar,
    check_duplicates,
    check_fresh,
    check_schema,
    has_bars_table,
)
from jutsu_pipeline.resources import JutsuDuckDBResource

NEVER_BLOCKING = frozenset({"fresh"})  # staleness says nothing about the stored rows being wrong


def is_blocking(check: str, profile: Profile) -> bool:
    """A check blocks downstream when one of its rules is an error under the profile (never `fresh`)."""
    if check in NEVER_BLOCKING:
        return False
    return any(RULES[rule].severity(profile) is Severity.ERROR for rule in CHECK_RULES[check])


def check_names(config: JutsuConfig, market: str) -> list[str]:
    """The checks of a market's bars assets: `fresh` only when the market has no `end`."""
    names = ["ohlcv_schema", "no_duplicates", "calendar_complete", "price_anomalies"]
    return names + (["fresh"] if config.markets[market].end is None else [])


def build_bars_checks(config: JutsuConfig, partitioning: BarsPartitioning) -> list[dg.AssetChecksDefinition]:
    """The data-quality checks of one `<market>/bars_<tf>` asset."""
    return [_build_check(name, partitioning) for name in check_names(config, partitioning.market)]


def _build_check(name: str, p: BarsPartitioning) -> dg.AssetChecksDefinition:
    key = bars_asset_key(p.market, p.timeframe.value)
    profile = p.config.quality.profile

    @dg.asset_check(
        asset=key,
        name=name,
        blocking=is_blocking(name, profile),
        description=f"{CHECK_DESCRIPTIONS[name]} Profile: {profile}.",
        pool=DUCKDB_WRITER_POOL,
        metadata={"profile": str(profile), "rules": ", ".join(CHECK_RULES[name])},
    )
    def _check(context: dg.AssetCheckExecutionContext, duckdb: JutsuDuckDBResource) -> dg.AssetCheckResult:
        if not Path(duckdb.database).exists():
            return _no_table(name, p)
        with duckdb.get_connection(read_only=True) as con:
            if not has_bars_table(con):
                return _no_table(name, p)
            report = _evaluate(name, con, p, context)
        context.log.info(report.summary(profile) + f" in {report.seconds:.2f} s")
        return report.to_result(profile)

    return _check


def _evaluate(name: str, con, p: BarsPartitioning, context: dg.AssetCheckExecutionContext) -> CheckReport:  # noqa: ANN001
    if name == "ohlcv_schema":
        return check_schema(con, p)
    if name == "no_duplicates":
        return check_duplicates(con, p)
    if name == "calendar_complete":
        key = bars_asset_key(p.market, p.timeframe.value)
        return check_calendar(con, p, context.instance.get_materialized_partitions(key))
    if name == "price_anomalies":
        return check_anomalies(con, p)
    return check_fresh(con, p)


def _no_table(name: str, p: BarsPartitioning) -> dg.AssetCheckResult:
    return CheckReport(name, CHECK_RULES[name], 0, 0).to_result(p.config.quality.profile)
