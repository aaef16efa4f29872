"""Run bars assets in-process the way Dagster does for a single key or a range."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import polars as pl

from jutsu_pipeline.assets.bars.assets import build_bars_asset
from jutsu_pipeline.config import JutsuConfig
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.providers.base import FetchRequest
from jutsu_pipeline.providers.sample import SampleProvider
from jutsu_pipeline.resources import JutsuDuckDBResource, MarketDataResource
from jutsu_pipeline.storage.scope import scope_filter, scope_params
from jutsu_pipeline.storage.versions import CONTENT_HASH
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG
from jutsu_pipeline.timeframes import Timeframe


def partitioning(config: JutsuConfig, market: str = "us_stocks", timeframe: str = "1d") -> BarsPartitioning:
    return BarsPartitioning(market, Timeframe(timeframe), config.markets[market])


def run_bars(
    config: JutsuConfig,
    instance: dg.DagsterInstance,
    *,
    start: str | None = None,
    end: str | None = None,
    key: str | None = None,
    market: str = "us_stocks",
    timeframe: str = "1d",
    market_data: MarketDataResource | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialise one key or the range start...end of `<market>/bars_<timeframe>`."""
    asset = build_bars_asset(config, partitioning(config, market, timeframe))
    resources = {
        "duckdb": JutsuDuckDBResource.for_config(config, lock_timeout_seconds=5),
        "market_data": market_data or MarketDataResource(),
    }
    tags = {RANGE_START_TAG: start, RANGE_END_TAG: end} if start else None
    return dg.materialize(
        [asset], instance=instance, resources=resources, partition_key=key, tags=tags, raise_on_error=False
    )


def run_metadata(result: dg.ExecuteInProcessResult) -> dict:
    """Metadata values of the run's (last) materialisation."""
    events = result.get_asset_materialization_events()
    assert events, "the run recorded no materialisation"
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def partition_facts(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """partition -> metadata values of its materialisation in this run."""
    return {str(e.materialization.partition): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


def partition_counts(result: dg.ExecuteInProcessResult) -> tuple[int, int]:
    """(partitions with bars, valid-empty partitions) a bars run materialised."""
    facts = partition_facts(result).values()
    return sum(1 for f in facts if f["dagster/row_count"] > 0), sum(1 for f in facts if "empty_because" in f)


def run_summary(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> str:
    """The bars run's one summary line in its log (its totals)."""
    lines = [e.user_message for e in instance.all_logs(result.run_id)
             if e.dagster_event is None and " bars written (" in e.user_message]
    assert len(lines) == 1, lines
    return lines[0]


def step_error(result: dg.ExecuteInProcessResult) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data.error.message


def run_per_symbol(build, config: JutsuConfig, instance: dg.DagsterInstance, symbols: list[str],  # noqa: ANN001
                   market: str = "us_stocks", timeframe: str = "1d") -> dg.ExecuteInProcessResult:
    """Materialise a symbol-partitioned asset made by `build(config, partitioning)` for adjacent `symbols`."""
    asset = build(config, partitioning(config, market, timeframe))
    resources = {"duckdb": JutsuDuckDBResource.for_config(config, lock_timeout_seconds=5)}
    tags = {RANGE_START_TAG: symbols[0], RANGE_END_TAG: symbols[-1]}
    return dg.materialize([asset], instance=instance, resources=resources, tags=tags, raise_on_error=False,
                          selection=[asset.key])


def run_indicators(config: JutsuConfig, instance: dg.DagsterInstance, symbols: list[str],
                   **where: str) -> dg.ExecuteInProcessResult:
    """Materialise the indicators of `symbols` (adjacent in config order) in one range run."""
    from jutsu_pipeline.assets.indicators.assets import build_indicators_asset

    return run_per_symbol(build_indicators_asset, config, instance, symbols, **where)


def run_backtest(config: JutsuConfig, instance: dg.DagsterInstance, symbols: list[str],
                 **where: str) -> dg.ExecuteInProcessResult:
    """Materialise the backtests of `symbols` (adjacent in config order) in one range run."""
    from jutsu_pipeline.assets.backtest.assets import build_backtest_asset

    return run_per_symbol(build_backtest_asset, config, instance, symbols, **where)


def bad_volume_market_data(symbol: str, day: dt.date) -> MarketDataResource:
    """The sample provider with one bad bar: `symbol`'s volume at midnight UTC of `day` is negative."""
    bad_ts = dt.datetime.combine(day, dt.time(), dt.timezone.utc)

    class OneBadBar(SampleProvider):
        def fetch(self, request: FetchRequest) -> pl.DataFrame:
            frame = super().fetch(request)
            if request.symbol != symbol:
                return frame
            return frame.with_columns(pl.when(pl.col("ts") == bad_ts).then(-1.0).otherwise(pl.col("volume")).alias("volume"))

    class OneBadBarMarketData(MarketDataResource):
        def provider_for(self, config, market, timezone):  # noqa: ANN001, ANN201
            return OneBadBar()

    return OneBadBarMarketData()


def bars_versions(con: duckdb.DuckDBPyConnection, *, timeframe: str, symbols: list[str], adjusted: bool = True) -> dict[str, str]:
    """Each symbol's bars version aggregated in SQL: the oracle of the versions runs fold from what they read."""
    source = "bars_adjusted" if adjusted else "bars"
    return dict(con.execute(f"SELECT symbol, {CONTENT_HASH} FROM {source} WHERE {scope_filter()} GROUP BY symbol",
                            scope_params(timeframe, symbols)).fetchall())
