"""A daily close for 500 symbols: runs launched, tick-to-bars and tick-to-leaderboard wall time, Dagster's
share of it, against a plain polars -> DuckDB script appending the same session.

    python benchmarks/bench_close.py [--symbols 500] [--months 6]

Setup (untimed): seeded random-walk daily bars for every XNYS session of 2024-01..(months) in Parquet
files (the `files` provider) but the last session, yearly partitions, an instance made from the
checked-in dagster.yaml (and, with JUTSU_BENCH_POSTGRES_URL, a second run on Postgres event storage
with DAGSTER_EVENT_BATCH_SIZE=1000, each in its own process), the history synced and everything
downstream computed, the automation sensor's baseline. Then the last session is appended to every file.
Timed, as the daemon would do it but in-process: the close schedule's tick on the last session, its run
(a tail refresh), then automation-condition ticks and the runs they request (one range run per tick, the
assets of a tick together) until the leaderboard is rematerialised. "Asset code" is the time spent inside
the asset and check functions (their `seconds` metadata, or their step durations); the rest is Dagster:
tick evaluation, run setup, per-partition events, automation evaluation. The script, timed in the same
process: read the files, keep the new session, check it, DELETE + INSERT it in one transaction.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import dagster as dg
import exchange_calendars as xc
import numpy as np
import pandas as pd
import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
warnings.filterwarnings("ignore")  # dagster's beta/preview notices while the definitions are built

from jutsu_pipeline.config import load_config  # noqa: E402
from jutsu_pipeline.definitions import build_definitions  # noqa: E402
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG  # noqa: E402

MARKET = "bench"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
STRATEGY = {"name": "sma_10_30", "type": "sma_cross", "params": {"fast": 10, "slow": 30}}


def write_bars(folder: Path, symbols: list[str], sessions: pd.DatetimeIndex, seed: int = 7) -> None:
    """One Parquet file per symbol: seeded geometric random walks with valid OHLC."""
    rng = np.random.default_rng(seed)
    n = len(sessions)
    for symbol in symbols:
        close = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, n)))
        opens = close * np.exp(rng.normal(0, 0.004, n))
        pl.DataFrame({
            "date": [d.date() for d in sessions], "open": opens, "high": np.maximum(opens, close) * 1.004,
            "low": np.minimum(opens, close) * 0.996, "close": close, "volume": rng.integers(1e5, 1e7, n).astype(float),
        }).write_parquet(folder / f"{symbol}.parquet")


def code_seconds(instance: dg.DagsterInstance, run_id: str) -> float:
    """Seconds inside asset/check functions: `seconds` metadata where reported, else the step's duration."""
    started, total, timed = {}, 0.0, set()
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "ASSET_MATERIALIZATION" and event.step_key not in timed:
            seconds = event.event_specific_data.materialization.metadata.get("seconds")
            if seconds is not None:
                total += seconds.value
                timed.add(event.step_key)
        elif event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS" and event.step_key not in timed:
            total += entry.timestamp - started[event.step_key]
    return total


class Close:
    """The definitions, instance and automation cursor of the benchmark market."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance, self.cursor = defs, instance, None
        self.runs: list[tuple[str, float, str]] = []  # (label, wall, run id); asset code is read after the clock
        self.automation_seconds = 0.0

    def execute(self, label: str, job: dg.JobDefinition, tags: dict[str, str],
                selection: list[dg.AssetKey] | None = None) -> None:
        started = time.perf_counter()
        result = job.execute_in_process(instance=self.instance, tags=tags, asset_selection=selection,
                                        raise_on_error=False, run_config=QUIET)
        assert result.success, f"{label} failed"
        self.runs.append((label, time.perf_counter() - started, result.run_id))

    def automation_tick(self) -> list[tuple[list[dg.AssetKey], dict[str, str]]]:
        """The runs the automation sensor would launch now: requested assets grouped by partition subset."""
        started = time.perf_counter()
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        self.automation_seconds += time.perf_counter() - started
        self.cursor = result.cursor
        groups: dict[tuple[str, ...], list[dg.AssetKey]] = {}
        for key in self.defs.resolve_all_asset_keys():
            if result.get_num_requested(key):
                partitions = sorted(result.get_requested_partitions(key) - {None}) if key.path[-1] != \
                    "backtest_leaderboard" else []
                groups.setdefault(tuple(partitions), []).append(key)
        symbols = list(load_symbols(self.defs))
        runs = []
        for partitions, keys in groups.items():
            tags = {}
            if partitions:
                ordered = sorted(partitions, key=symbols.index)
                tags = {RANGE_START_TAG: ordered[0], RANGE_END_TAG: ordered[-1]}
            runs.append((keys, tags))
        return runs

    def follow(self) -> None:
        """Tick and execute until the automation asks for nothing more."""
        while runs := self.automation_tick():
            for keys, tags in runs:
                job = self.defs.resolve_implicit_global_asset_job_def()
                self.execute("+".join(k.path[-1] for k in keys), job, tags, keys)


def load_symbols(defs: dg.Definitions) -> tuple[str, ...]:
    asset = defs.resolve_assets_def(dg.AssetKey([MARKET, "indicators_1d"]))
    return tuple(asset.partitions_def.get_partition_keys())


def script_close(folder: Path, database: Path, symbols: list[str], day: dt.date) -> float:
    """The plain script's close: read every file, keep `day`, check it, DELETE + INSERT in one transaction."""
    import duckdb

    started = time.perf_counter()
    check = ((pl.col("high") >= pl.col("low")) & (pl.col("low") <= pl.min_horizontal("open", "close"))
             & (pl.col("high") >= pl.max_horizontal("open", "close")) & (pl.col("low") > 0) & (pl.col("volume") >= 0))
    bars = pl.concat([pl.read_parquet(folder / f"{s}.parquet").filter(pl.col("date") >= day)
                      .with_columns(pl.lit(s).alias("symbol")) for s in symbols])
    assert bars.select(check.all()).item(), "invalid bars"
    with duckdb.connect(str(database)) as con:
        con.register("staged", bars.select("symbol", "date", "open", "high", "low", "close", "volume").to_arrow())
        con.execute("BEGIN")
        con.execute("DELETE FROM bars WHERE ts >= ?", [day])
        con.execute("INSERT INTO bars SELECT * FROM staged")
        con.execute("COMMIT")
    return time.perf_counter() - started


def script_history(folder: Path, database: Path, symbols: list[str]) -> None:
    import duckdb

    bars = pl.concat([pl.read_parquet(folder / f"{s}.parquet").with_columns(pl.lit(s).alias("symbol")) for s in symbols])
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE TABLE bars (symbol VARCHAR, ts DATE, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, "
                    "volume DOUBLE, PRIMARY KEY (symbol, ts))")
        con.register("staged", bars.select("symbol", "date", "open", "high", "low", "close", "volume").to_arrow())
        con.execute("INSERT INTO bars SELECT * FROM staged")


def child(symbols_n: int, months: int, tmp: Path) -> None:
    """One close on the instance in $DAGSTER_HOME; prints its report."""
    symbols = [f"S{i:04d}" for i in range(symbols_n)]
    last_month_end = (pd.Timestamp(2024, 1, 1) + pd.DateOffset(months=months) - pd.Timedelta(days=1)).date()
    sessions = xc.get_calendar("XNYS").sessions_in_range("2024-01-02", last_month_end.isoformat())
    last = sessions[-1].date()
    (tmp / "full").mkdir()
    (tmp / "bars").mkdir()
    write_bars(tmp / "full", symbols, sessions)
    for symbol in symbols:  # the files before the close: without the last session
        pl.read_parquet(tmp / "full" / f"{symbol}.parquet").head(-1).write_parquet(tmp / "bars" / f"{symbol}.parquet")
    config_path = tmp / "jutsu.yaml"
    config_path.write_text(yaml.safe_dump({"duckdb_path": "jutsu.duckdb", "markets": {MARKET: {
        "provider": "files", "options": {"path": "bars"}, "calendar": "XNYS", "timeframes": ["1d"],
        "start": "2024-01-02", "end": last.isoformat(), "symbols": symbols, "strategies": [STRATEGY],
        "partition_grain": {"1d": "year"}}}}))
    instance = dg.DagsterInstance.get()
    defs = build_definitions(load_config(config_path))
    close = Close(defs, instance)
    sync = defs.resolve_job_def(f"sync_{MARKET}_bars_1d")

    started = time.perf_counter()
    close.automation_tick()  # baseline
    close.execute("history", sync, {RANGE_START_TAG: f"2024-01-01|{symbols[0]}", RANGE_END_TAG: f"2024-01-01|{symbols[-1]}"})
    close.follow()
    print(f"  setup: {len(sessions) - 1} sessions x {len(symbols)} symbols synced and computed "
          f"in {time.perf_counter() - started:.1f} s (runs: {', '.join(label for label, _, _ in close.runs)})")
    script_history(tmp / "bars", tmp / "script.duckdb", symbols)
    for symbol in symbols:  # the close: every file gets the new session
        shutil.copy(tmp / "full" / f"{symbol}.parquet", tmp / "bars" / f"{symbol}.parquet")
    script = script_close(tmp / "bars", tmp / "script.duckdb", symbols, last)

    close.runs, close.automation_seconds = [], 0.0
    tick_at = pd.Timestamp(f"{last} 16:15", tz="America/New_York").to_pydatetime()
    started = time.perf_counter()
    schedule = defs.get_repository_def().get_schedule_def(f"{MARKET}_bars_1d_at_close")
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick_at) as context:
        requests = schedule.evaluate_tick(context).run_requests
    tick_seconds = time.perf_counter() - started
    sync_runs = []
    for request in requests:
        close.execute("close sync", sync, request.tags)
        sync_runs.append(close.runs[-1][2])
    bars_stored = time.perf_counter() - started
    close.follow()
    wall = time.perf_counter() - started
    # Counted after the clock stops (reading the events back is the benchmark's, not the close's).
    events = sum(len(instance.get_records_for_run(run_id, limit=10_000_000).records) for run_id in sync_runs)
    timed = [(label, seconds, code_seconds(instance, run_id)) for label, seconds, run_id in close.runs]
    code = sum(c for _, _, c in timed)
    with duckdb_connect(tmp / "jutsu.duckdb") as con:
        stored_last = con.execute("SELECT count(*) FROM bars WHERE ts >= ?", [last]).fetchall()[0][0]
    partitions = defs.resolve_assets_def(dg.AssetKey([MARKET, "bars_1d"])).partitions_def.get_num_partitions()

    print(f"  daily close of {last} for {len(symbols)} symbols (1 market x 1 timeframe), {partitions:,} bars "
          f"partitions per asset; {stored_last} bars of {last} stored:")
    print(f"    schedule run requests: {len(requests)} (target: 1 per market-timeframe); "
          f"range {requests[0].tags[RANGE_START_TAG]}...{requests[0].tags[RANGE_END_TAG]}")
    print(f"    runs launched in total: {len(close.runs)}; events of the close sync run: {events:,}")
    for label, seconds, inside in timed:
        print(f"      {label:<28} {seconds:7.2f} s wall, {inside:6.2f} s asset code")
    print(f"    schedule tick evaluation: {tick_seconds:.2f} s; automation evaluations: {close.automation_seconds:.2f} s")
    print(f"    script (read, check, write the new session): {script:.2f} s")
    print(f"    schedule tick -> bars stored (close sync run, its checks included): {bars_stored:.2f} s "
          f"= {bars_stored / script:.1f}x the script (targets: <= 3x, <= 5 s)")
    print(f"    schedule tick -> leaderboard updated: {wall:.2f} s (target <= 30 s)")
    print(f"    asset code {code:.2f} s; Dagster overhead {wall - code:.2f} s = {(wall - code) / wall:.0%} of the wall time; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    instance.dispose()


def duckdb_connect(path: Path):  # noqa: ANN201
    import duckdb

    return duckdb.connect(str(path), read_only=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--months", type=int, default=6)
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"Daily close; {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, load average "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs")
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_sync import CASE_URL_ENV, POSTGRES_ENV, _fresh_postgres, _instance_yaml

    for kind in ["sqlite"] + (["postgres"] if os.environ.get(POSTGRES_ENV) else []):
        print("SQLite, shipped dagster.yaml:" if kind == "sqlite" else "Postgres, batching event log (docs/operations.md):")
        tmp = Path(tempfile.mkdtemp(prefix="bench_close_"))
        try:
            (tmp / "dagster_home").mkdir()
            (tmp / "dagster_home" / "dagster.yaml").write_text(_instance_yaml(kind))
            env = {**os.environ, "DAGSTER_HOME": str(tmp / "dagster_home")}
            env.pop("DAGSTER_EVENT_BATCH_SIZE", None)
            if kind == "postgres":
                env[CASE_URL_ENV] = _fresh_postgres(os.environ[POSTGRES_ENV])
                env["DAGSTER_EVENT_BATCH_SIZE"] = "1000"
            done = subprocess.run([sys.executable, __file__, "--child", str(args.symbols), str(args.months), str(tmp)],
                                  env=env, capture_output=True, text=True, check=False)
            print(done.stdout, end="")
            if done.returncode:
                print(f"  FAILED:\n{done.stderr[-3000:]}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if POSTGRES_ENV not in os.environ:
        print(f"(Postgres case skipped: {POSTGRES_ENV} is not set)")


if __name__ == "__main__":
    if len(sys.argv) > 4 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
