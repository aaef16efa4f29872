"""Asset checks on every `<market>/bars_<tf>`: the registered `quality.checks.Check` objects, each judging
the asset's whole stored table (market symbols × timeframe), rendered as Dagster asset checks.

Partition-scoped checks misbehave in single-run range runs (docs/data-quality.md), so each check reads
the stored bars of the asset and reports per-symbol results in metadata.
"""

# No `from __future__ import annotations`: Dagster inspects the context annotation at definition time.

import datetime as dt

import dagster as dg

from jutsu_pipeline.assets.bars.assets import bars_asset_key, writer_pool
from jutsu_pipeline.config import JutsuConfig, Profile
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.quality import stored  # also registers the built-in checks
from jutsu_pipeline.quality.checks import Check, CheckInputs, checks_for
from jutsu_pipeline.quality.profiles import Severity
from jutsu_pipeline.quality.report import CheckReport, Markdown, MetadataValue
from jutsu_pipeline.resources import JutsuDuckDBResource


def check_names(config: JutsuConfig, market: str) -> list[str]:
    """The checks of a market's bars assets (`fresh` only when the market has no `end`)."""
    return [check.name for check in checks_for(config.markets[market])]


def build_bars_checks(config: JutsuConfig, partitioning: BarsPartitioning) -> list[dg.AssetChecksDefinition]:
    """The data-quality checks of one `<market>/bars_<tf>` asset."""
    return [_build_check(check, partitioning, writer_pool(config)) for check in checks_for(partitioning.config)]


def _build_check(check: Check, p: BarsPartitioning, pool: str | None) -> dg.AssetChecksDefinition:
    key = bars_asset_key(p.market, p.timeframe.value)
    profile = p.config.quality.profile

    @dg.asset_check(
        asset=key,
        name=check.name,
        blocking=check.is_blocking(profile),
        description=f"{check.description} Profile: {profile}.",
        pool=pool,
        metadata={"profile": str(profile), "rules": ", ".join(check.rules)},
    )
    def _check(context: dg.AssetCheckExecutionContext, duckdb: JutsuDuckDBResource) -> dg.AssetCheckResult:
        if not duckdb.exists():
            return check_result(check.empty_report(), profile)
        with duckdb.get_connection(read_only=True) as con:
            if not stored.has_bars_table(con):
                return check_result(check.empty_report(), profile)
            report = check.evaluate(CheckInputs(con, p, lambda: context.instance.get_materialized_partitions(key)))
        context.log.info(report.summary(profile) + f" in {report.seconds:.2f} s")
        return check_result(report, profile)

    return _check


def check_result(report: CheckReport, profile: Profile) -> dg.AssetCheckResult:
    """The report as a Dagster result: plottable numbers, markdown tables, the profile's severity."""
    return dg.AssetCheckResult(
        passed=report.passed,
        severity=dg.AssetCheckSeverity.ERROR if report.severity(profile) is Severity.ERROR else dg.AssetCheckSeverity.WARN,
        metadata={name: metadata_value(value) for name, value in report.metadata(profile).items()},
        description=report.summary(profile),
    )


def metadata_value(value: MetadataValue) -> dg.MetadataValue:
    if isinstance(value, Markdown):
        return dg.MetadataValue.md(value)
    if isinstance(value, dt.datetime):
        return dg.MetadataValue.timestamp(value)
    if isinstance(value, dict):
        return dg.MetadataValue.json(value)
    if isinstance(value, bool | int):
        return dg.MetadataValue.int(int(value))
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    return dg.MetadataValue.text(str(value))
