"""Assemble jutsu-pipeline's Dagster definitions from the configuration (jutsu.yaml or $JUTSU_CONFIG)."""

from __future__ import annotations

import gc

import dagster as dg

from jutsu_pipeline.console import install_config_error_hook, quiet_third_party_warnings

# Before the asset modules: their decorators emit Dagster's Beta notices at import (`dagster ...`, `dg ...`).
quiet_third_party_warnings()

from jutsu_pipeline.assets.backtest.assets import build_backtest_asset, build_leaderboard_asset
from jutsu_pipeline.assets.bars.assets import bars_asset_key, build_bars_asset
from jutsu_pipeline.assets.bars.checks import build_bars_checks
from jutsu_pipeline.assets.bars.derived import build_derived_bars_asset
from jutsu_pipeline.assets.corporate_actions.assets import build_corporate_actions_asset
from jutsu_pipeline.assets.indicators.assets import build_indicators_asset, indicators_asset_key
from jutsu_pipeline.assets.partitions import bars_job_name
from jutsu_pipeline.assets.report.assets import build_report_asset, report_asset_key
from jutsu_pipeline.config import ConfigError, JutsuConfig, load_config
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.resources import JutsuDuckDBResource, MarketDataResource
from jutsu_pipeline.resources.credentials import ProviderCredentials
from jutsu_pipeline.schedules import build_schedules
from jutsu_pipeline.sensors.gaps import build_gap_sensor

AUTOMATION_SENSOR = "jutsu_automation"


def bars_partitionings(config: JutsuConfig) -> list[BarsPartitioning]:
    """One partitioning per market × fetched timeframe, in config order."""
    return [BarsPartitioning(market, tf, settings)
            for market, settings in config.markets.items() for tf in settings.timeframes]


def report_job_name(market: str) -> str:
    return f"report_{market}"


def _job(name: str, key: dg.AssetKey, description: str | None = None) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(name, selection=dg.AssetSelection.assets(key), description=description)


def build_definitions(config: JutsuConfig) -> dg.Definitions:
    """Everything Dagster loads for one configuration."""
    fetched = bars_partitionings(config)
    # Derived timeframes are partitioned like the market's base timeframe.
    derived = [BarsPartitioning(market, tf, settings, base=settings.base_timeframe)
               for market, settings in config.markets.items() for tf in settings.derive]
    partitionings = fetched + derived  # every bars asset: checks, indicators and backtests treat them alike
    assets = [build_bars_asset(config, partitioning) for partitioning in fetched]
    assets += [build_derived_bars_asset(config, partitioning) for partitioning in derived]
    assets += [build_corporate_actions_asset(config, market) for market, settings in config.markets.items()
               if settings.actions_enabled]
    assets += [build_indicators_asset(config, partitioning) for partitioning in partitionings]
    jobs = [_job(bars_job_name(p), bars_asset_key(p.market, p.timeframe.value),
                 f"Sync {p.timeframe.value} bars of market {p.market} for the selected partitions.")
            for p in partitionings]
    jobs += [_job(f"indicators_{p.market}_{p.timeframe.value}", indicators_asset_key(p.market, p.timeframe.value),
                  f"Recompute the indicators of market {p.market} ({p.timeframe.value}) for the selected symbols.")
             for p in partitionings]
    for market, settings in config.markets.items():
        of_market = [p for p in partitionings if p.market == market]
        if settings.strategies:
            backtests = [build_backtest_asset(config, p) for p in of_market]
            leaderboard = build_leaderboard_asset(config, of_market)
            assets += [*backtests, leaderboard]
            jobs += [_job(f"backtest_{market}_{p.timeframe.value}", a.key) for p, a in zip(of_market, backtests)]
            jobs.append(_job(f"leaderboard_{market}", leaderboard.key))
        assets.append(build_report_asset(config, of_market))
        jobs.append(_job(report_job_name(market), report_asset_key(market),
                         f"Rewrite the HTML report of market {market}."))
    automation = dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        use_user_code_server=True,  # the report's condition is custom Python (assets/conditions.py)
        description="Indicators, backtests and leaderboards follow new bars once the blocking checks pass.",
    )
    return dg.Definitions(
        assets=dg.with_source_code_references(assets),
        asset_checks=[check for p in partitionings for check in build_bars_checks(config, p)],
        jobs=jobs,
        schedules=[s for p in fetched for s in build_schedules(p, bars_job_name(p))],
        sensors=[automation] + [
            build_gap_sensor(p, bars_asset_key(p.market, p.timeframe.value), bars_job_name(p)) for p in fetched
        ],
        resources={
            "duckdb": JutsuDuckDBResource.for_config(config),
            "market_data": MarketDataResource(credentials=ProviderCredentials.from_env()),
        },
        executor=dg.in_process_executor,
    )


def _load_config() -> JutsuConfig:
    try:
        return load_config()
    except ConfigError:
        install_config_error_hook()  # a command line shows the message naming file and key, not the loader's traceback
        raise


def _warn_if_temporary_instance() -> None:
    """`dagster ...` without DAGSTER_HOME records runs in a throwaway instance that `jutsu` and the UI never see."""
    import os
    import sys

    home = os.environ.get("DAGSTER_HOME", "")
    command = [os.path.basename(sys.argv[0]), *sys.argv[1:2]]
    runs_here = command in (["dagster", "asset"], ["dagster", "job"], ["dg", "launch"])
    if runs_here and (not home or ".tmp_dagster_home_" in home):
        print(
            "jutsu: DAGSTER_HOME is not set, so Dagster records this run in a temporary instance that is deleted "
            "when the command exits (`jutsu` and `make dev` will not see it). Run the command from the repository "
            "root, where `make` wrote .env pointing at the project's instance, or export DAGSTER_HOME.",
            file=sys.stderr,
        )


_warn_if_temporary_instance()
defs = build_definitions(_load_config())
# Every process that loads the code location (`jutsu`, Dagster's run and code servers) keeps what exists now
# (modules, definitions: ~300,000 objects) until it exits: frozen, the collector's full passes skip them. A range
# run keeps up to ~280,000 new objects until it ends; with the default young threshold (700) a full pass came at
# each quarter of growth, 0.4-0.6 s of a 10,500-partition run freeing almost nothing. 10,000 makes them 14x rarer.
gc.freeze()
gc.set_threshold(10_000, *gc.get_threshold()[1:])
