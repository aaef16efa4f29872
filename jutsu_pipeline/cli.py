"""`jutsu` command line: sync what is missing (the demo's main job) and print coverage."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from jutsu_pipeline.config import REPO_ROOT, ConfigError

DEFAULT_DAGSTER_HOME = REPO_ROOT / "data" / "dagster_home"

COVERAGE_SQL = """
SELECT symbol, timeframe, strftime(first_ts, '%Y-%m-%d %H:%M') AS first_bar,
       strftime(last_ts, '%Y-%m-%d %H:%M') AS last_bar, bars, source
FROM coverage
ORDER BY timeframe, symbol
"""


def _instance():  # noqa: ANN202 - dagster.DagsterInstance
    import dagster as dg

    home = os.environ.setdefault("DAGSTER_HOME", str(DEFAULT_DAGSTER_HOME))
    os.makedirs(home, exist_ok=True)
    return dg.DagsterInstance.get()


def sync(market: str | None, timeframe: str | None) -> int:
    """Materialise every missing (or in-progress) partition of the selected bars assets."""
    from jutsu_pipeline.definitions import bars_job_name, bars_partitionings, defs
    from jutsu_pipeline.assets.bars.assets import bars_asset_key
    from jutsu_pipeline.config import load_config
    from jutsu_pipeline.sync.missing import keys_to_sync, plan_ranges

    config = load_config()
    instance = _instance()
    failures = 0
    for partitioning in bars_partitionings(config):
        if (market and partitioning.market != market) or (timeframe and partitioning.timeframe.value != timeframe):
            continue
        key = bars_asset_key(partitioning.market, partitioning.timeframe.value)
        name = key.to_user_string()
        total = len(partitioning.all_partition_keys())
        keys = keys_to_sync(instance, key, partitioning)
        if not keys:
            print(f"{name}: all {total} partitions are materialised; nothing to fetch.")
            continue
        ranges = plan_ranges(partitioning, keys)
        print(f"{name}: {len(keys)} of {total} partitions to sync in {len(ranges)} run(s).")
        job = defs.resolve_job_def(bars_job_name(partitioning))
        for partition_range in ranges:
            started = time.perf_counter()
            result = job.execute_in_process(instance=instance, tags=partition_range.tags, raise_on_error=False)
            metadata = _step_metadata(result, key)
            status = "succeeded" if result.success else "FAILED"
            print(f"  run {result.run_id[:8]} {partition_range.start_key}...{partition_range.end_key} {status} "
                  f"in {time.perf_counter() - started:.1f} s: {metadata}")
            failures += not result.success
    return 1 if failures else 0


def _step_metadata(result, key) -> str:  # noqa: ANN001
    materializations = [m for m in result.get_asset_materialization_events() if m.asset_key == key]
    if not materializations:
        failure = next((e for e in result.all_events if e.event_type_value == "STEP_FAILURE"), None)
        return failure.event_specific_data.error.message.strip() if failure else "no materialisation"
    meta = materializations[-1].materialization.metadata
    parts = []
    for name in ("bars_written", "partitions_with_bars", "partitions_valid_empty", "partitions_failed", "provider_calls"):
        if name in meta:
            parts.append(f"{name}={meta[name].value}")
    return ", ".join(parts)


def coverage() -> int:
    """Print the coverage view of the DuckDB file (read-only)."""
    import duckdb

    from jutsu_pipeline.config import load_config

    database = load_config().database
    if not database.exists():
        print(f"{database} does not exist yet: run `make demo` (or `jutsu sync`) first.")
        return 1
    with duckdb.connect(str(database), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        rows = con.execute(COVERAGE_SQL).fetchall()
        columns = [d[0] for d in con.description]
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    print(f"Coverage of {database}:")
    print("  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
    print(f"  {sum(r[4] for r in rows)} bars in {len(rows)} symbol/timeframe series")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jutsu", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sync_parser = commands.add_parser("sync", help="materialise every missing partition of the bars assets")
    sync_parser.add_argument("--market")
    sync_parser.add_argument("--timeframe")
    commands.add_parser("coverage", help="print what the DuckDB file holds")
    args = parser.parse_args(argv)
    try:
        if args.command == "sync":
            return sync(args.market, args.timeframe)
        return coverage()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
