"""Asset checks on every `<market>/bars_<tf>`: the registered `quality.checks.Check` objects as Dagster
asset checks, each one verdict on the asset's whole stored table with per-symbol results in metadata
(partition-scoped checks misbehave in range runs, docs/data-quality.md).

An incremental check re-judges only the partitions materialised since its last evaluation plus the whole
history of the symbols it failed on then: a failure keeps failing (and blocking) until the bars are fixed.
"""

# No `from __future__ import annotations`: Dagster inspects the context annotation at definition time.

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from dagster._core.storage.asset_check_execution_record import COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES

from jutsu_pipeline.assets.bars.assets import bars_asset_key, writer_pool
from jutsu_pipeline.config import JutsuConfig, Profile
from jutsu_pipeline.partitions import BarsPartitioning, split_partition_key
from jutsu_pipeline.quality import builtin_checks  # noqa: F401 - registers the built-in checks
from jutsu_pipeline.quality.checks import Changed, Check, CheckInputs, checks_for
from jutsu_pipeline.quality.profiles import Severity
from jutsu_pipeline.resources import JutsuDuckDBResource

if TYPE_CHECKING:  # the checks' logic (polars, pandera) loads when they are evaluated, not with the definitions
    from jutsu_pipeline.quality.report import CheckReport, MetadataValue


def build_bars_checks(config: JutsuConfig, p: BarsPartitioning) -> list[dg.AssetChecksDefinition]:
    """The data-quality checks of one `<market>/bars_<tf>` asset, evaluated in one step (one connection,
    one set of step events instead of one per check; each check can still be run alone)."""
    checks = checks_for(p.config)
    if not checks:
        return []
    key = bars_asset_key(p.market, p.timeframe.value)
    profile = p.config.quality.profile
    specs = [dg.AssetCheckSpec(check.name, asset=key, blocking=check.is_blocking(profile),
                               description=f"{check.description} Profile: {profile}.",
                               metadata={"profile": str(profile), "rules": ", ".join(check.rules)})
             for check in checks]

    @dg.multi_asset_check(specs=specs, name=f"{key.to_python_identifier()}_checks", can_subset=True,
                          pool=writer_pool(config),
                          description=f"The data-quality checks of {key.to_user_string()}.")
    def _checks(context: dg.AssetCheckExecutionContext, duckdb: JutsuDuckDBResource) -> Iterator[dg.AssetCheckResult]:
        from jutsu_pipeline.quality import stored
        from jutsu_pipeline.storage.ddl import relation_exists

        selected = [check for check in checks if dg.AssetCheckKey(key, check.name) in context.selected_asset_check_keys]
        if not duckdb.exists():
            yield from (check_result(check.empty_report(), profile, key, check.name) for check in selected)
            return
        instance = context.instance
        cursor = latest_materialization_id(instance, key)  # before reading: later writes are the next run's
        summaries = []
        # The checks of one step usually share their last cursor: read the partitions after it once.
        partitions_after = functools.cache(
            lambda after: instance.event_log_storage.get_materialized_partitions(key, after_cursor=after))
        with duckdb.get_connection(read_only=True) as con, stored.shared_reads():
            if not relation_exists(con, "bars"):
                yield from (check_result(check.empty_report(), profile, key, check.name) for check in selected)
                return
            for check in selected:
                fingerprint = scope_fingerprint(check, p)
                changed = changed_since_last(instance, dg.AssetCheckKey(key, check.name), p, fingerprint,
                                             partitions_after) if check.incremental else None
                report = check.evaluate(CheckInputs(con, p, lambda: instance.get_materialized_partitions(key),
                                                    changed=changed))
                report.extra.update({
                    "scope": changed.reason if changed is not None else "the whole stored table",
                    "scope_cursor": cursor,
                    "scope_fingerprint": fingerprint,
                    "scope_end": scope_end(p),
                })
                summaries.append(report.summary(profile) + f" in {report.seconds:.2f} s")
                yield check_result(report, profile, key, check.name)
        context.log.info("; ".join(summaries))

    return [_checks]


SCOPE_VERSION = 2  # bump when an incremental check's logic changes: the next evaluation judges everything
OPEN_END = ""  # `scope_end` of a market without `end`


def scope_fingerprint(check: Check, p: BarsPartitioning) -> str:
    """What a previous verdict depends on besides the bars and `scope_end` (a change: judge everything)."""
    cfg = p.config
    settings = {"version": SCOPE_VERSION, "check": check.name, "rules": list(check.rules),
                "quality": cfg.quality.model_dump(mode="json"), "start": cfg.start.isoformat(), "grain": str(p.grain)}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def scope_end(p: BarsPartitioning) -> str:
    """The market's `end` a verdict was reached under (`OPEN_END` when it has none)."""
    return p.config.end.isoformat() if p.config.end else OPEN_END


def _end_moved_since(p: BarsPartitioning, previous: object) -> dt.datetime | None | Literal[False]:
    """Where the verdicts reached under `end` = `previous` stop holding: False when `end` is unchanged, the
    start of the window that held the old `end` when it moved later (only that window's grid and the ones
    after it differ: a bar there may now be expected, or missing), None (judge everything) otherwise (an
    earlier `end` makes stored bars unexpected anywhere after it)."""
    current = scope_end(p)
    if previous == current:
        return False
    if not isinstance(previous, str) or previous == OPEN_END:
        return None
    try:
        old_end = dt.date.fromisoformat(previous)
        if current != OPEN_END and dt.date.fromisoformat(current) <= old_end:
            return None
        return p.window(p.date_key_for(old_end))[0]
    except ValueError:  # unreadable, or a session grain whose old `end` was no session: judge everything
        return None


def latest_materialization_id(instance: dg.DagsterInstance, key: dg.AssetKey) -> int:
    records = instance.fetch_materializations(key, limit=1, ascending=False).records
    return records[0].storage_id if records else 0


def changed_since_last(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, p: BarsPartitioning,
                       fingerprint: str, partitions_after: Callable[[int], Collection[str]]) -> Changed | None:
    """What to re-judge: the windows of the partitions materialised since the check's last evaluation, and
    the symbols it failed on then (whole history). None (judge everything) without a usable last verdict."""
    history = instance.event_log_storage.get_asset_check_execution_history(
        check_key, limit=1, status=set(COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES))
    evaluation = history[0].event.asset_check_evaluation if history and history[0].event is not None else None
    if evaluation is None:
        return None
    metadata: dict[str, Any] = {name: getattr(value, "value", value) for name, value in evaluation.metadata.items()}
    cursor = metadata.get("scope_cursor")
    if metadata.get("scope_fingerprint") != fingerprint or not isinstance(cursor, int):
        return None
    end_moved = _end_moved_since(p, metadata.get("scope_end"))
    if end_moved is None:
        return None
    failing: dict[str, Any] = {}
    if not evaluation.passed:
        listed = metadata.get("per_symbol") or {}
        if not isinstance(listed, dict) or len(listed) < int(metadata.get("symbols_failing") or 0):
            return None  # the failing symbols were not all listed
        failing = listed
    since: dict[str, dt.datetime] = {}
    partitions = partitions_after(cursor)
    symbols = set(p.symbols)
    try:
        for partition in partitions:
            date_key, symbol = split_partition_key(partition)
            if symbol in symbols:
                start = p.window(date_key)[0]
                since[symbol] = min(since.get(symbol, start), start)
    except ValueError:  # a key this layout cannot place: judge everything
        return None
    reason = f"changed since the last evaluation: {len(partitions)} partition(s) of {len(since)} symbol(s)"
    if end_moved:  # the market's `end` moved later: every symbol from the window that held the old one
        since = {s: min(since.get(s, end_moved), end_moved) for s in p.symbols}
        reason += f", and every symbol from {end_moved:%Y-%m-%d} (end moved from {metadata['scope_end']} to {scope_end(p) or 'open'})"
    reason += f", and the whole history of {len(failing)} symbol(s) failing then" if failing else ""
    return Changed(since, reason).with_symbols(s for s in failing if s in symbols)


def check_result(report: "CheckReport", profile: Profile, asset_key: dg.AssetKey | None = None,
                 check_name: str | None = None) -> dg.AssetCheckResult:
    """The report as a Dagster result: plottable numbers, markdown tables, the profile's severity."""
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=check_name,
        passed=report.passed,
        severity=dg.AssetCheckSeverity.ERROR if report.severity(profile) is Severity.ERROR else dg.AssetCheckSeverity.WARN,
        metadata={name: metadata_value(value) for name, value in report.metadata(profile).items()},
        description=report.summary(profile),
    )


def metadata_value(value: "MetadataValue") -> dg.MetadataValue:
    from jutsu_pipeline.quality.report import Markdown

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
