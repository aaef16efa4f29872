"""Dagster's partition status of a bars asset (its status cache, what the UI shows), the live runs
materialising it and the bounds partitions were stored with (their runs' tags, or an adopted partition's
metadata), as the planner's `PartitionStatus`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import partial

import dagster as dg
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from dagster._core.storage.sqlalchemy_compat import db_select

from jutsu_pipeline.assets.partitions import (
    GRAIN,
    HISTORY_END,
    HISTORY_START,
    PLANNER_KEYS,
    RUN_TAG_PREFIX,
    bars_partitions_def,
)
from jutsu_pipeline.instance import live_in_flight_keys
from jutsu_pipeline.partitions import BarsPartitioning, split_partition_key
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG, Bounds, PartitionStatus, range_keys

PARTITION_TAG = "dagster/partition"
GRAIN_MARKER = "jutsu/grain_verified"


def run_keys(partitioning: BarsPartitioning, tags: Mapping[str, str]) -> set[str]:
    """The partitions a run covers, from its range or partition tag."""
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return range_keys(partitioning, tags[RANGE_START_TAG], tags[RANGE_END_TAG])
    return {tags[PARTITION_TAG]} if PARTITION_TAG in tags else set()


def _recorded(metadata: Mapping[str, dg.MetadataValue], tags: Mapping[str, str]) -> dict[str, str]:
    """The planner keys of one materialisation: its run's tags, or where its run has none (an adopted partition,
    events written before the keys moved to run tags), its own metadata."""
    if RUN_TAG_PREFIX + HISTORY_START in tags:
        return {key: tags[RUN_TAG_PREFIX + key] for key in PLANNER_KEYS if RUN_TAG_PREFIX + key in tags}
    return {key: str(metadata[key].value) for key in PLANNER_KEYS if key in metadata}


def _bounds(recorded: Mapping[str, str]) -> Bounds | None:
    start = recorded.get(HISTORY_START)
    if start is None:
        return None
    end = recorded.get(HISTORY_END, "")
    return dt.date.fromisoformat(start), dt.date.fromisoformat(end) if end else None


def _run_tags(instance: dg.DagsterInstance, run_ids: set[str]) -> dict[str, Mapping[str, str]]:
    """run id -> its tags (runless events and deleted runs have none)."""
    tags: dict[str, Mapping[str, str]] = {}
    ids = sorted(run_ids)
    for start in range(0, len(ids), 1000):
        for record in instance.get_run_records(dg.RunsFilter(run_ids=ids[start:start + 1000])):
            tags[record.dagster_run.run_id] = record.dagster_run.tags
    return tags


def _latest_per_partition(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                          keys: list[str]) -> dict[str, dict[str, str]]:
    """partition -> planner keys of its latest materialisation: the latest event ids in one grouped query, their
    run ids (one query on SQL storages) and those runs' tags; only events of runs without the keys are read
    whole (deserialising a close's 500 latest events cost 0.3-0.8 s of the schedule's tick, bench_close.py)."""
    if not keys:
        return {}
    latest = instance.event_log_storage.get_latest_storage_id_by_partition(
        asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION, set(keys))
    runs = _event_runs(instance.event_log_storage, sorted(set(latest.values())))
    tags = _run_tags(instance, set(runs.values()))
    recorded = {event_id: _recorded({}, tags.get(run_id, {})) for event_id, run_id in runs.items()}
    unread = sorted(set(latest.values()) - {event_id for event_id, found in recorded.items() if found})
    for start in range(0, len(unread), 1000):
        chunk = unread[start:start + 1000]
        page = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=chunk),
                                               limit=len(chunk))
        for record in page.records:
            if record.asset_materialization is not None:
                recorded[record.storage_id] = _recorded(record.asset_materialization.metadata,
                                                        tags.get(record.run_id, {}))
    return {partition: recorded[event_id] for partition, event_id in latest.items() if event_id in recorded}


def _event_runs(storage: object, ids: list[int]) -> dict[int, str]:
    """event storage id -> run id, read from the event table without deserialising the events (SQL storages;
    another storage gets {} and its events are read whole)."""
    if not isinstance(storage, SqlEventLogStorage):
        return {}
    table, runs = SqlEventLogStorageTable, dict[int, str]()
    with storage.index_connection() as conn:
        for start in range(0, len(ids), 1000):
            query = db_select([table.c.id, table.c.run_id]).where(table.c.id.in_(ids[start:start + 1000]))
            runs.update((int(event_id), str(run_id)) for event_id, run_id in conn.execute(query).fetchall())
    return runs


def stored_layout(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partitioning: BarsPartitioning,
                  materialized: set[str]) -> tuple[dict[str, Bounds], frozenset[str]]:
    """(history bounds of stored partitions whose window could differ under today's start/end, stored
    partitions of another grain: a key can coincide across grains, January's month is the year's key).
    Partitions' own materialisations are read only when the latest one's bounds or the grain marker differ."""
    cfg = partitioning.config
    latest = instance.get_latest_materialization_event(asset_key)
    # Whether every stored partition was verified to be of this grain (a marker in the instance's KV store,
    # set once no partition of another grain is left): steady state costs one lookup.
    marker = f"{GRAIN_MARKER}/{asset_key.to_user_string()}"
    if latest is None or latest.asset_materialization is None:
        if not materialized:  # nothing stored: trivially all of this grain (spares the first close a full read)
            instance.run_storage.set_cursor_values({marker: str(partitioning.grain)})
        return {}, frozenset()
    bounds = _bounds(_recorded(latest.asset_materialization.metadata,
                               _run_tags(instance, {latest.run_id}).get(latest.run_id, {})))
    regrain = instance.run_storage.get_cursor_values({marker}).get(marker) != str(partitioning.grain)
    if not regrain and (bounds is None or bounds == (cfg.start, cfg.end)):
        return {}, frozenset()
    candidates = set(materialized) if regrain else set()
    if bounds is not None and bounds != (cfg.start, cfg.end):
        for key in materialized:
            date_key, _ = split_partition_key(key)
            try:
                if partitioning.window_for(date_key, *bounds) != partitioning.window(date_key):
                    candidates.add(key)
            except ValueError:
                continue
    per_partition = _latest_per_partition(instance, asset_key, sorted(candidates))
    found = {key: recorded for key, meta in per_partition.items() if (recorded := _bounds(meta)) is not None}
    other_grain = {key for key, meta in per_partition.items() if regrain and meta.get(GRAIN) != str(partitioning.grain)}
    if regrain and not other_grain:
        instance.run_storage.set_cursor_values({marker: str(partitioning.grain)})
    return found, frozenset(other_grain)


def partition_status(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partitioning: BarsPartitioning,
                     job_name: str | None = None) -> PartitionStatus:
    """Dagster's status of every partition of one bars asset (materialised, failed, in flight)."""
    partitions_def = bars_partitions_def(partitioning)
    cache = get_and_update_asset_status_cache_value(instance, asset_key, partitions_def)
    if cache is None:
        materialized, failed, running = set(), set(), set()
    else:
        materialized = set(cache.deserialize_materialized_partition_subsets(partitions_def).get_partition_keys())
        failed = set(cache.deserialize_failed_partition_subsets(partitions_def).get_partition_keys())
        running = set(cache.deserialize_in_progress_partition_subsets(partitions_def).get_partition_keys())
    if job_name is not None:
        # Live runs only (a killed run's partitions are missing again: jutsu_pipeline.instance recovers them).
        running = live_in_flight_keys(instance, asset_key, job_name, partial(run_keys, partitioning))
    bounds, other_grain = stored_layout(instance, asset_key, partitioning, materialized)
    return PartitionStatus(frozenset(materialized), frozenset(failed), frozenset(running), bounds, other_grain)
