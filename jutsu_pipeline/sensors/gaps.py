"""Gap repair: each tick requests at most `automation.max_runs_per_tick` of the range runs the planner
(as for `jutsu sync`) plans without the recent windows (the schedules') and the partitions in flight.
A failed repair run holds its still-missing partitions back for `retry_base_minutes`, doubling with
each further failure up to `retry_max_minutes` (the cursor keeps the count).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, replace

import dagster as dg

from jutsu_pipeline.instance import recover_dead_runs
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.status import partition_status, run_keys
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG, plan_sync, range_keys

GAP_TAG = "jutsu/gap_repair"


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


def _record_failures(instance: dg.DagsterInstance, job_name: str, asset: str, partitioning: BarsPartitioning,
                     held: list[Held], seen: float, now: float) -> tuple[list[Held], float]:
    """Add repair runs that failed after `seen` (run storage time); overlapping entries double their back-off."""
    automation = partitioning.config.automation
    records = instance.get_run_records(dg.RunsFilter(
        job_name=job_name, statuses=[dg.DagsterRunStatus.FAILURE], tags={GAP_TAG: asset},
        updated_after=dt.datetime.fromtimestamp(seen, dt.timezone.utc)))
    for record in sorted(records, key=lambda r: r.update_timestamp):
        seen = max(seen, record.update_timestamp.timestamp())
        tags = record.dagster_run.tags
        keys = run_keys(partitioning, tags)
        overlapping = [h for h in held if keys & range_keys(partitioning, h.start, h.end)]
        failures = 1 + max((h.failures for h in overlapping), default=0)
        delay = min(automation.retry_base_minutes * 2 ** (failures - 1), automation.retry_max_minutes) * 60
        held = [h for h in held if h not in overlapping]
        held.append(Held(tags[RANGE_START_TAG], tags[RANGE_END_TAG], failures, now + delay))
    return held, seen


def evaluate_gaps(instance: dg.DagsterInstance, partitioning: BarsPartitioning, asset_key: dg.AssetKey,
                  job_name: str, cursor: str | None) -> tuple[list[dg.RunRequest], str, str]:
    """(run requests, new cursor, report) for one tick."""
    now = _now()
    asset = asset_key.to_user_string()
    state = json.loads(cursor) if cursor else {}
    held = [Held(**h) for h in state.get("held", [])]
    held, seen = _record_failures(instance, job_name, asset, partitioning, held, state.get("seen", 0.0), now)
    # The planner's plan without the recent windows (the schedules' job); then without the ranges backing off.
    status = partition_status(instance, asset_key, partitioning, job_name)
    when = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    wanted = plan_sync(partitioning, status, when, include_in_progress=False)
    missing_set = set(wanted.keys)
    held = [h for h in held if range_keys(partitioning, h.start, h.end) & missing_set]  # repaired: forget
    waiting = [h for h in held if h.retry_at > now]
    blocked = frozenset().union(*(range_keys(partitioning, h.start, h.end) for h in waiting))
    plan = plan_sync(partitioning, replace(status, in_flight=status.in_flight | blocked), when,
                     include_in_progress=False) if blocked else wanted
    limit = partitioning.config.automation.max_runs_per_tick
    requests = [dg.RunRequest(tags={**r.tags, GAP_TAG: asset}) for r in plan.ranges[:limit]]
    report = (f"{asset}: {len(wanted.keys)} partition(s) to repair ({wanted.summary()}); {len(plan.keys)} to repair in "
              f"{len(plan.ranges)} range run(s), {len(requests)} requested now (at most {limit} per tick); "
              f"{len(missing_set & blocked)} backing off")
    if waiting:
        report += ": " + "; ".join(f"{h.start}...{h.end} failed {h.failures}x, retry in "
                                   f"{max(h.retry_at - now, 0) / 60:.0f} min" for h in waiting[:5])
    return requests, json.dumps({"seen": seen, "held": [asdict(h) for h in held]}), report


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
