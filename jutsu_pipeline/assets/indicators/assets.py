"""The `<market>/indicators_<tf>` asset: one partition per symbol; a run computes the bars after the stored
ones (from a warm-up window), or a symbol's whole history when its stored history changed."""

# No `from __future__ import annotations`: Dagster inspects the context annotation at definition time.

import time

import dagster as dg

from jutsu_pipeline.assets.bars.assets import bars_asset_key
from jutsu_pipeline.assets.conditions import downstream_asset
from jutsu_pipeline.assets.corporate_actions.assets import corporate_actions_asset_key
from jutsu_pipeline.assets.tables import table_metadata, table_name
from jutsu_pipeline.config import JutsuConfig
from jutsu_pipeline.indicators.params import as_specs, column_names
from jutsu_pipeline.partitions import SYMBOL_DIM, BarsPartitioning
from jutsu_pipeline.resources import JutsuDuckDBResource
from jutsu_pipeline.storage.indicators import input_versions
from jutsu_pipeline.storage.versions import combined_version

#: Run tag `jutsu/indicators=full` recomputes every symbol's whole history instead of only new bars.
RECOMPUTE_TAG = "jutsu/indicators"


def indicators_asset_key(market: str, timeframe: str) -> dg.AssetKey:
    return dg.AssetKey([market, f"indicators_{timeframe}"])


def symbol_partitions(partitioning: BarsPartitioning) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(list(partitioning.symbols))


def build_indicators_asset(config: JutsuConfig, partitioning: BarsPartitioning) -> dg.AssetsDefinition:
    """The market's configured indicators plus every indicator its strategies read, per symbol;
    any change to a symbol's bars makes that symbol stale."""
    market, timeframe = partitioning.market, partitioning.timeframe.value
    settings = config.markets[market]
    specs = as_specs([*settings.indicators.specs(), *(s for st in settings.strategies for s in st.indicator_specs())])
    columns = ", ".join(column_names(specs))
    source = "bars_adjusted" if settings.adjusted_prices else "bars"

    @dg.asset(
        key=indicators_asset_key(market, timeframe),
        group_name=market,
        partitions_def=symbol_partitions(partitioning),
        deps=[dg.AssetDep(bars_asset_key(market, timeframe),
                          partition_mapping=dg.MultiToSingleDimensionPartitionMapping(SYMBOL_DIM))]
        # A new split or dividend re-adjusts the bars they read: the symbol's indicators become stale.
        + ([corporate_actions_asset_key(market)] if settings.actions_enabled and settings.adjusted_prices else []),
        # Re-run a symbol whenever any of its bars partitions is updated, once all of them are valid.
        **downstream_asset(config),
        code_version=combined_version({}, columns),  # another column set: the UI shows the asset stale
        description=(f"TA-Lib indicators of {market} {timeframe} bars (from `{source}`) in DuckDB table "
                     f"`indicators`, joined with the bars in view `bars_with_indicators`. Columns: {columns}."),
        metadata={**table_name("indicators"), "view": "bars_with_indicators", "source": source},
    )
    def indicators(context: dg.AssetExecutionContext, duckdb: JutsuDuckDBResource) -> dg.MaterializeResult:
        from jutsu_pipeline.indicators import compute_indicators  # polars and TA-Lib load in the run

        symbols = list(context.partition_keys)
        started = time.perf_counter()
        with duckdb.get_connection() as con:
            # Incremental: only bars after the stored ones (revised history recomputes the symbol whole).
            rows = compute_indicators(con, timeframe=timeframe, symbols=symbols, params=specs,
                                      adjusted=settings.adjusted_prices,
                                      incremental=context.run.tags.get(RECOMPUTE_TAG) != "full")
            versions = input_versions(con, timeframe=timeframe, symbols=symbols)  # recorded with the rows
            tables = table_metadata(con, "indicators", timeframe=timeframe, symbols=symbols)
        seconds = time.perf_counter() - started
        context.log.info(f"{market}/indicators_{timeframe}: {rows} rows, {len(symbols)} symbol(s) in {seconds:.2f} s")
        return dg.MaterializeResult(
            # The bars read (one version per run: a range run's partitions share it) and the columns computed.
            data_version=dg.DataVersion(combined_version(versions, columns)),
            metadata={
                **tables,
                "rows_written": dg.MetadataValue.int(rows),
                "symbols": dg.MetadataValue.text(", ".join(symbols)),
                "seconds": dg.MetadataValue.float(round(seconds, 3)),
                "columns": dg.MetadataValue.text(columns),
            },
        )

    return indicators
