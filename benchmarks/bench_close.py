"""A daily close for 500 symbols: runs launched, tick-to-leaderboard wall time, Dagster's share of it.

    python benchmarks/bench_close.py [--symbols 500] [--months 6]

Setup (untimed): seeded random-walk daily bars for every XNYS session of 2024-01..(months) in
Parquet files (the `files` provider), a sqlite instance made from the checked-in dagster.yaml, the
whole history synced and everything downstream computed, and the automation sensor's baseline.
Timed, as the daemon would do it but in-process: the close schedule's tick on the last session, its
run(s), then automation-condition ticks and the runs they request (one range run per tick, the
assets of a tick together) until the leaderboard is rematerialised. "Asset code" is the time spent
inside the asset and check functions (their `seconds` metadata, or their step durations); the rest
is Dagster: tick evaluation, run setup, per-partition events, automation evaluation.
"""

from __future__ import annotations

import argparse
import shutil
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
from jutsu_pipeline.sync.missing import RANGE_END_TAG, RANGE_START_TAG  # noqa: E402

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
        self.runs: list[tuple[str, float, float]] = []  # (label, wall, asset code)
        self.automation_seconds = 0.0

    def execute(self, label: str, job: dg.JobDefinition, tags: dict[str, str],
                selection: list[dg.AssetKey] | None = None) -> None:
        started = time.perf_counter()
        result = job.execute_in_process(instance=self.instance, tags=tags, asset_selection=selection,
                                        raise_on_error=False, run_config=QUIET)
        assert result.success, f"{label} failed"
        self.runs.append((label, time.perf_counter() - started, code_seconds(self.instance, result.run_id)))

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--months", type=int, default=6)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_close_"))
    try:
        symbols = [f"S{i:04d}" for i in range(args.symbols)]
        last_month_end = (pd.Timestamp(2024, 1, 1) + pd.DateOffset(months=args.months) - pd.Timedelta(days=1)).date()
        sessions = xc.get_calendar("XNYS").sessions_in_range("2024-01-02", last_month_end.isoformat())
        (tmp / "bars").mkdir()
        write_bars(tmp / "bars", symbols, sessions)
        config_path = tmp / "jutsu.yaml"
        config_path.write_text(yaml.safe_dump({"duckdb_path": "jutsu.duckdb", "markets": {MARKET: {
            "provider": "files", "options": {"path": "bars"}, "calendar": "XNYS", "timeframes": ["1d"],
            "start": "2024-01-02", "end": last_month_end.isoformat(), "symbols": symbols, "strategies": [STRATEGY],
            "partition_grain": {"1d": "month"}}}}))  # the layout its figures in docs/performance.md were measured with
        home = tmp / "dagster_home"
        home.mkdir()
        shutil.copy(REPO / "data" / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        instance = dg.DagsterInstance.from_config(str(home))
        defs = build_definitions(load_config(config_path))
        close = Close(defs, instance)
        sync = defs.resolve_job_def(f"sync_{MARKET}_bars_1d")
        last = sessions[-1].date()
        month = last.replace(day=1).isoformat()

        started = time.perf_counter()
        close.automation_tick()  # baseline
        close.execute("history", sync, {RANGE_START_TAG: f"2024-01-01|{symbols[0]}",
                                        RANGE_END_TAG: f"{month}|{symbols[-1]}"})
        close.follow()
        print(f"setup: {len(sessions)} sessions x {len(symbols)} symbols synced and computed "
              f"in {time.perf_counter() - started:.1f} s (runs: {', '.join(label for label, _, _ in close.runs)})")

        close.runs, close.automation_seconds = [], 0.0
        tick_at = pd.Timestamp(f"{last} 16:15", tz="America/New_York").to_pydatetime()
        started = time.perf_counter()
        schedule = defs.get_repository_def().get_schedule_def(f"{MARKET}_bars_1d_at_close")
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick_at) as context:
            requests = schedule.evaluate_tick(context).run_requests
        tick_seconds = time.perf_counter() - started
        for request in requests:
            close.execute("close sync", sync, request.tags)
        close.follow()
        wall = time.perf_counter() - started
        code = sum(c for _, _, c in close.runs)

        print(f"daily close of {last} for {len(symbols)} symbols (1 market x 1 timeframe):")
        print(f"  schedule run requests: {len(requests)} (target: 1 per market-timeframe); "
              f"range {requests[0].tags[RANGE_START_TAG]}...{requests[0].tags[RANGE_END_TAG]}")
        print(f"  runs launched in total: {len(close.runs)}")
        for label, seconds, inside in close.runs:
            print(f"    {label:<28} {seconds:7.2f} s wall, {inside:6.2f} s asset code")
        print(f"  schedule tick evaluation: {tick_seconds:.2f} s; automation evaluations: {close.automation_seconds:.2f} s")
        print(f"  wall time, schedule tick -> leaderboard updated: {wall:.2f} s")
        print(f"  asset code {code:.2f} s; Dagster overhead {wall - code:.2f} s = {(wall - code) / wall:.0%} of the wall time")
        instance.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
