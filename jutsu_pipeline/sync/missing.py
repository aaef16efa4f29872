"""What is missing (from Dagster's partition status) and the fewest range runs that cover it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dagster as dg

from jutsu_pipeline.partitions import BarsPartitioning, contiguous_runs, partition_key, split_partition_key

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


@dataclass(frozen=True)
class PartitionRange:
    """A rectangle of partitions executed as one run: date range × adjacent symbols."""

    first_date: str
    last_date: str
    symbols: tuple[str, ...]

    @property
    def start_key(self) -> str:
        return partition_key(self.first_date, self.symbols[0])

    @property
    def end_key(self) -> str:
        return partition_key(self.last_date, self.symbols[-1])

    @property
    def tags(self) -> dict[str, str]:
        return {RANGE_START_TAG: self.start_key, RANGE_END_TAG: self.end_key}

    def size(self, ordered_dates: list[str]) -> int:
        return (ordered_dates.index(self.last_date) - ordered_dates.index(self.first_date) + 1) * len(self.symbols)


def in_progress_keys(partitioning: BarsPartitioning, now: dt.datetime | None = None) -> set[str]:
    """Partitions whose window has not ended yet: they are re-synced even when materialised."""
    now = now or dt.datetime.now(dt.timezone.utc)
    latest = [d for d in partitioning.date_keys()[-2:] if partitioning.window(d)[1] > now]
    return {partition_key(d, s) for d in latest for s in partitioning.symbols}


def keys_to_sync(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partitioning: BarsPartitioning,
                 now: dt.datetime | None = None) -> list[str]:
    """Every partition not materialised (per Dagster), plus in-progress windows, in key order."""
    materialized = instance.get_materialized_partitions(asset_key)
    redo = in_progress_keys(partitioning, now)
    return [k for k in partitioning.all_partition_keys() if k not in materialized or k in redo]


def plan_ranges(partitioning: BarsPartitioning, keys: list[str]) -> list[PartitionRange]:
    """Cover `keys` exactly with few rectangles: contiguous dates per symbol, merged across adjacent symbols."""
    ordered = partitioning.date_keys()
    by_symbol: dict[str, list[str]] = {}
    for key in keys:
        date_key, symbol = split_partition_key(key)
        by_symbol.setdefault(symbol, []).append(date_key)
    spans: dict[tuple[str, str], list[str]] = {}
    for symbol in partitioning.symbols:
        for run in contiguous_runs(by_symbol.get(symbol, []), ordered) if symbol in by_symbol else []:
            spans.setdefault((run[0], run[-1]), []).append(symbol)
    position = {s: i for i, s in enumerate(partitioning.symbols)}
    ranges: list[PartitionRange] = []
    for (first, last), symbols in spans.items():
        group: list[str] = []
        for symbol in symbols:
            if group and position[symbol] != position[group[-1]] + 1:
                ranges.append(PartitionRange(first, last, tuple(group)))
                group = []
            group.append(symbol)
        ranges.append(PartitionRange(first, last, tuple(group)))
    return sorted(ranges, key=lambda r: (position[r.symbols[0]], ordered.index(r.first_date)))
