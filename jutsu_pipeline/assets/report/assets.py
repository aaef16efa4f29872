"""The `<market>/report` asset: `reports_dir/<market>/report.html`, rebuilt when its inputs change."""

# No `from __future__ import annotations`: Dagster inspects the context annotation at definition time.

import time
from typing import TYPE_CHECKING

import dagster as dg

from jutsu_pipeline.assets.backtest.assets import leaderboard_asset_key
from jutsu_pipeline.assets.bars.assets import bars_asset_key, writer_pool
from jutsu_pipeline.assets.conditions import after_inputs_settle
from jutsu_pipeline.assets.indicators.assets import indicators_asset_key
from jutsu_pipeline.assets.partitions import bars_partitions_def
from jutsu_pipeline.config import JutsuConfig
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.report import report_path
from jutsu_pipeline.resources import JutsuDuckDBResource

if TYPE_CHECKING:  # the page's modules (polars, numpy) load when the report is built, not the definitions
    from jutsu_pipeline.report.data import PartitionStatus


def report_asset_key(market: str) -> dg.AssetKey:
    return dg.AssetKey([market, "report"])


def partition_statuses(instance: dg.DagsterInstance, partitioning: BarsPartitioning
                       ) -> "dict[str, PartitionStatus | None]":
    """Each bars partition's status as the instance records it (the coverage record)."""
    from jutsu_pipeline.report.data import PartitionStatus

    key = bars_asset_key(partitioning.market, partitioning.timeframe.value)
    keys = partitioning.all_partition_keys()
    found = instance.get_status_by_partition(key, keys, bars_partitions_def(partitioning)) or {}
    known = {status.name: status for status in PartitionStatus}  # Dagster's names: MATERIALIZED, FAILED, IN_PROGRESS
    return {k: known.get(status.name) if status is not None else None for k, status in found.items()}


def build_report_asset(config: JutsuConfig, partitionings: list[BarsPartitioning]) -> dg.AssetsDefinition:
    """One page per market from its bars, indicators and (with strategies) leaderboard."""
    market = partitionings[0].market
    settings = config.markets[market]
    path = report_path(config, market)
    deps = [bars_asset_key(market, p.timeframe.value) for p in partitionings]
    deps += [indicators_asset_key(market, p.timeframe.value) for p in partitionings]
    if settings.strategies:
        deps.append(leaderboard_asset_key(market))

    @dg.asset(
        key=report_asset_key(market),
        group_name=market,
        deps=deps,
        automation_condition=after_inputs_settle(),
        pool=writer_pool(config),
        kinds={"html"},
        description=(f"Self-contained HTML page of market {market} at {path}: coverage (symbols x windows, gaps and "
                     "failed windows marked), each symbol's candles with SMA, Bollinger bands, RSI and MACD, and the "
                     "leaderboard with equity and drawdown curves. Opens offline in any browser."),
        metadata={"path": dg.MetadataValue.path(str(path))},
    )
    def report(context: dg.AssetExecutionContext, duckdb: JutsuDuckDBResource) -> dg.MaterializeResult:
        from jutsu_pipeline.report.page import build_report
        from jutsu_pipeline.storage.atomic import write_atomically  # a browser never sees half a page

        started = time.perf_counter()
        statuses = {p.timeframe.value: partition_statuses(context.instance, p) for p in partitionings}
        with duckdb.get_connection() as con:
            page, summary = build_report(con, config, market, statuses)
        write_atomically(summary.path, page)
        seconds = time.perf_counter() - started
        context.log.info(f"{market}/report: {summary.path} ({summary.bytes / 1e6:.1f} MB) in {seconds:.2f} s")
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(summary.path)),
            "bytes": dg.MetadataValue.int(summary.bytes),
            "coverage": dg.MetadataValue.md(coverage_markdown(summary.coverage_counts)),
            "price_bars": dg.MetadataValue.int(summary.price_bars),
            "leaderboard_rows": dg.MetadataValue.int(summary.leaderboard_rows),
            "seconds": dg.MetadataValue.float(round(seconds, 3)),
        })

    return report


def coverage_markdown(counts: dict[str, dict[str, int]]) -> str:
    """Partitions per state and timeframe, as a markdown table."""
    from jutsu_pipeline.report.data import Cell

    header = "| timeframe | " + " | ".join(cell.name.lower() for cell in Cell) + " |"
    lines = [header, "|---" * (len(Cell) + 1) + "|"]
    for timeframe, by_cell in counts.items():
        lines.append(f"| {timeframe} | " + " | ".join(str(by_cell.get(cell.value, 0)) for cell in Cell) + " |")
    return "\n".join(lines)
