"""Assemble jutsu-pipeline's Dagster definitions from the configuration (jutsu.yaml or $JUTSU_CONFIG)."""

from __future__ import annotations

import dagster as dg

from jutsu_pipeline.assets.bars import build_bars_asset
from jutsu_pipeline.assets.bars.assets import bars_asset_key
from jutsu_pipeline.assets.indicators import build_indicators_asset
from jutsu_pipeline.config import JutsuConfig, load_config
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.resources import JutsuDuckDBResource, MarketDataResource


def bars_partitionings(config: JutsuConfig) -> list[BarsPartitioning]:
    """One partitioning per market × timeframe, in config order."""
    return [
        BarsPartitioning(market, timeframe, settings)
        for market, settings in config.markets.items()
        for timeframe in settings.timeframes
    ]


def bars_job_name(partitioning: BarsPartitioning) -> str:
    """The job that syncs one market × timeframe, e.g. `sync_us_stocks_bars_1d`."""
    return f"sync_{partitioning.market}_bars_{partitioning.timeframe.value}"


def build_definitions(config: JutsuConfig) -> dg.Definitions:
    """Everything Dagster loads for one configuration."""
    partitionings = bars_partitionings(config)
    assets = [build_bars_asset(config, partitioning) for partitioning in partitionings]
    assets += [build_indicators_asset(config, partitioning) for partitioning in partitionings]
    jobs = [
        dg.define_asset_job(
            bars_job_name(p),
            selection=dg.AssetSelection.assets(bars_asset_key(p.market, p.timeframe.value)),
            partitions_def=p.partitions_def,
            description=f"Sync {p.timeframe.value} bars of market {p.market} for the selected partitions.",
        )
        for p in partitionings
    ]
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        resources={
            "duckdb": JutsuDuckDBResource(database=str(config.database)),
            "market_data": MarketDataResource(),
        },
        executor=dg.in_process_executor,
    )


defs = build_definitions(load_config())
