"""The `<market>/bars_<tf>` asset: sync exactly the run's partitions, all in one run for a range."""

# No `from __future__ import annotations`: Dagster inspects the context annotation at definition time.


import datetime as dt
import time

import dagster as dg

from jutsu_pipeline.assets.bars.metadata import outcome_metadata
from jutsu_pipeline.assets.partitions import bars_asset_key, bars_partitions_def
from jutsu_pipeline.assets.tables import declared_schema, table_metadata, table_name
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
    """How old the latest materialisation may get: the longest gap between sessions plus a grace.

    Dagster's cron policy cannot skip holidays (and accepts at most one cron interval), so the
    window comes from the calendar (its last 520 sessions): warn after a normal weekend's
    gap, fail after the longest gap, so holidays never show as late. The calendar-exact verdict
    per session is the `calendar_complete` asset check.
    """
    grace = dt.timedelta(minutes=FRESHNESS_GRACE_MINUTES)
    if partitioning.calendar.always_open:
        return dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(days=1) + grace)
    sessions = partitioning.calendar.recent(1000).sessions()[-520:]  # ~2.7 years hold 520 sessions
    gaps = sorted((b - a).days for a, b in zip(sessions, sessions[1:])) or [1]
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
        from jutsu_pipeline.sync.engine import BarsSync  # polars and pandera load in the run, not with the definitions

        started = time.perf_counter()
        with instance_state(context.instance.root_directory):  # provider holds are shared by the instance's runs
            provider = market_data.provider_for(config, market, str(partitioning.calendar.timezone))
        # Planned refreshes of stored windows fetch only their tail; any other run replaces windows whole.
        tail = context.run.tags.get(REFRESH_TAG) == TAIL
        try:
            outcome = BarsSync(partitioning, provider, duckdb.get_connection, context.log, tail=tail).run(
                context.partition_keys)
        finally:
            provider.close()
        metadata = outcome_metadata(outcome, provider.name, time.perf_counter() - started)
        with duckdb.get_connection() as con:
            # The column schema is definition metadata: this metadata is copied into every partition's event.
            metadata.update(table_metadata(con, "bars", timeframe=timeframe.value, symbols=settings.symbols,
                                           columns=False))
        metadata["refresh"] = dg.MetadataValue.text(TAIL if tail else "whole windows")
        # The history bounds the windows were cut with: a later start/end change inside a window makes it stale.
        metadata["history_start"] = dg.MetadataValue.text(settings.start.isoformat())
        metadata["history_end"] = dg.MetadataValue.text(settings.end.isoformat() if settings.end else "")
        metadata["partition_grain"] = dg.MetadataValue.text(str(partitioning.grain))
        metadata["provider_requests"] = dg.MetadataValue.int(provider.stats.requests)  # HTTP pages, file reads
        if provider.stats.extra.get("duplicates_dropped"):  # identical repeats (page overlaps), not conflicts
            metadata["duplicates_dropped"] = dg.MetadataValue.int(provider.stats.extra["duplicates_dropped"])
        if duckdb.lake is not None:  # the lake version these partitions can be re-read at
            with duckdb.get_connection(read_only=True) as con:
                metadata["ducklake_snapshot"] = dg.MetadataValue.int(current_snapshot(con) or 0)
        if outcome.failed:
            _record_successes(context, key, outcome.succeeded_keys, metadata)
            first = next(iter(outcome.failed.values()))
            raise BarsSyncFailed(
                description=(
                    f"{len(outcome.failed)} of {len(context.partition_keys)} partition(s) of {key.to_user_string()} "
                    f"were not stored (nothing of them was written); {len(outcome.succeeded_keys)} were. "
                    f"First error: {first}. Fix the source data (or the provider options) and re-materialise the "
                    "failed partitions (listed in this step's metadata); the stored ones stay as they are."
                ),
                metadata=metadata,
            )
        context.log.info(
            f"{key.to_user_string()}: {len(outcome.written)} partition(s) with {outcome.bars_written} bars, "
            f"{len(outcome.empty)} valid-empty, {outcome.provider_calls} provider call(s)"
        )
        return dg.MaterializeResult(metadata=metadata)

    return bars


def _record_successes(context: dg.AssetExecutionContext, key: dg.AssetKey, keys: list[str],
                      metadata: dict[str, dg.MetadataValue]) -> None:
    """A failing step records no materialisations, so record the partitions that did land explicitly."""
    for partition in keys:
        context.log_event(dg.AssetMaterialization(asset_key=key, partition=partition, metadata=metadata))
