"""Assemble jutsu-pipeline's Dagster definitions from the configuration (jutsu.yaml or $JUTSU_CONFIG)."""

from __future__ import annotations

import dagster as dg

from jutsu_pipeline.assets.bars import build_bars_asset
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


def build_definitions(config: JutsuConfig) -> dg.Definitions:
    """Everything Dagster loads for one configuration."""
    assets = [build_bars_asset(config, partitioning) for partitioning in bars_partitionings(config)]
    return dg.Definitions(
        assets=assets,
        resources={
            "duckdb": JutsuDuckDBResource(database=str(config.database)),
            "market_data": MarketDataResource(),
        },
        executor=dg.in_process_executor,
    )


defs = build_definitions(load_config())
