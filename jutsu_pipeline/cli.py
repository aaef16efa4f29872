"""`jutsu` command line: sync what is missing (the demo's main job), print coverage, query the DuckDB file."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path

from jutsu_pipeline.configfile import ConfigError
from jutsu_pipeline.console import SyncConsole, print_error, quiet_third_party_warnings
from jutsu_pipeline.providers.registry import MissingCredentials, missing_credentials
from jutsu_pipeline.storage.files import NotADuckDBFileError, check_database_file

_console: SyncConsole | None = None  # main()'s, which knows the verbosity and prints the summary

COVERAGE_SQL = """
SELECT symbol, timeframe, strftime(first_ts, '%Y-%m-%d %H:%M') AS first_bar,
       strftime(last_ts, '%Y-%m-%d %H:%M') AS last_bar, bars, source
FROM coverage
ORDER BY timeframe, symbol
"""


def _config():  # noqa: ANN202 - JutsuConfig
    """jutsu.yaml, validated (imported on use: validating markets loads calendars, TA-Lib and pandas)."""
    from jutsu_pipeline.config import load_config

    return load_config()


def _instance(config=None):  # noqa: ANN001, ANN202 - JutsuConfig | None, dagster.DagsterInstance
    """The project's instance: $DAGSTER_HOME if set, else the config's `dagster_home` (data/dagster_home)."""
    from jutsu_pipeline.instance import open_configured_instance, recover_dead_runs

    instance = open_configured_instance(config or _config())  # also sets DAGSTER_HOME, absolute as Dagster requires
    for run in recover_dead_runs(instance):
        print(f"Recovered run {run.run_id[:8]} ({run.job_name}): its process {run.pid} is gone; marked failed, "
              "pool slots freed, its partitions are missing again.")
    return instance


class UsageError(ValueError):
    """A command-line argument names something the configuration does not have."""


def _select(config, market: str | None, timeframe: str | None) -> list:  # noqa: ANN001
    """The bars partitionings a sync covers; unknown --market/--timeframe is an error listing valid ones."""
    from jutsu_pipeline.partitions import BarsPartitioning
    from jutsu_pipeline.timeframes import Timeframe

    if market is not None and market not in config.markets:
        raise UsageError(f"unknown market {market!r} (--market): the configuration has {', '.join(config.markets)}")
    markets = [market] if market else list(config.markets)
    valid = sorted({tf.value for m in markets for tf in (*config.markets[m].timeframes, *config.markets[m].derive)})
    if timeframe is not None and timeframe not in valid:
        where = f"market {market}" if market else "the configuration"
        raise UsageError(f"unknown timeframe {timeframe!r} (--timeframe): {where} has {', '.join(valid)}")
    # A derived timeframe follows its base by automation: syncing it means syncing the fetched base.
    return [BarsPartitioning(m, tf, config.markets[m]) for m in markets for tf in config.markets[m].timeframes
            if timeframe is None or tf.value == timeframe
            or (Timeframe(timeframe) in config.markets[m].derive and tf is config.markets[m].base_timeframe)]


def sync(market: str | None, timeframe: str | None) -> int:
    """Run what the planner says must run (missing, failed, in-progress, moved bars partitions), then what
    Dagster's automation conditions request downstream; say which symbols were held back and why."""
    config = _config()
    for name in {p.market: p for p in _select(config, market, timeframe)}:  # argument errors before Dagster loads
        missing_credentials(name, config.markets[name].provider, config.markets[name].options)
    if not config.is_lake:
        check_database_file(config.database)
    # Importing the module builds the definitions (assets, checks, schedules, sensors): only when needed.
    return run_sync(config, lambda: import_module("jutsu_pipeline.definitions").defs, _instance(config),
                    market, timeframe)


def run_sync(config, defs, instance, market: str | None = None, timeframe: str | None = None) -> int:  # noqa: ANN001
    """`jutsu sync` against given definitions and instance (tests use their own); 0 when all is stored and
    computed, 1 when a run failed or a symbol was held back. `defs` may be a function returning them: they
    are then loaded only when a run is needed or Dagster's automation must evaluate (downstream.QuietMark)."""
    from functools import cache

    from jutsu_pipeline import downstream, faultpoints
    from jutsu_pipeline.assets.partitions import bars_asset_key, bars_job_name
    from jutsu_pipeline.status import partition_status
    from jutsu_pipeline.sync.planner import held_symbols, plan_sync, range_keys

    definitions = cache(defs) if callable(defs) else (lambda: defs)
    selected = _select(config, market, timeframe)
    failures = 0
    bars_keys = []
    unchanged = {}  # the status read for planning, where this sync ran nothing for those bars
    for partitioning in selected:
        key = bars_asset_key(partitioning.market, partitioning.timeframe.value)
        bars_keys.append(key)
        name = key.to_user_string()
        job_name = bars_job_name(partitioning)
        status = partition_status(instance, key, partitioning, job_name)
        plan = plan_sync(partitioning, status)
        if plan.in_flight:
            print(f"{name}: skipping {len(plan.in_flight)} partition(s) another live run is syncing now.")
        if not plan.ranges:
            if not plan.in_flight:  # nothing ran or runs for these bars: their status stands (downstream runs never change it)
                unchanged[key] = status
            print(f"{name}: nothing else to fetch." if plan.in_flight else
                  f"{name}: all {plan.total} partitions are materialised and final; nothing to fetch.")
            continue
        print(f"{name}: {len(plan.keys)} of {plan.total} partitions to sync in {len(plan.ranges)} run(s).")
        if len(plan.missing) != len(plan.keys):
            print(f"{name}: to sync: {plan.summary()}.")
        job = definitions().resolve_job_def(job_name)
        faultpoints.reach("planning")
        failed_runs = 0
        for partition_range in plan.ranges:
            label = f"{partition_range.start_key}...{partition_range.end_key}" + (" (tail)" if partition_range.tail else "")
            count = len(range_keys(partitioning, partition_range.start_key, partition_range.end_key))
            failed_runs += not _run(job, instance, partition_range.tags, key, label, count)
        if failed_runs:
            # A failing bars step skips its checks; run them on what was stored, so the symbols that did
            # land are judged (blocking checks gate their downstream) and the failed ones are held back.
            checks = job.get_subset(asset_selection=set(),
                                    asset_check_selection=set(job.asset_layer.asset_graph.asset_check_keys))
            _run(checks, instance, {}, key, "checks of the stored partitions")
        failures += failed_runs

    fingerprint = downstream.definitions_fingerprint(config, bars_keys)
    mark = downstream.quiet_mark(instance, fingerprint)
    if mark is None:
        seen = downstream.high_water(instance)  # before evaluating: anything recorded meanwhile invalidates the mark
        outcome = downstream.run_downstream(definitions(), instance, bars_keys,
                                            lambda job, tags, key, label: _run(job, instance, tags, key, label))
        blocking = {key.to_user_string(): downstream.blocking_check_names(definitions(), key) for key in bars_keys}
        if not outcome.runs:
            downstream.remember_quiet(instance, downstream.QuietMark(fingerprint, seen, blocking))
    else:  # nothing recorded since an evaluation that requested nothing: it would request nothing again
        outcome, blocking = downstream.DownstreamOutcome(), mark.blocking
    failures += outcome.failed_runs

    held_lines: list[str] = []
    for partitioning, key in zip(selected, bars_keys):
        status = unchanged.get(key) or partition_status(instance, key, partitioning)
        held = held_symbols(partitioning, status)
        checks = downstream.failing_checks(instance, key, blocking[key.to_user_string()])
        if checks:
            held = {s: f"blocking check(s) {', '.join(checks)} failed on {key.to_user_string()}"
                    for s in partitioning.symbols}
        held_lines += [f"{key.to_user_string()}: {symbol} held back (its indicators and backtests are not computed): "
                       f"{why}. Fix the data or provider and run `jutsu sync` again." for symbol, why in held.items()]
    if not outcome.runs:  # "up to date" alone would hide that held-back symbols were not computed
        print("Downstream (indicators, backtests, leaderboards): "
              + ("up to date except the symbols held back below." if held_lines else "up to date."))
    for line in held_lines:
        print(line)
    return 1 if failures or held_lines else 0


def adopt(market: str | None, timeframe: str | None) -> int:
    """Record already stored, complete and valid windows of the current partition grain as materialised."""
    from jutsu_pipeline.adopt import adopt as adopt_windows

    config = _config()
    adopt_windows(config, _instance(config), _select(config, market, timeframe))
    return 0


def _run(job, instance, tags: dict[str, str], key, label: str, total: int | None = None,  # noqa: ANN001
         unit: str = "partitions") -> bool:
    return (_console or SyncConsole()).run(job, instance, tags, key, label, total, unit).success


def report(market: str | None) -> int:
    """Write each market's HTML report (the `<market>/report` asset, recorded in the instance)."""
    from jutsu_pipeline.assets.report.assets import report_asset_key
    from jutsu_pipeline.definitions import defs, report_job_name

    config = _config()
    _select(config, market, None)  # an unknown --market lists the valid ones
    instance = _instance(config)
    failures = 0
    for name in [market] if market else list(config.markets):
        key = report_asset_key(name)
        failures += not _run(defs.resolve_job_def(report_job_name(name)), instance, {}, key, key.to_user_string(), 1, "page")
    return 1 if failures else 0


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

    from jutsu_pipeline.configfile import load_storage
    from jutsu_pipeline.storage.files import connect

    # Only the storage keys of jutsu.yaml: validating the markets would import calendars, TA-Lib, pandas.
    location = load_storage()
    if location is None:
        config = _config()  # raises ConfigError naming every bad key
        location = config.lake_target() if config.is_lake else config.database
    if not isinstance(location, Path):  # a DuckLake: readers never wait for its writers
        from jutsu_pipeline.storage.backend import connect_lake
        from jutsu_pipeline.storage.ddl import session_macros

        where = location.describe()
        con = connect_lake(location, read_only=True)
        session_macros(con)  # the lake keeps no macros: `bars_adjusted` and the `*_as_of` macros need them
    else:
        where = str(location)
        if not location.exists():
            print_error(f"{location} does not exist yet: run `make demo` (or `jutsu sync`) first.")
            return 1
        try:
            con = connect(location, read_only=True)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            from jutsu_pipeline.resources.duckdb import lock_holder  # imports Dagster: only on this path

            print_error(f"DuckDB file {location} is open for writing by {lock_holder(error)}, and DuckDB lets no "
                        "other process read it meanwhile. Wait for that run to finish (or close that notebook / "
                        "duckdb shell) and re-run; `jutsu sql` and `duckdb -readonly` can read it once the writer "
                        "has closed it.")
            return 1
    with con:
        con.execute("SET TimeZone = 'UTC'")
        try:
            rows = con.execute(sql).fetchall()
        except duckdb.CatalogException as error:
            if title == "Query":
                print_error(f"{_first_line(error)} (tables and views: docs/querying.md)")
                return 1
            print(f"{title}: nothing computed yet.")
            return 1
        except duckdb.Error as error:
            print_error(f"{_first_line(error)} in: {sql.strip()}")
            return 1
        if con.description is None:
            return 0
        columns = [d[0] for d in con.description]
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    indent = "  " if title != "Query" else ""
    if indent:
        print(f"{title} ({where}):")
    print(indent + "  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in rows:
        print(indent + "  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return 0


def _first_line(error: BaseException) -> str:
    """DuckDB's message on one line, keeping its `Did you mean "bars"?` hint (a misspelt table or column)."""
    lines = str(error).strip().splitlines()
    hint = next((line.strip() for line in lines[1:] if line.strip().startswith("Did you mean")), None)
    return lines[0] + (f" {hint}" if hint else "")


def migrate_to_ducklake(source: str) -> int:
    """Copy a DuckDB file's tables and views into the DuckLake configured in jutsu.yaml."""
    import time

    from jutsu_pipeline.resources import JutsuDuckDBResource
    from jutsu_pipeline.storage.migrate import MigrationError, migrate_duckdb_file

    config = _config()
    path = Path(source).expanduser().resolve()
    if not config.is_lake:
        print(f"{config.source_path}: storage kind is duckdb; set storage: {{kind: ducklake, catalog: ..., "
              "data_path: ...}} first, then run this command with the DuckDB file to copy.", file=sys.stderr)
        return 2
    resource = JutsuDuckDBResource.for_config(config)
    started = time.perf_counter()
    try:
        with resource.get_connection() as con:
            copied = migrate_duckdb_file(con, path)
    except MigrationError as error:
        print(f"migrate-to-ducklake: {error}", file=sys.stderr)
        return 2
    for table, rows in copied.items():
        print(f"  {table}: {rows} rows")
    print(f"Copied {len(copied)} table(s) from {path} into {resource.describe()} in one transaction "
          f"({time.perf_counter() - started:.1f} s). Dagster's partition status is unchanged: keep the same instance.")
    return 0


def write_dotenv(path: Path) -> int:
    """Write (or refresh) DAGSTER_HOME in a .env file: `dagster`/`dg` run in its folder use the project's instance.

    The line keeps a DAGSTER_HOME already set in the environment (`${DAGSTER_HOME:-...}`), since Dagster
    lets .env values override the environment. A DAGSTER_HOME line the user wrote is left alone."""
    config = _config()
    home = config.resolve(config.dagster_home)
    ours = [DOTENV_MARKER, f"DAGSTER_HOME=${{DAGSTER_HOME:-{home}}}"]
    lines = path.read_text().splitlines() if path.exists() else []
    kept: list[str] = []
    for number, line in enumerate(lines):
        if line == DOTENV_MARKER or (number and lines[number - 1] == DOTENV_MARKER):
            continue
        if line.strip().startswith("DAGSTER_HOME="):
            print(f"{path} sets DAGSTER_HOME itself; left as it is.")
            return 0
        kept.append(line)
    path.write_text("\n".join(kept + ours) + "\n")
    return 0


DOTENV_MARKER = "# Written by `jutsu env --write` (make): the project's Dagster instance unless DAGSTER_HOME is set."


def main(argv: Sequence[str] | None = None) -> int:
    global _console
    quiet_third_party_warnings()
    parser = argparse.ArgumentParser(prog="jutsu", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show Dagster's event log and tracebacks")
    verbose_too = argparse.ArgumentParser(add_help=False)  # `jutsu sync -v` as well as `jutsu -v sync`
    verbose_too.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="show Dagster's event log and tracebacks")
    market = argparse.ArgumentParser(add_help=False)
    market.add_argument("--market", help="only this market of jutsu.yaml (default: every market)")
    scope = argparse.ArgumentParser(add_help=False, parents=[market])
    scope.add_argument("--timeframe", help="only this timeframe, e.g. 1d (default: every timeframe)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("sync", parents=[verbose_too, scope],
                        help="materialise every missing partition of the bars assets")
    commands.add_parser("adopt", parents=[scope],
                        help="after changing partition_grain: record windows already stored and valid as materialised")
    commands.add_parser("coverage", help="print what the storage (DuckDB file or DuckLake) holds")
    commands.add_parser("leaderboard", help="print the best five backtests of each market")
    sql_parser = commands.add_parser("sql", help="run a SQL query on the DuckDB file (read-only) and print the rows")
    sql_parser.add_argument("query", nargs="?", help="the SQL; read from standard input if omitted")
    env_parser = commands.add_parser("env", help="print (or --write) the .env line that points Dagster at the instance")
    env_parser.add_argument("--write", type=Path, metavar="PATH", help="write it into this .env file")
    commands.add_parser("report", parents=[verbose_too, market], help="write each market's HTML report under reports_dir")
    migrate_parser = commands.add_parser("migrate-to-ducklake",
                                         help="copy a DuckDB file's tables into the configured DuckLake")
    migrate_parser.add_argument("source", help="the DuckDB file to copy (it is opened read-only)")
    for choice in commands._choices_actions:  # `jutsu sync --help` says what the command does, too
        commands.choices[choice.dest].description = choice.help
    args = parser.parse_args(argv)
    verbose = args.verbose or os.environ.get("JUTSU_VERBOSE", "") not in ("", "0")
    try:
        if args.command == "migrate-to-ducklake":
            return migrate_to_ducklake(args.source)
        if args.command in ("sync", "report"):
            _console = SyncConsole(verbose=verbose)
            code = sync(args.market, args.timeframe) if args.command == "sync" else report(args.market)
            _console.summary()
            return code
        if args.command == "adopt":
            return adopt(args.market, args.timeframe)
        if args.command == "leaderboard":
            if not any(market.strategies for market in _config().markets.values()):
                print("No market configures `strategies:`, so there are no backtests to rank; add some "
                      "(docs/backtesting.md#configuration) and run `jutsu sync`.")
                return 0
            return _print_query("Best backtests by Sharpe", LEADERBOARD_SQL)
        if args.command == "sql":
            return _print_query("Query", args.query if args.query is not None else sys.stdin.read())
        if args.command == "env":
            if args.write:
                return write_dotenv(args.write)
            print(f"DAGSTER_HOME={_config().instance_dir}")
            return 0
        return _print_query("Coverage", COVERAGE_SQL)
    except (ConfigError, UsageError, NotADuckDBFileError, MissingCredentials) as error:
        print_error(f"{error}")
        return 2
    except Exception as error:  # noqa: BLE001 - one readable paragraph; the traceback on request
        import traceback

        print_error(f"jutsu {args.command} failed: {type(error).__name__}: {error}", verbose,
                    traceback.format_exc())
        return 1


if __name__ == "__main__":
    sys.exit(main())
