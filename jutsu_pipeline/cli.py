"""`jutsu` command line: sync what is missing (the demo's main job) and print coverage."""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from functools import partial

from jutsu_pipeline.config import REPO_ROOT, ConfigError
from jutsu_pipeline.storage.files import NotADuckDBFileError, check_database_file
from jutsu_pipeline.sync.missing import RANGE_END_TAG, RANGE_START_TAG

DEFAULT_DAGSTER_HOME = REPO_ROOT / "data" / "dagster_home"

COVERAGE_SQL = """
SELECT symbol, timeframe, strftime(first_ts, '%Y-%m-%d %H:%M') AS first_bar,
       strftime(last_ts, '%Y-%m-%d %H:%M') AS last_bar, bars, source
FROM coverage
ORDER BY timeframe, symbol
"""


def _instance():  # noqa: ANN202 - dagster.DagsterInstance
    from jutsu_pipeline.instance import open_instance, recover_dead_runs

    instance = open_instance(os.environ.setdefault("DAGSTER_HOME", str(DEFAULT_DAGSTER_HOME)))
    for run in recover_dead_runs(instance):
        print(f"Recovered run {run.run_id[:8]} ({run.job_name}): its process {run.pid} is gone; marked failed, "
              "pool slots freed, its partitions are missing again.")
    return instance


def sync(market: str | None, timeframe: str | None) -> int:
    """Materialise every missing (or in-progress) bars partition, then the indicators of touched symbols."""
    from jutsu_pipeline.assets.bars.assets import bars_asset_key
    from jutsu_pipeline.config import load_config
    from jutsu_pipeline.definitions import bars_job_name, bars_partitionings, defs
    from jutsu_pipeline import faultpoints
    from jutsu_pipeline.instance import live_in_flight_keys
    from jutsu_pipeline.sensors.gaps import run_keys
    from jutsu_pipeline.sync.missing import keys_to_sync, plan_ranges

    config = load_config()
    check_database_file(config.database)
    instance = _instance()
    failures = 0
    changed: dict[str, bool] = {}
    for partitioning in bars_partitionings(config):
        if (market and partitioning.market != market) or (timeframe and partitioning.timeframe.value != timeframe):
            continue
        key = bars_asset_key(partitioning.market, partitioning.timeframe.value)
        name = key.to_user_string()
        total = len(partitioning.all_partition_keys())
        keys = keys_to_sync(instance, key, partitioning)
        flying = live_in_flight_keys(instance, key, bars_job_name(partitioning), partial(run_keys, partitioning))
        skipped = len(flying & set(keys))
        if skipped:
            print(f"{name}: skipping {skipped} partition(s) another live run is syncing now.")
            keys = [k for k in keys if k not in flying]
        touched: set[str] = set()
        if not keys:
            print(f"{name}: nothing else to fetch." if skipped else
                  f"{name}: all {total} partitions are materialised; nothing to fetch.")
        else:
            ranges = plan_ranges(partitioning, keys)
            print(f"{name}: {len(keys)} of {total} partitions to sync in {len(ranges)} run(s).")
            job = defs.resolve_job_def(bars_job_name(partitioning))
            faultpoints.reach("planning")
            for partition_range in ranges:
                failures += not _run(job, instance, partition_range.tags, key,
                                     f"{partition_range.start_key}...{partition_range.end_key}")
                touched.update(partition_range.symbols)
        failures += not _sync_downstream(instance, partitioning, touched)
        changed[partitioning.market] = changed.get(partitioning.market, False) or bool(touched)
    for market_name, market_changed in changed.items():
        if config.markets[market_name].strategies:
            failures += not _sync_leaderboard(instance, market_name, market_changed)
    return 1 if failures else 0


def _sync_downstream(instance, partitioning, touched: set[str]) -> bool:  # noqa: ANN001
    """Indicators, then backtests, of the symbols whose inputs changed here or that have none yet."""
    from jutsu_pipeline.assets.backtest.assets import backtest_asset_key
    from jutsu_pipeline.assets.indicators.assets import indicators_asset_key
    from jutsu_pipeline.definitions import backtest_job_name, defs, indicators_job_name

    steps = [(indicators_asset_key(partitioning.market, partitioning.timeframe.value), indicators_job_name(partitioning))]
    if partitioning.config.strategies:
        steps.append((backtest_asset_key(partitioning.market, partitioning.timeframe.value),
                      backtest_job_name(partitioning)))
    ok = True
    for key, job_name in steps:
        done = instance.get_materialized_partitions(key)
        symbols = [s for s in partitioning.symbols if s in touched or s not in done]
        if not symbols:
            print(f"{key.to_user_string()}: up to date.")
            continue
        first, last = symbols[0], symbols[-1]
        span = partitioning.symbols[partitioning.symbols.index(first):partitioning.symbols.index(last) + 1]
        print(f"{key.to_user_string()}: computing {len(span)} symbol(s) in one run.")
        tags = {RANGE_START_TAG: first, RANGE_END_TAG: last}
        ok &= _run(defs.resolve_job_def(job_name), instance, tags, key, f"{first}...{last}")
        touched = touched | set(span)
    return ok


def _sync_leaderboard(instance, market: str, changed: bool) -> bool:  # noqa: ANN001
    from jutsu_pipeline.assets.backtest.assets import leaderboard_asset_key
    from jutsu_pipeline.definitions import defs, leaderboard_job_name

    key = leaderboard_asset_key(market)
    if not changed and instance.get_latest_materialization_event(key) is not None:
        print(f"{key.to_user_string()}: up to date.")
        return True
    print(f"{key.to_user_string()}: ranking.")
    return _run(defs.resolve_job_def(leaderboard_job_name(market)), instance, {}, key, market)


def _run(job, instance, tags: dict[str, str], key, label: str) -> bool:  # noqa: ANN001
    started = time.perf_counter()
    from jutsu_pipeline.instance import execute_interruptibly

    result = execute_interruptibly(job, instance, tags)  # SIGTERM/SIGINT: run marked failed, slots freed
    status = "succeeded" if result.success else "FAILED"
    print(f"  run {result.run_id[:8]} {label} {status} in {time.perf_counter() - started:.1f} s: "
          f"{_step_metadata(result, key)}")
    return result.success


def _step_metadata(result, key) -> str:  # noqa: ANN001
    materializations = [m for m in result.get_asset_materialization_events() if m.asset_key == key]
    if not materializations:
        failure = next((e for e in result.all_events if e.event_type_value == "STEP_FAILURE"), None)
        return failure.event_specific_data.error.message.strip() if failure else "no materialisation"
    meta = materializations[-1].materialization.metadata
    parts = []
    for name in ("bars_written", "partitions_with_bars", "partitions_valid_empty", "partitions_failed", "provider_calls",
                 "rows_written", "strategies_x_symbols", "trades", "results_ranked"):
        if name in meta:
            parts.append(f"{name}={meta[name].value}")
    return ", ".join(parts)


def coverage() -> int:
    """Print the coverage view of the DuckDB file (read-only)."""
    return _print_query("Coverage", COVERAGE_SQL)


LEADERBOARD_SQL = """
SELECT market, rank, strategy, symbol, timeframe, round(sharpe_ratio, 2) AS sharpe, round(return_pct, 1) AS return_pct,
       round(max_drawdown_pct, 1) AS max_dd_pct, n_trades AS trades
FROM backtest_leaderboard
WHERE rank <= 5
ORDER BY market, rank
"""


def _print_query(title: str, sql: str) -> int:
    """Print a query's rows as an aligned table from a read-only connection."""
    import duckdb

    from jutsu_pipeline.config import load_config
    from jutsu_pipeline.storage.files import connect

    database = load_config().database
    if not database.exists():
        print(f"{database} does not exist yet: run `make demo` (or `jutsu sync`) first.")
        return 1
    with connect(database, read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        try:
            rows = con.execute(sql).fetchall()
        except duckdb.CatalogException:
            print(f"{title}: nothing computed yet.")
            return 1
        columns = [d[0] for d in con.description]
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    print(f"{title} ({database}):")
    print("  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    parser = argparse.ArgumentParser(prog="jutsu", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sync_parser = commands.add_parser("sync", help="materialise every missing partition of the bars assets")
    sync_parser.add_argument("--market")
    sync_parser.add_argument("--timeframe")
    commands.add_parser("coverage", help="print what the DuckDB file holds")
    commands.add_parser("leaderboard", help="print the best five backtests of each market")
    args = parser.parse_args(argv)
    try:
        if args.command == "sync":
            return sync(args.market, args.timeframe)
        if args.command == "leaderboard":
            return _print_query("Best backtests by Sharpe", LEADERBOARD_SQL)
        return coverage()
    except (ConfigError, NotADuckDBFileError) as error:
        print(error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
