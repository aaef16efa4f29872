"""`jutsu adopt`: after the partition grain changed, record the new-grain partitions whose windows are
already completely stored and valid as materialised (metadata `adopted: true`), so nothing is refetched;
the others are left to the next `jutsu sync`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from jutsu_pipeline.assets.partitions import RUN_TAG_PREFIX, bars_asset_key, planner_tags
from jutsu_pipeline.config import JutsuConfig
from jutsu_pipeline.partitions import BarsPartitioning, partition_key, split_partition_key
from jutsu_pipeline.quality.grid import calendar_grid
from jutsu_pipeline.status import partition_status
from jutsu_pipeline.storage.files import connect
from jutsu_pipeline.sync.adoption import judge_windows


@dataclass
class AdoptionReport:
    asset: str
    adopted: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # key -> why not


def adopt(config: JutsuConfig, instance: dg.DagsterInstance, partitionings: list[BarsPartitioning],
          now: dt.datetime | None = None, report: Callable[[str], None] = print) -> list[AdoptionReport]:
    """Adopt every completely stored, valid, unmaterialised partition of `partitionings`."""
    now = now or dt.datetime.now(dt.timezone.utc)
    results = []
    for p in partitionings:
        key = bars_asset_key(p.market, p.timeframe.value)
        result = AdoptionReport(key.to_user_string())
        results.append(result)
        status = partition_status(instance, key, p)
        todo: dict[str, list[str]] = {}
        for k in p.all_partition_keys():
            if (k not in status.materialized or k in status.other_grain) and k not in status.failed:
                date_key, symbol = split_partition_key(k)
                todo.setdefault(symbol, []).append(date_key)
        if not todo or not config.database.exists():
            report(f"{result.asset}: nothing to adopt ({'no DuckDB file' if todo else 'every partition is recorded'}).")
            continue
        grid = calendar_grid(p)
        with connect(config.database, read_only=True) as con:
            verdicts = {s: judge_windows(con, p, s, keys, now, grid) for s, keys in todo.items()}
        cut_with = {name.removeprefix(RUN_TAG_PREFIX): value for name, value in planner_tags(p).items()}
        for symbol, symbol_verdicts in verdicts.items():
            for verdict in symbol_verdicts:
                k = partition_key(verdict.date_key, symbol)
                if not verdict.adoptable:
                    result.refused[k] = verdict.reason
                    continue
                instance.report_runless_asset_event(dg.AssetMaterialization(
                    asset_key=key, partition=k, description="adopted: the window was already stored and valid",
                    metadata={"adopted": True, "adopted_because": verdict.reason, "bars_stored": verdict.bars,
                              **cut_with}))
                result.adopted.append(k)
        report(f"{result.asset}: adopted {len(result.adopted)} partition(s) ({p.grain} windows); "
               f"{len(result.refused)} left for `jutsu sync`"
               + (": " + "; ".join(f"{k}: {why}" for k, why in list(result.refused.items())[:3]) if result.refused else "."))
    return results
