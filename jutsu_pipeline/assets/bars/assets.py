"""The `<market>/bars_<tf>` asset: sync exactly the run's partitions, all in one run for a range."""

# No `from __future__ import annotations`: Dagster inspects the context annotation at definition time.


import datetime as dt
import time
from collections.abc import Mapping, Sequence

import dagster as dg
from dagster._core.execution.context.metadata_logging import AssetMetadataHandle, OutputMetadataAccumulator

from jutsu_pipeline.assets.bars.metadata import failure_metadata, partition_metadata, run_totals, summary_line
from jutsu_pipeline.assets.partitions import bars_asset_key, bars_partitions_def, planner_tags
from jutsu_pipeline.assets.tables import declared_schema, table_name
from jutsu_pipeline.config import JutsuConfig
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.providers import is_local
from jutsu_pipeline.providers.http.hold import instance_state
from jutsu_pipeline.resources import JutsuDuckDBResource, MarketDataResource
from jutsu_pipeline.storage.backend import current_snapshot
from jutsu_pipeline.sync.planner import REFRESH_TAG, TAIL

DUCKDB_WRITER_POOL = "duckdb_writer"
FRESHNESS_GRACE_MINUTES = 120  # the close schedule's offset plus time for the run


def freshness_policy(partitioning: BarsPartitioning) -> dg.FreshnessPolicy:
    """How old the latest materialisation may get: warn after a normal weekend's gap between sessions, fail
    after the longest (of the last 520 sessions), plus a grace. Dagster's cron policy cannot skip holidays;
    the calendar-exact verdict per session is the `calendar_complete` asset check."""
    grace = dt.timedelta(minutes=FRESHNESS_GRACE_MINUTES)
    if partitioning.calendar.always_open:
        return dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(days=1) + grace)
    gaps = sorted(partitioning.calendar.recent(1000).gaps(520)) or [1]  # ~2.7 years hold 520 sessions
    usual = max(g for g in set(gaps) if gaps.count(g) >= 0.1 * len(gaps))  # the weekend, not a rare long closure
    return dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(days=max(gaps)) + grace,
                                          warn_window=dt.timedelta(days=usual) + grace if usual < max(gaps) else None)


def writer_pool(config: JutsuConfig) -> str | None:
    """DuckDB file: one writing run at a time (the `duckdb_writer` pool). DuckLake: none, writers run
    concurrently and a commit conflict re-runs the transaction."""
    return None if config.is_lake else DUCKDB_WRITER_POOL


def bars_pool(provider: str, config: JutsuConfig) -> str | None:
    """DuckDB file: one run at a time per HTTP provider, local files share the writer pool (writes are
    short transactions that wait for the file lock). DuckLake: no pool; the provider's rate budget is
    shared by every process (providers/http/budget.py), so concurrent runs cannot exceed it."""
    if config.is_lake:
        return None
    return DUCKDB_WRITER_POOL if is_local(provider) else f"provider_{provider}"


class BarsSyncFailed(dg.Failure):
    """Some partitions of the run could not be stored; the successful ones are recorded as materialised."""


def build_bars_asset(config: JutsuConfig, partitioning: BarsPartitioning) -> dg.AssetsDefinition:
    """One asset per market × timeframe, partitioned by date × symbol, ranges executed in a single run."""
    market, timeframe = partitioning.market, partitioning.timeframe
    settings = config.markets[market]
    key = bars_asset_key(market, timeframe.value)

    @dg.asset(
        key=key,
        group_name=market,
        partitions_def=bars_partitions_def(partitioning),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=bars_pool(settings.provider, config),
        kinds={"duckdb"},
        freshness_policy=freshness_policy(partitioning),
        description=(
            f"{timeframe} OHLCV bars of market {market} ({settings.provider} provider, {settings.calendar} calendar) "
            "in DuckDB table `bars`. A materialised partition means its window is synced and valid."
        ),
        metadata={**table_name("bars"), **declared_schema("bars"), "timeframe": timeframe.value, "market": market},
    )
    def bars(
        context: dg.AssetExecutionContext, duckdb: JutsuDuckDBResource, market_data: MarketDataResource
    ) -> dg.MaterializeResult:
        # polars and pandera load in the run, not with the definitions
        from jutsu_pipeline.sync.engine import PROGRESS_EXTRA, BarsSync

        started = time.perf_counter()
        with instance_state(context.instance.root_directory):  # provider holds are shared by the instance's runs
            provider = market_data.provider_for(config, market, str(partitioning.calendar.timezone))
        # Planned refreshes of stored windows fetch only their tail; any other run replaces windows whole.
        tail = context.run.tags.get(REFRESH_TAG) == TAIL
        keys = context.partition_keys  # a range run's keys are listed by Dagster on each access
        # The bounds and grain the windows are cut with, once per run and before anything is stored.
        context.instance.add_run_tags(context.run.run_id, planner_tags(partitioning))
        try:
            outcome = BarsSync(partitioning, provider, duckdb.get_connection, context.log, tail=tail).run(keys)
        finally:
            provider.close()
        # What is true of every partition of the run; Dagster copies it into each partition's event.
        common: dict[str, dg.MetadataValue] = {}
        if tail:
            common["refresh"] = dg.MetadataValue.text(TAIL)  # absent: the window was replaced whole
        if duckdb.lake is not None:  # the lake version these partitions can be re-read at
            with duckdb.get_connection(read_only=True) as con:
                common["ducklake_snapshot"] = dg.MetadataValue.int(current_snapshot(con) or 0)
        per_partition = partition_metadata(outcome)
        totals = run_totals(outcome, provider.name, time.perf_counter() - started, provider.stats.requests,
                            int(provider.stats.extra.get("duplicates_dropped") or 0))
        # The run's totals once, in its log (and `jutsu sync`'s summary reads them from this record).
        context.log.info(summary_line(key.to_user_string(), totals, tail), extra={PROGRESS_EXTRA: {"phase": "done", **totals}})
        if outcome.failed:  # a failing step records no materialisations: log one per stored partition
            for partition, metadata in per_partition.items():
                context.log_event(dg.AssetMaterialization(asset_key=key, partition=partition,
                                                          metadata={**common, **metadata}))
            first = next(iter(outcome.failed.values()))
            raise BarsSyncFailed(
                description=(
                    f"{len(outcome.failed)} of {len(keys)} partition(s) of {key.to_user_string()} "
                    f"were not stored (nothing of them was written); {len(outcome.succeeded_keys)} were. "
                    f"First error: {first}. Fix the source data (or markets.{market} in {config.source_path}) and "
                    "re-materialise the failed partitions (listed in this step's metadata; `jutsu sync` retries "
                    "them); the stored ones stay as they are."
                ),
                metadata=failure_metadata(outcome, totals),
            )
        set_partition_metadata(context, key, keys, per_partition)
        return dg.MaterializeResult(metadata=common)

    return bars


def set_partition_metadata(context: dg.AssetExecutionContext, key: dg.AssetKey, run_keys: Sequence[str],
                           per_partition: Mapping[str, Mapping[str, dg.MetadataValue]]) -> None:
    """Give each partition's materialisation its own metadata (merged over the returned metadata).

    Dagster's `context.add_asset_metadata(..., partition_key=k)` lists the run's whole range and copies all
    metadata so far on each call: hours for a first sync's 10,500 partitions. Its accumulator is filled here
    in one step, falling back to the public call if Dagster's internals change (test_bars_metadata.py)."""
    unknown = set(per_partition) - set(run_keys)
    if unknown:
        raise ValueError(f"metadata for partitions this run does not materialise: {sorted(unknown)[:3]}")
    step = getattr(context.op_execution_context, "_step_execution_context", None)
    accumulator = getattr(step, "_metadata_accumulator", None)
    if isinstance(accumulator, OutputMetadataAccumulator):
        step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata={  # type: ignore[union-attr]
            **accumulator.per_output_metadata,
            **{AssetMetadataHandle(asset_key=key, partition_key=k): m for k, m in per_partition.items()},
        })
        return
    for partition, metadata in per_partition.items():
        context.add_asset_metadata(metadata, asset_key=key, partition_key=partition)
