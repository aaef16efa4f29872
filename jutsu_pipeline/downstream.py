"""Downstream of bars as Dagster itself decides it: evaluate the automation conditions (as the
`jutsu_automation` sensor does under the daemon) and execute what they request.

`jutsu sync` keeps its own evaluation cursor in the instance, so a bars partition materialised from any path
makes its symbol stale for the next `jutsu sync` too. An evaluation that requested nothing is remembered
(`QuietMark`): the conditions read only the event log and the asset graph, so while neither changed a
`jutsu sync` with nothing to do skips loading the definitions.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.definitions.asset_daemon_cursor import AssetDaemonCursor
from dagster._serdes import deserialize_value, serialize_value

from jutsu_pipeline.partitions import contiguous_runs
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG

CURSOR_KEY = "jutsu/cli_automation_cursor"
QUIET_KEY = "jutsu/cli_downstream_quiet"
MAX_ROUNDS = 6  # an unpartitioned layer (the leaderboard) is requested one evaluation later


@dataclass
class DownstreamOutcome:
    runs: int = 0
    failed_runs: int = 0


def run_downstream(defs: dg.Definitions, instance: dg.DagsterInstance, bars_keys: list[dg.AssetKey],
                   run: Callable[[dg.JobDefinition, dict[str, str], dg.AssetKey, str], bool]) -> DownstreamOutcome:
    """Evaluate the downstream assets of `bars_keys` and execute what is requested, until nothing is."""
    selection = dg.AssetSelection.assets(*bars_keys).downstream(include_self=False)
    graph = defs.resolve_asset_graph()
    job = defs.resolve_implicit_global_asset_job_def()
    outcome = DownstreamOutcome()
    for _ in range(MAX_ROUNDS):
        stored = instance.run_storage.get_cursor_values({CURSOR_KEY}).get(CURSOR_KEY)
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection,
                                                   cursor=deserialize_value(stored, AssetDaemonCursor) if stored else None)
        requested = {key for key in selection.resolve(graph) if result.get_num_requested(key)}
        instance.run_storage.set_cursor_values({CURSOR_KEY: serialize_value(result.cursor)})
        if not requested:
            break
        # Execute the whole request in dependency order, as the daemon would: a layer requested together
        # with its inputs must not be re-requested when those inputs land a moment later.
        failed: set[dg.AssetKey] = set()
        for key in sorted(requested, key=lambda k: (len(graph.get_ancestor_asset_keys(k)), k.path)):
            if graph.get_ancestor_asset_keys(key) & failed:
                print(f"{key.to_user_string()}: not computed, an input failed in this sync.")
                failed.add(key)
                continue
            partitions = result.get_requested_partitions(key)
            partitions_def = graph.get(key).partitions_def
            spans: Sequence[tuple[str, str] | None] = [None] if partitions_def is None else [
                (run[0], run[-1]) for run in contiguous_runs([p for p in partitions if p],
                                                             list(partitions_def.get_partition_keys()))]
            subset = job.get_subset(asset_selection={key})
            for span in spans:
                tags: dict[str, str] = {} if span is None else {RANGE_START_TAG: span[0], RANGE_END_TAG: span[1]}
                label = key.to_user_string() if span is None else f"{span[0]}...{span[1]}"
                print(f"{key.to_user_string()}: computing" + ("." if span is None else f" {label}."))
                outcome.runs += 1
                if not run(subset, tags, key, label):
                    outcome.failed_runs += 1
                    failed.add(key)
    return outcome


@dataclass(frozen=True)
class QuietMark:
    """The last evaluation that requested nothing: what it saw and the blocking checks of each bars asset."""

    fingerprint: str
    high_water: int  # the event log's largest storage id before that evaluation
    blocking: dict[str, list[str]]  # bars asset -> its blocking checks (names)


def definitions_fingerprint(config: Any, bars_keys: Sequence[dg.AssetKey]) -> str:  # noqa: ANN401 - JutsuConfig
    """What an evaluation downstream of `bars_keys` depends on besides the event log: the validated
    configuration, Dagster's version and the code (jutsu_pipeline and the configured plugin modules:
    each file's path, size and modification time)."""
    import jutsu_pipeline

    try:
        settings = config.model_dump_json()
    except ValueError:  # a value pydantic cannot serialise: never equal, so always evaluated
        settings = f"{id(config)}:{os.getpid()}:{time.time_ns()}"
    parts = [settings, dg.__version__, *(key.to_user_string() for key in bars_keys)]
    roots = [Path(jutsu_pipeline.__file__).parent]
    for name in config.plugins:
        module_file = getattr(sys.modules.get(name), "__file__", None)
        if module_file:
            path = Path(module_file)
            roots.append(path.parent if path.name == "__init__.py" else path)
    for root in roots:
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            stat = path.stat()
            parts.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def high_water(instance: dg.DagsterInstance) -> int:
    """The event log's largest storage id (0 when empty)."""
    return instance.event_log_storage.get_maximum_record_id() or 0


def quiet_mark(instance: dg.DagsterInstance, fingerprint: str) -> QuietMark | None:
    """The remembered quiet evaluation, if nothing happened since and the definitions are the same."""
    stored = instance.run_storage.get_cursor_values({QUIET_KEY}).get(QUIET_KEY)
    if not stored:
        return None
    try:
        mark = QuietMark(**json.loads(stored))
    except (TypeError, ValueError):
        return None
    return mark if mark.fingerprint == fingerprint and mark.high_water == high_water(instance) else None


def remember_quiet(instance: dg.DagsterInstance, mark: QuietMark) -> None:
    instance.run_storage.set_cursor_values({QUIET_KEY: json.dumps(mark.__dict__)})


def blocking_check_names(defs: dg.Definitions, asset_key: dg.AssetKey) -> list[str]:
    """The asset's blocking checks."""
    graph = defs.resolve_asset_graph()
    return sorted(k.name for k in graph.asset_check_keys if k.asset_key == asset_key and graph.get(k).blocking)


def failing_checks(instance: dg.DagsterInstance, asset_key: dg.AssetKey, names: Sequence[str]) -> list[str]:
    """Those of the checks `names` of `asset_key` whose latest evaluation failed."""
    if not names:
        return []
    keys = [dg.AssetCheckKey(asset_key, name) for name in names]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    evaluations = {key.name: record.event.asset_check_evaluation if record.event else None
                   for key, record in latest.items()}
    return sorted(name for name, evaluation in evaluations.items() if evaluation is not None and not evaluation.passed)
