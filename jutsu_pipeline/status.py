"""Dagster's partition status of a bars asset (its status cache, what the UI shows), the live runs
materialising it and the bounds partitions were stored with, as the planner's `PartitionStatus`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import partial

import dagster as dg
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from jutsu_pipeline.assets.partitions import bars_partitions_def
from jutsu_pipeline.instance import live_in_flight_keys
from jutsu_pipeline.partitions import BarsPartitioning, split_partition_key
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG, Bounds, PartitionStatus, range_keys

PARTITION_TAG = "dagster/partition"
HISTORY_START = "history_start"  # bars materialisation metadata: the market's start/end when stored
HISTORY_END = "history_end"
GRAIN = "partition_grain"  # the grain the partition was stored (or adopted) with
GRAIN_MARKER = "jutsu/grain_verified"


def run_keys(partitioning: BarsPartitioning, tags: Mapping[str, str]) -> set[str]:
    """The partitions a run covers, from its range or partition tag."""
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return range_keys(partitioning, tags[RANGE_START_TAG], tags[RANGE_END_TAG])
    return {tags[PARTITION_TAG]} if PARTITION_TAG in tags else set()


def _bounds(metadata: Mapping[str, dg.MetadataValue]) -> Bounds | None:
    start = metadata.get(HISTORY_START)
    if start is None:
        return None
    end = metadata.get(HISTORY_END)
    end_text = str(end.value) if end is not None else ""  # text metadata
    return dt.date.fromisoformat(str(start.value)), dt.date.fromisoformat(end_text) if end_text else None


def _latest_per_partition(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                          keys: list[str]) -> dict[str, Mapping[str, dg.MetadataValue]]:
    """partition -> metadata of its latest materialisation: the latest event ids in one grouped query, then
    those events (paging through every materialisation read a year of closes to find 500)."""
    if not keys:
        return {}
    latest = instance.event_log_storage.get_latest_storage_id_by_partition(
        asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION, set(keys))
    ids = sorted(set(latest.values()))
    metadata: dict[int, Mapping[str, dg.MetadataValue]] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        page = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=chunk),
                                               limit=len(chunk))
        for record in page.records:
            if record.asset_materialization is not None:
                metadata[record.storage_id] = record.asset_materialization.metadata
    return {partition: metadata[event_id] for partition, event_id in latest.items() if event_id in metadata}


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
    metadata = latest.asset_materialization.metadata
    bounds = _bounds(metadata)
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
    found: dict[str, Bounds] = {}
    other_grain: set[str] = set()
    for key, meta in _latest_per_partition(instance, asset_key, sorted(candidates)).items():
        recorded = _bounds(meta)
        if recorded is not None:
            found[key] = recorded
        if regrain and (GRAIN not in meta or meta[GRAIN].value != str(partitioning.grain)):
            other_grain.add(key)
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
