"""The one planner of "what must run" for a bars asset: `jutsu sync`, the schedules and the gap-repair
sensor all call `plan_sync` on Dagster's partition status (read by jutsu_pipeline.status), so they agree."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from itertools import groupby

from jutsu_pipeline.partitions import BarsPartitioning, contiguous_runs, partition_key, split_partition_key

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
REFRESH_TAG = "jutsu/refresh"  # "tail": windows already stored are refreshed from their last final bar on
TAIL = "tail"
# A window counts as in progress until this long after it ends (the close schedule's offset is added):
# syncs within it refresh the window's tail (cheap), so late or revised final bars land without a full
# refetch, and an early close (13:00) is still recent at the regular close's schedule tick.
SETTLE = dt.timedelta(hours=6)

Bounds = tuple[dt.date, dt.date | None]


@dataclass(frozen=True)
class PartitionStatus:
    """Dagster's view of one bars asset: materialised, failed (latest attempt failed), in-flight keys,
    and the market history bounds each (bounds-changed candidate) partition was last stored with."""

    materialized: frozenset[str]
    failed: frozenset[str] = frozenset()
    in_flight: frozenset[str] = frozenset()
    stored_bounds: dict[str, Bounds] = field(default_factory=dict)
    other_grain: frozenset[str] = frozenset()  # stored under another partition grain: not this window


@dataclass(frozen=True)
class PartitionRange:
    """A rectangle of partitions executed as one run: date range × adjacent symbols."""

    first_date: str
    last_date: str
    symbols: tuple[str, ...]
    tail: bool = False  # every window in it is already stored: refresh from the last final bar

    @property
    def start_key(self) -> str:
        return partition_key(self.first_date, self.symbols[0])

    @property
    def end_key(self) -> str:
        return partition_key(self.last_date, self.symbols[-1])

    @property
    def tags(self) -> dict[str, str]:
        tags = {RANGE_START_TAG: self.start_key, RANGE_END_TAG: self.end_key}
        if self.tail:
            tags[REFRESH_TAG] = TAIL
        return tags


@dataclass
class SyncPlan:
    """What must run for one bars asset, by reason, and the fewest range runs covering it."""

    total: int
    missing: list[str] = field(default_factory=list)  # never stored (window over or in progress)
    failed: list[str] = field(default_factory=list)  # the latest attempt failed
    in_progress: list[str] = field(default_factory=list)  # stored, window not over: tail refresh
    moved: list[str] = field(default_factory=list)  # stored, but start/end moved inside the window (or another grain)
    in_flight: list[str] = field(default_factory=list)  # a queued/running run covers it: left alone
    ranges: list[PartitionRange] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [*self.missing, *self.failed, *self.in_progress, *self.moved]

    def summary(self) -> str:
        parts = [f"{len(v)} {name}" for name, v in (("missing", self.missing), ("failed", self.failed),
                 ("in progress", self.in_progress), ("window moved", self.moved), ("in flight", self.in_flight)) if v]
        return ", ".join(parts) or "nothing"


def in_progress_dates(partitioning: BarsPartitioning, now: dt.datetime, settle: dt.timedelta) -> list[str]:
    """Date keys whose window has started and ends after now - settle (the newest few), oldest first."""
    recent: list[str] = []
    for date_key in reversed(partitioning.date_keys()):
        start, end = partitioning.window(date_key)
        if end + settle <= now:
            break
        if start <= now:
            recent.append(date_key)
    return recent[::-1]


def moved_keys(partitioning: BarsPartitioning, status: PartitionStatus) -> tuple[list[str], list[str]]:
    """(start moved, only end moved): stored partitions whose window differs under today's bounds."""
    start_moved, end_moved = [], []
    for key, (start, end) in status.stored_bounds.items():
        if key not in status.materialized:
            continue
        date_key, _ = split_partition_key(key)
        try:
            now_window = partitioning.window(date_key)
        except ValueError:
            continue
        old_window = partitioning.window_for(date_key, start, end)
        if old_window[0] != now_window[0]:
            start_moved.append(key)
        elif old_window[1] != now_window[1]:
            end_moved.append(key)
    return start_moved, end_moved


def plan_sync(partitioning: BarsPartitioning, status: PartitionStatus, now: dt.datetime | None = None,
              *, include_in_progress: bool = True, only_recent: bool = False) -> SyncPlan:
    """Missing ∪ failed ∪ in-progress ∪ window-moved partitions (minus in-flight ones) as range runs; stored
    windows in progress or whose end moved get `tail` runs. `include_in_progress=False` (the gap sensor)
    leaves recent windows to the schedules; `only_recent=True` (the schedules) plans just those."""
    now = now or dt.datetime.now(dt.timezone.utc)
    settle = dt.timedelta(minutes=partitioning.config.automation.offset_minutes) + SETTLE
    dates = partitioning.date_keys()
    recent = set(in_progress_dates(partitioning, now, settle))
    plan = SyncPlan(total=len(dates) * len(partitioning.symbols))
    start_moved, end_moved = map(set, moved_keys(partitioning, status))
    full: list[str] = []
    tail: list[str] = []
    for symbol in partitioning.symbols:
        for date_key in dates:
            if only_recent and date_key not in recent:
                continue
            key = partition_key(date_key, symbol)
            if key in status.in_flight:
                plan.in_flight.append(key)
                continue
            stored = key in status.materialized
            if key in status.failed:
                plan.failed.append(key)
                full.append(key)
            elif not stored:
                if date_key in recent and not include_in_progress:
                    continue
                plan.missing.append(key)
                full.append(key)
            elif key in start_moved or key in status.other_grain:
                plan.moved.append(key)
                full.append(key)
            elif key in end_moved:
                plan.moved.append(key)
                tail.append(key)
            elif date_key in recent and include_in_progress:
                plan.in_progress.append(key)
                tail.append(key)
    plan.ranges = plan_ranges(partitioning, full) + plan_ranges(partitioning, tail, tail=True)
    return plan


def plan_ranges(partitioning: BarsPartitioning, keys: list[str], *, tail: bool = False) -> list[PartitionRange]:
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
    date_position = {d: i for i, d in enumerate(ordered)}
    ranges: list[PartitionRange] = []
    for (first, last), symbols in spans.items():  # symbols in partition order: a run of adjacent ones is one range
        for _, adjacent in groupby(enumerate(symbols), key=lambda item: position[item[1]] - item[0]):
            ranges.append(PartitionRange(first, last, tuple(symbol for _, symbol in adjacent), tail))
    return sorted(ranges, key=lambda r: (position[r.symbols[0]], date_position[r.first_date]))


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


def held_symbols(partitioning: BarsPartitioning, status: PartitionStatus) -> dict[str, str]:
    """Symbols whose downstream must wait, with why: a bars partition failed, or one is missing."""
    dates = partitioning.date_keys()
    held: dict[str, str] = {}
    for symbol in partitioning.symbols:
        keys = [partition_key(d, symbol) for d in dates]
        failed = [k for k in keys if k in status.failed]
        missing = [k for k in keys if k not in status.materialized and k not in status.failed]
        if failed:
            held[symbol] = f"{len(failed)} bars partition(s) failed (first: {failed[0]})"
        elif missing:
            held[symbol] = f"{len(missing)} bars partition(s) missing (first: {missing[0]})"
    return held
