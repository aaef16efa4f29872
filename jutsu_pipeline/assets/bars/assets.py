"""The `<market>/bars_<tf>` asset: sync exactly the run's partitions, all in one run for a range."""

# No `from __future__ import annotations`: Dagster inspects the context annotation at definition time.


import time

import dagster as dg

from jutsu_pipeline.assets.bars.metadata import outcome_metadata
from jutsu_pipeline.config import JutsuConfig
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.providers import is_local
from jutsu_pipeline.providers.http.hold import instance_state
from jutsu_pipeline.resources import JutsuDuckDBResource, MarketDataResource
from jutsu_pipeline.sync.engine import BarsSync

DUCKDB_WRITER_POOL = "duckdb_writer"


def bars_pool(provider: str) -> str:
    """One run at a time per HTTP provider (its rate limit holds across runs); local files share the
    DuckDB writer pool. Writes themselves are short transactions that wait for the file lock."""
    return DUCKDB_WRITER_POOL if is_local(provider) else f"provider_{provider}"


class BarsSyncFailed(dg.Failure):
    """Some partitions of the run could not be stored; the successful ones are recorded as materialised."""


def bars_asset_key(market: str, timeframe: str) -> dg.AssetKey:
    return dg.AssetKey([market, f"bars_{timeframe}"])


def build_bars_asset(config: JutsuConfig, partitioning: BarsPartitioning) -> dg.AssetsDefinition:
    """One asset per market × timeframe, partitioned by date × symbol, ranges executed in a single run."""
    market, timeframe = partitioning.market, partitioning.timeframe
    settings = config.markets[market]
    key = bars_asset_key(market, timeframe.value)

    @dg.asset(
        key=key,
        group_name=market,
        partitions_def=partitioning.partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=bars_pool(settings.provider),
        kinds={"duckdb"},
        description=(
            f"{timeframe} OHLCV bars of market {market} ({settings.provider} provider, {settings.calendar} calendar) "
            "in DuckDB table `bars`. A materialised partition means its window is synced and valid."
        ),
        metadata={"table": "bars", "timeframe": timeframe.value, "market": market},
    )
    def bars(
        context: dg.AssetExecutionContext, duckdb: JutsuDuckDBResource, market_data: MarketDataResource
    ) -> dg.MaterializeResult:
        started = time.perf_counter()
        with instance_state(context.instance.root_directory):  # provider holds are shared by the instance's runs
            provider = market_data.provider_for(config, market, str(partitioning.calendar.timezone))
        try:
            outcome = BarsSync(partitioning, provider, duckdb.get_connection, context.log).run(context.partition_keys)
        finally:
            provider.close()
        metadata = outcome_metadata(outcome, provider.name, time.perf_counter() - started)
        metadata["provider_requests"] = dg.MetadataValue.int(provider.stats.requests)  # HTTP pages, file reads
        if provider.stats.extra.get("duplicates_dropped"):  # identical repeats (page overlaps), not conflicts
            metadata["duplicates_dropped"] = dg.MetadataValue.int(provider.stats.extra["duplicates_dropped"])
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
