"""The `<market>/corporate_actions` asset: one partition per symbol, refreshed after new bars arrive; a
new or changed action re-adjusts `bars_adjusted` (a view) and makes the symbol's indicators stale."""

# No `from __future__ import annotations`: Dagster inspects the context annotation at definition time.

import datetime as dt

import dagster as dg

from jutsu_pipeline.assets.bars.assets import bars_asset_key
from jutsu_pipeline.assets.conditions import downstream_asset
from jutsu_pipeline.assets.tables import declared_schema, table_metadata, table_name
from jutsu_pipeline.calendars import calendar_for
from jutsu_pipeline.config import JutsuConfig
from jutsu_pipeline.partitions import SYMBOL_DIM
from jutsu_pipeline.resources import JutsuDuckDBResource, MarketDataResource
from jutsu_pipeline.storage.transactions import retry_conflicts, transaction

UTC = dt.timezone.utc


def corporate_actions_asset_key(market: str) -> dg.AssetKey:
    return dg.AssetKey([market, "corporate_actions"])


class CorporateActionsFailed(dg.Failure):
    """The provider (or an actions file) could not deliver a symbol's actions; nothing was recorded."""


def build_corporate_actions_asset(config: JutsuConfig, market: str) -> dg.AssetsDefinition:
    settings = config.markets[market]

    @dg.asset(
        key=corporate_actions_asset_key(market),
        group_name=market,
        partitions_def=dg.StaticPartitionsDefinition(list(settings.symbols)),
        deps=[dg.AssetDep(bars_asset_key(market, tf.value),
                          partition_mapping=dg.MultiToSingleDimensionPartitionMapping(SYMBOL_DIM))
              for tf in settings.timeframes],
        **downstream_asset(config),
        description=(f"Splits and dividends of market {market}'s symbols in DuckDB table `corporate_actions` "
                     f"(from the {settings.provider} provider's actions, <SYMBOL>.actions.csv for file providers; "
                     "actions inferred from a provider's adj_close are recorded with the bars). "
                     "`bars_adjusted` applies them at read time."),
        metadata={**table_name("corporate_actions"), **declared_schema("corporate_actions"),
                  "views": "bars_adjusted, bars_split_adjusted, corporate_actions_current"},
    )
    def corporate_actions(context: dg.AssetExecutionContext, duckdb: JutsuDuckDBResource,
                          market_data: MarketDataResource) -> dg.MaterializeResult:
        # polars and the providers' frames load in the run, not with the definitions
        from jutsu_pipeline.providers.base import ActionsProvider, ProviderError
        from jutsu_pipeline.storage.actions import read_actions, record_actions

        symbols = list(context.partition_keys)
        calendar = calendar_for(settings.calendar, settings.start, settings.end)  # 24/7: UTC
        provider = market_data.provider_for(config, market, str(calendar.timezone))
        end = settings.end or dt.datetime.now(UTC).date()
        try:
            published = [provider.corporate_actions(symbol, settings.start, end) for symbol in symbols] \
                if isinstance(provider, ActionsProvider) else []
        except ProviderError as error:
            raise CorporateActionsFailed(description=f"{market}/corporate_actions: {error}") from None
        finally:
            provider.close()
        source = getattr(provider, "actions_source", provider.name)
        import polars as pl

        from jutsu_pipeline.actions.model import empty_actions

        frame = pl.concat(published) if published else empty_actions()
        with duckdb.get_connection() as con:
            def record() -> int:
                with transaction(con):
                    return record_actions(con, source=source, symbols=symbols, actions=frame)

            appended = retry_conflicts(record, f"{market} corporate actions")  # DuckLake: another writer won
            in_force = read_actions(con, symbols)
            rows = table_metadata(con, "corporate_actions", symbols=settings.symbols, columns=False)
        context.log.info(f"{market}/corporate_actions: {frame.height} published by {source}, {appended} change(s) "
                         f"recorded, {in_force.height} in force for {len(symbols)} symbol(s)")
        return dg.MaterializeResult(metadata={
            "published": dg.MetadataValue.int(frame.height),
            "changes_recorded": dg.MetadataValue.int(appended),
            "actions_in_force": dg.MetadataValue.int(in_force.height),
            "source": dg.MetadataValue.text(source),
            "provider_requests": dg.MetadataValue.int(provider.stats.requests),
            **rows,
        })

    return corporate_actions
