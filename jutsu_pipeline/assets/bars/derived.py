"""The `<market>/bars_<tf>` asset of a derived timeframe: computed in DuckDB from the base bars asset."""

# No `from __future__ import annotations`: Dagster inspects the context annotation at definition time.

import time

import dagster as dg

from jutsu_pipeline.assets.bars.assets import bars_asset_key, set_partition_metadata
from jutsu_pipeline.assets.bars.metadata import stored_facts
from jutsu_pipeline.assets.conditions import downstream_asset
from jutsu_pipeline.assets.partitions import bars_partitions_def
from jutsu_pipeline.assets.tables import declared_schema, table_name
from jutsu_pipeline.config import JutsuConfig
from jutsu_pipeline.derive import derived_source
from jutsu_pipeline.partitions import BarsPartitioning, split_partition_key
from jutsu_pipeline.resources import JutsuDuckDBResource


class BaseBarsMissing(dg.Failure):
    """Some of the run's partitions have no materialised base partition: nothing was derived."""


def build_derived_bars_asset(config: JutsuConfig, partitioning: BarsPartitioning) -> dg.AssetsDefinition:
    """Derived bars, partitioned exactly like the base (identity mapping): stale exactly where it changed."""
    market, timeframe, base = partitioning.market, partitioning.timeframe, partitioning.base
    assert base is not None, "a derived partitioning names its base timeframe"
    key, base_key = bars_asset_key(market, timeframe.value), bars_asset_key(market, base.value)

    @dg.asset(
        key=key,
        group_name=market,
        partitions_def=bars_partitions_def(partitioning),
        deps=[base_key],
        **downstream_asset(config),
        description=(
            f"{timeframe} bars of market {market} derived in DuckDB from its {base} bars (first open, max high, "
            f"min low, last close, summed volume; buckets anchored to the session's open) in table `bars` with "
            f"source `{derived_source(base)}`; a bucket missing base bars has `incomplete` = true."
        ),
        metadata={**table_name("bars"), **declared_schema("bars"), "timeframe": timeframe.value, "market": market,
                  "derived_from": base.value},
    )
    def derived_bars(context: dg.AssetExecutionContext, duckdb: JutsuDuckDBResource) -> dg.MaterializeResult:
        from jutsu_pipeline.derive import derive_partitions  # polars loads in the run
        from jutsu_pipeline.storage.bars import window_stats

        keys = list(context.partition_keys)
        stored = context.instance.get_materialized_partitions(base_key)
        missing = [k for k in keys if k not in stored]
        if missing:
            raise BaseBarsMissing(description=(
                f"{key.to_user_string()}: {len(missing)} of {len(keys)} partition(s) have no materialised "
                f"{base_key.to_user_string()} partition (e.g. {', '.join(missing[:3])}); nothing was derived. "
                f"Materialise those base partitions first (jutsu sync, or the same range of {base_key.to_user_string()})."
            ))
        started = time.perf_counter()
        with duckdb.get_connection() as con:
            outcome = derive_partitions(con, partitioning, base, keys)
            stored = window_stats(con, timeframe=timeframe.value, windows=outcome.windows)
        seconds = time.perf_counter() - started
        # The run's totals once, in its log; each partition's event its own rows (as for fetched bars).
        context.log.info(f"{key.to_user_string()}: {outcome.bars} bars written ({outcome.incomplete} incomplete) "
                         f"from {base} bars of {len(keys)} partition(s) in {seconds:.2f} s")
        by_key = {partition: split_partition_key(partition) for partition in keys}
        set_partition_metadata(context, key, keys, {partition: stored_facts(stored.get((symbol, date_key)))
                                                    for partition, (date_key, symbol) in by_key.items()})
        return dg.MaterializeResult(metadata={"source": dg.MetadataValue.text(derived_source(base))})

    return derived_bars

