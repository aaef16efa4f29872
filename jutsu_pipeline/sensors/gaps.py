"""Gap repair: request every finished-but-unmaterialised bars partition as a few range runs.

Each tick compares the asset's materialised partitions with the configured history, leaves out
partitions in flight (queued or running runs of the sync job), the windows the close schedule will
sync next, and ranges backing off after failed repair runs, then requests at most
`automation.max_runs_per_tick` rectangles (contiguous dates per symbol, adjacent symbols merged).
Failures are tracked in the cursor: a failed repair run holds its still-missing partitions back for
`retry_base_minutes`, doubling with each further failure up to `retry_max_minutes`.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass

import dagster as dg

from jutsu_pipeline.instance import live_in_flight_keys, recover_dead_runs
from jutsu_pipeline.partitions import BarsPartitioning, partition_key, split_partition_key
from jutsu_pipeline.sync.missing import RANGE_END_TAG, RANGE_START_TAG, plan_ranges

GAP_TAG = "jutsu/gap_repair"
PARTITION_TAG = "dagster/partition"
ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING,
]
SCHEDULE_GRACE = dt.timedelta(minutes=45)  # past close + offset, a window is the gap sensor's again


def _now() -> float:
    """Wall clock (seconds since the epoch); tests replace it."""
    return time.time()


@dataclass
class Held:
    """A failed repair range and when it may be tried again."""

    start: str
    end: str
    failures: int
    retry_at: float


def range_keys(partitioning: BarsPartitioning, start: str, end: str) -> set[str]:
    """The keys of the rectangle start...end (dates × symbols in partition order)."""
    dates, symbols = partitioning.date_keys(), list(partitioning.symbols)
    (d0, s0), (d1, s1) = split_partition_key(start), split_partition_key(end)
    try:
        date_span = dates[dates.index(d0):dates.index(d1) + 1]
        symbol_span = symbols[symbols.index(s0):symbols.index(s1) + 1]
    except ValueError:  # a key from an older configuration
        return set()
    return {partition_key(d, s) for d in date_span for s in symbol_span}


def run_keys(partitioning: BarsPartitioning, tags: dict[str, str]) -> set[str]:
    """The partitions a run covers, from its range or partition tag."""
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return range_keys(partitioning, tags[RANGE_START_TAG], tags[RANGE_END_TAG])
    return {tags[PARTITION_TAG]} if PARTITION_TAG in tags else set()


def in_flight_keys(instance: dg.DagsterInstance, job_name: str, partitioning: BarsPartitioning) -> set[str]:
    """Partitions of queued or running runs of the sync job (whoever launched them)."""
    keys: set[str] = set()
    for run in instance.get_runs(dg.RunsFilter(job_name=job_name, statuses=ACTIVE_STATUSES)):
        keys |= run_keys(partitioning, run.tags)
    return keys


def pending_keys(partitioning: BarsPartitioning, now: dt.datetime, grace: dt.timedelta) -> set[str]:
    """Partitions whose window ends after now - grace: the schedule syncs them (again)."""
    recent = []
    for date_key in reversed(partitioning.date_keys()):
        if partitioning.window(date_key)[1] + grace <= now:
            break
        recent.append(date_key)
    return {partition_key(d, s) for d in recent for s in partitioning.symbols}


def missing_keys(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partitioning: BarsPartitioning,
                 now: dt.datetime) -> list[str]:
    """Unmaterialised partitions whose windows are over (and past the close schedule), in key order."""
    automation = partitioning.config.automation
    grace = dt.timedelta(minutes=automation.offset_minutes) + SCHEDULE_GRACE if automation.schedule else dt.timedelta()
    materialized = instance.get_materialized_partitions(asset_key)
    pending = pending_keys(partitioning, now, grace)
    return [k for k in partitioning.all_partition_keys() if k not in materialized and k not in pending]


def _utc_seconds(timestamp: dt.datetime) -> float:
    return (timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=dt.timezone.utc)).timestamp()


def _record_failures(instance: dg.DagsterInstance, job_name: str, asset: str, partitioning: BarsPartitioning,
                     held: list[Held], seen: float, now: float) -> tuple[list[Held], float]:
    """Add repair runs that failed after `seen` (run storage time); overlapping entries double their back-off."""
    automation = partitioning.config.automation
    records = instance.get_run_records(dg.RunsFilter(
        job_name=job_name, statuses=[dg.DagsterRunStatus.FAILURE], tags={GAP_TAG: asset},
        updated_after=dt.datetime.fromtimestamp(seen, dt.timezone.utc)))
    for record in sorted(records, key=lambda r: _utc_seconds(r.update_timestamp)):
        seen = max(seen, _utc_seconds(record.update_timestamp))
        tags = record.dagster_run.tags
        keys = run_keys(partitioning, tags)
        overlapping = [h for h in held if keys & range_keys(partitioning, h.start, h.end)]
        failures = 1 + max((h.failures for h in overlapping), default=0)
        delay = min(automation.retry_base_minutes * 2 ** (failures - 1), automation.retry_max_minutes) * 60
        held = [h for h in held if h not in overlapping]
        held.append(Held(tags[RANGE_START_TAG], tags[RANGE_END_TAG], failures, now + delay))
    return held, seen


def _describe(held: Held, now: float) -> str:
    wait = max(held.retry_at - now, 0) / 60
    return f"{held.start}...{held.end} failed {held.failures}x, retry in {wait:.0f} min"


def evaluate_gaps(instance: dg.DagsterInstance, partitioning: BarsPartitioning, asset_key: dg.AssetKey,
                  job_name: str, cursor: str | None) -> tuple[list[dg.RunRequest], str, str]:
    """(run requests, new cursor, report) for one tick."""
    now = _now()
    asset = asset_key.to_user_string()
    state = json.loads(cursor) if cursor else {}
    held = [Held(**h) for h in state.get("held", [])]
    held, seen = _record_failures(instance, job_name, asset, partitioning, held, state.get("seen", 0.0), now)
    missing = missing_keys(instance, asset_key, partitioning, dt.datetime.fromtimestamp(now, dt.timezone.utc))
    missing_set = set(missing)
    held = [h for h in held if range_keys(partitioning, h.start, h.end) & missing_set]  # repaired: forget
    waiting = [h for h in held if h.retry_at > now]
    blocked = set().union(*(range_keys(partitioning, h.start, h.end) for h in waiting))
    # Live runs of the sync job or selecting the asset (e.g. `dagster asset materialize`, a UI backfill).
    flying = in_flight_keys(instance, job_name, partitioning) | live_in_flight_keys(
        instance, asset_key, job_name, lambda tags: run_keys(partitioning, tags))
    todo = [k for k in missing if k not in flying and k not in blocked]
    ranges = plan_ranges(partitioning, todo)
    limit = partitioning.config.automation.max_runs_per_tick
    requests = [dg.RunRequest(tags={**r.tags, GAP_TAG: asset}) for r in ranges[:limit]]
    report = (f"{asset}: {len(missing)} missing partition(s); {len(todo)} to repair in {len(ranges)} range run(s), "
              f"{len(requests)} requested now (at most {limit} per tick); "
              f"{len(missing_set & flying)} in flight; {len(missing_set & blocked)} backing off")
    if waiting:
        report += ": " + "; ".join(_describe(h, now) for h in waiting[:5])
    new_cursor = json.dumps({"seen": seen, "held": [asdict(h) for h in held]})
    return requests, new_cursor, report


def build_gap_sensor(partitioning: BarsPartitioning, asset_key: dg.AssetKey, job_name: str) -> dg.SensorDefinition:
    """`<market>_bars_<tf>_gap_repair`, RUNNING by default unless `automation.gap_repair: false`."""
    enabled = partitioning.config.automation.gap_repair

    @dg.sensor(
        name=f"{partitioning.market}_bars_{partitioning.timeframe.value}_gap_repair",
        job_name=job_name,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING if enabled else dg.DefaultSensorStatus.STOPPED,
        description=(f"Requests the missing partitions of {asset_key.to_user_string()} as range runs "
                     "(new symbols: their whole history), skipping runs in flight and backing off after failures."),
    )
    def _gap_repair(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        for run in recover_dead_runs(context.instance):  # a killed run's partitions are missing again, not in flight
            context.log.warning(f"run {run.run_id} ({run.job_name}) lost its process {run.pid}: marked failed")
        requests, cursor, report = evaluate_gaps(context.instance, partitioning, asset_key, job_name, context.cursor)
        if not requests:
            return dg.SensorResult(skip_reason=report, cursor=cursor)
        context.log.info(report)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return _gap_repair
