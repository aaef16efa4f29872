"""`<market>/backtest_<tf>` (per symbol) and `<market>/backtest_leaderboard` (ranked by Sharpe)."""

# No `from __future__ import annotations`: Dagster inspects the context annotation at definition time.

# The engine, polars and the charts are imported inside the asset bodies: building the definitions needs none.

import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import dagster as dg

from jutsu_pipeline.assets.backtest.metadata import embedded_images, results_table
from jutsu_pipeline.assets.conditions import downstream_asset
from jutsu_pipeline.assets.indicators.assets import indicators_asset_key, symbol_partitions
from jutsu_pipeline.assets.tables import table_metadata, table_name
from jutsu_pipeline.config import JutsuConfig
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.resources import JutsuDuckDBResource
from jutsu_pipeline.storage.versions import combined_version

if TYPE_CHECKING:
    import polars as pl

LEADERBOARD_TOP = 5


def backtest_asset_key(market: str, timeframe: str) -> dg.AssetKey:
    return dg.AssetKey([market, f"backtest_{timeframe}"])


def leaderboard_asset_key(market: str) -> dg.AssetKey:
    return dg.AssetKey([market, "backtest_leaderboard"])


def build_backtest_asset(config: JutsuConfig, partitioning: BarsPartitioning) -> dg.AssetsDefinition:
    """Every configured strategy on each symbol of the run, from the bars and the indicators asset's
    columns, stored in DuckDB."""
    market, timeframe = partitioning.market, partitioning.timeframe.value
    settings = config.markets[market]
    strategies = settings.strategies
    source = "bars_adjusted" if settings.adjusted_prices else "bars"

    @dg.asset(
        key=backtest_asset_key(market, timeframe),
        group_name=market,
        partitions_def=symbol_partitions(partitioning),
        deps=[indicators_asset_key(market, timeframe)],  # the signals' inputs; same symbol partitions
        **downstream_asset(config),
        description=(f"Backtests of {', '.join(s.name for s in strategies)} on {market} {timeframe} bars "
                     f"({source} and the indicators table; fills at the next bar's open) in tables "
                     "backtest_performance (one row per strategy x symbol), backtest_trades, backtest_equity."),
        metadata=table_name("backtest_performance"),
    )
    def backtest(context: dg.AssetExecutionContext, duckdb: JutsuDuckDBResource) -> dg.MaterializeResult:
        from jutsu_pipeline.backtest import run_backtests

        symbols = list(context.partition_keys)
        started = time.perf_counter()
        with duckdb.get_connection() as con:
            result = run_backtests(con, timeframe=timeframe, symbols=symbols, strategies=strategies,
                                   adjusted=settings.adjusted_prices)
            tables = table_metadata(con, "backtest_performance", timeframe=timeframe, symbols=symbols)
        seconds = time.perf_counter() - started
        context.log.info(f"{market}/backtest_{timeframe}: {len(strategies)} strategies x {len(symbols)} symbol(s), "
                         f"{result.trades.height} trades in {seconds:.2f} s")
        versions = {r["symbol"]: r["data_version"] for r in result.performance.iter_rows(named=True)}
        return dg.MaterializeResult(
            # The bars read and the strategies' definitions (one version per run, shared by its partitions).
            data_version=dg.DataVersion(combined_version(versions, *(s.params_json() for s in strategies))),
            metadata={
                **tables,
                "results": dg.MetadataValue.md(results_table(result.performance)),
                "trades": dg.MetadataValue.int(result.trades.height),
                "strategies_x_symbols": dg.MetadataValue.int(result.performance.height),
                "data_versions": dg.MetadataValue.json(versions),
                **_snapshot_metadata(result.performance),
                "seconds": dg.MetadataValue.float(round(seconds, 3)),
            },
        )

    return backtest


def build_leaderboard_asset(config: JutsuConfig, partitionings: list[BarsPartitioning]) -> dg.AssetsDefinition:
    """Strategy × symbol ranked by Sharpe across the market's timeframes; the best five's equity charts
    are the only ones drawn (PNG files under the reports directory, embedded in the UI)."""
    market = partitionings[0].market
    settings = config.markets[market]
    strategies = [s.name for s in settings.strategies]
    reports = config.resolve(config.reports_dir) / market

    @dg.asset(
        key=leaderboard_asset_key(market),
        group_name=market,
        deps=[backtest_asset_key(market, p.timeframe.value) for p in partitionings],
        **downstream_asset(config, partitioned=False),
        description=f"Backtests of market {market} ranked by Sharpe ratio (table backtest_leaderboard).",
        metadata=table_name("backtest_leaderboard"),
    )
    def leaderboard(context: dg.AssetExecutionContext, duckdb: JutsuDuckDBResource) -> dg.MaterializeResult:
        import polars as pl

        from jutsu_pipeline.backtest.report import leaderboard_markdown, rank_by_sharpe, write_best_curves_chart
        from jutsu_pipeline.report import report_path
        from jutsu_pipeline.storage.backtests import read_equity, read_performance, replace_leaderboard

        with duckdb.get_connection() as con:
            performance = cast(pl.DataFrame, pl.from_arrow(read_performance(con, strategies=strategies,
                                                                             symbols=settings.symbols)))
            ranked = rank_by_sharpe(performance)
            replace_leaderboard(con, market=market, ranked=ranked.to_arrow())
            tables = table_metadata(con, "backtest_leaderboard", symbols=settings.symbols)
            top = ranked.head(LEADERBOARD_TOP)
            equity = cast(pl.DataFrame, pl.from_arrow(read_equity(
                con, strategies=top["strategy"].to_list(), symbols=top["symbol"].to_list(),
                timeframes=top["timeframe"].to_list())))
        titles = [((r["strategy"], r["symbol"], r["timeframe"]),
                   f"#{r['rank']} {r['strategy']} {r['symbol']} ({r['timeframe']}), Sharpe {_two(r['sharpe_ratio'])}")
                  for r in top.iter_rows(named=True)]
        best = [(title, _chart(equity, key, reports)) for key, title in titles]
        overlay = write_best_curves_chart(equity, titles, reports / "best_curves.png") if titles else None
        context.log.info(f"{market}/backtest_leaderboard: {ranked.height} strategy x symbol results ranked")
        return dg.MaterializeResult(metadata={
            **tables,
            "leaderboard": dg.MetadataValue.md(leaderboard_markdown(performance)),
            "best_five": dg.MetadataValue.md(
                (embedded_images([("The best five compared: return and drawdown", overlay)]) + "\n\n" if overlay else "")
                + embedded_images(best)
                + f"\n\nEvery chart of the market, with candles and indicators: `{report_path(config, market)}` "
                  "(asset `report`)."),
            "results_ranked": dg.MetadataValue.int(ranked.height),
            "best_sharpe": dg.MetadataValue.float(float(ranked["sharpe_ratio"][0]) if ranked.height and
                                                  ranked["sharpe_ratio"][0] is not None else float("nan")),
        })

    return leaderboard


def _chart(equity: "pl.DataFrame", key: tuple[str, str, str], directory: Path) -> Path:
    """The equity chart of one leaderboard row, drawn from the stored curve (~90 ms)."""
    from jutsu_pipeline.backtest.report import write_equity_chart

    strategy, symbol, timeframe = key
    curve = equity.filter(strategy=strategy, symbol=symbol, timeframe=timeframe)
    return write_equity_chart(curve, strategy=strategy, symbol=symbol, timeframe=timeframe, directory=directory)


def _snapshot_metadata(performance: "pl.DataFrame") -> dict[str, dg.MetadataValue]:
    """On DuckLake: the catalog snapshot the bars were read at (query it with AT (VERSION => n))."""
    snapshots = performance["data_snapshot"].drop_nulls().unique().to_list() if performance.height else []
    return {"data_snapshot": dg.MetadataValue.int(int(snapshots[0]))} if len(snapshots) == 1 else {}


def _two(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
