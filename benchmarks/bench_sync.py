"""Bars sync cost against a plain polars -> DuckDB script doing the same reading, checks and writing.

First sync of N symbols × Y years of daily bars from the `files` provider, then a daily close (one new
session appended to every file), on the shipped instance (JutsuInstance: batched SQLite events) in a
temporary DAGSTER_HOME; the bars runs are the ones `jutsu sync` plans (one planner). Downstream assets
are not part of this comparison (bench_close.py measures them).

Run: .venv/bin/python benchmarks/bench_sync.py [symbols] [years]     (defaults: 500 20, the issue's target)
"""

from __future__ import annotations

import datetime as dt
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb
import exchange_calendars as xc
import numpy as np
import polars as pl
import yaml

from jutsu_pipeline.assets.bars.assets import bars_asset_key
from jutsu_pipeline.config import load_config
from jutsu_pipeline.definitions import bars_job_name, bars_partitionings, build_definitions
from jutsu_pipeline.status import partition_status
from jutsu_pipeline.sync.planner import plan_sync

REPO = Path(__file__).resolve().parents[1]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # as `jutsu sync` runs: no console echo
CHECK = (pl.col("high") >= pl.col("low")) & (pl.col("low") <= pl.min_horizontal("open", "close")) \
    & (pl.col("high") >= pl.max_horizontal("open", "close")) & (pl.col("low") > 0) & (pl.col("volume") >= 0)


def write_files(folder: Path, symbols: list[str], sessions: list[dt.date]) -> None:
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    dates = [d.isoformat() for d in sessions]
    for symbol in symbols:
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, len(dates))))
        pl.DataFrame({"date": dates, "open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
                      "volume": rng.integers(1_000, 100_000, len(dates))}).write_csv(folder / f"{symbol}.csv")


def append_session(folder: Path, symbols: list[str], day: dt.date) -> None:
    for symbol in symbols:
        with (folder / f"{symbol}.csv").open("a") as f:
            f.write(f"{day.isoformat()},50.0,50.5,49.5,50.0,1000\n")


def plain_script(folder: Path, database: Path, symbols: list[str], since: dt.date | None = None) -> int:
    """What a user would write by hand: read, check, one transaction of Arrow inserts."""
    frames = []
    for symbol in symbols:
        frame = pl.read_csv(folder / f"{symbol}.csv", try_parse_dates=True)
        if since is not None:
            frame = frame.filter(pl.col("date") >= since)
        frames.append(frame.with_columns(pl.lit(symbol).alias("symbol")))
    bars = pl.concat(frames)
    assert bars.select(CHECK.all()).item(), "invalid bars"
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE TABLE IF NOT EXISTS bars (symbol VARCHAR, ts DATE, open DOUBLE, high DOUBLE, low DOUBLE, "
                    "close DOUBLE, volume BIGINT, PRIMARY KEY (symbol, ts))")
        con.register("staged", bars.select("symbol", pl.col("date").alias("ts"), "open", "high", "low", "close",
                                           "volume").to_arrow())
        con.execute("BEGIN")
        if since is not None:
            con.execute("DELETE FROM bars WHERE ts >= ?", [since])
        con.execute("INSERT INTO bars SELECT * FROM staged")
        con.execute("COMMIT")
    return bars.height


def pipeline_sync(defs: dg.Definitions, instance: dg.DagsterInstance, config) -> dict:  # noqa: ANN001
    """The bars part of `jutsu sync`: plan with the shared planner, execute its range runs."""
    [p] = bars_partitionings(config)
    key = bars_asset_key(p.market, p.timeframe.value)
    job = defs.resolve_job_def(bars_job_name(p))
    plan = plan_sync(p, partition_status(instance, key, p, job.name))
    runs = events = 0
    for partition_range in plan.ranges:
        result = job.execute_in_process(instance=instance, tags=partition_range.tags, raise_on_error=True,
                                        run_config=QUIET)
        runs += 1
        events += len(instance.get_records_for_run(result.run_id, limit=10_000_000).records)
    return {"partitions": plan.total, "planned": len(plan.keys), "runs": runs, "events": events,
            "tail": any(r.tail for r in plan.ranges)}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    n_symbols = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    years = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    calendar = xc.get_calendar("XNYS", start="2000-01-01")
    # History up to 2024-06-27; the close of 2024-06-28 then moves the market's `end` by one session
    # inside the stored 2024 window: the planner's tail refresh, as at a real close.
    sessions = [d.date() for d in calendar.sessions_in_range(f"{2024 - years}-07-01", "2024-06-27")]
    close_day = dt.date(2024, 6, 28)
    print(f"Bars sync: {n_symbols} symbols x {years} years of daily bars ({n_symbols * len(sessions):,} bars), "
          f"files provider, shipped instance (batched SQLite events)")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        write_files(tmp / "bars", symbols, sessions)
        home = tmp / "dagster_home"
        home.mkdir()
        shutil.copy(REPO / "data" / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        def configure(end: dt.date):  # noqa: ANN202
            (tmp / "jutsu.yaml").write_text(yaml.safe_dump({"duckdb_path": "jutsu.duckdb", "markets": {"bench": {
                "provider": "files", "options": {"path": "bars"}, "calendar": "XNYS", "timeframes": ["1d"],
                "start": sessions[0].isoformat(), "end": end.isoformat(), "symbols": symbols,
                "partition_grain": {"1d": "year"}}}}))
            return load_config(tmp / "jutsu.yaml")

        config = configure(sessions[-1])

        started = time.perf_counter()
        script_rows = plain_script(tmp / "bars", tmp / "script.duckdb", symbols)
        script_first = time.perf_counter() - started
        with dg.DagsterInstance.from_config(str(home)) as instance:
            defs = build_definitions(config)
            started = time.perf_counter()
            first = pipeline_sync(defs, instance, config)
            first_wall = time.perf_counter() - started
            stored = duckdb.connect(str(config.database), read_only=True).execute("SELECT count(*) FROM bars").fetchall()
            print(f"  first sync: script {script_first:.1f} s ({script_rows:,} rows); pipeline {first_wall:.1f} s "
                  f"({stored[0][0]:,} rows) = {first_wall / script_first:.1f}x (target <= 2x); "
                  f"{first['partitions']:,} partitions per asset, {first['runs']} run(s), {first['events']:,} events, "
                  f"peak RSS {peak_mb():.0f} MB")

            append_session(tmp / "bars", symbols, close_day)
            started = time.perf_counter()
            script_rows = plain_script(tmp / "bars", tmp / "script.duckdb", symbols, since=close_day)
            script_close = time.perf_counter() - started
            config = configure(close_day)
            defs = build_definitions(config)
            started = time.perf_counter()
            close = pipeline_sync(defs, instance, config)
            close_wall = time.perf_counter() - started
            print(f"  daily close (+1 session): script {script_close:.1f} s; pipeline {close_wall:.1f} s "
                  f"= {close_wall / script_close:.1f}x (target <= 3x, <= 5 s to bars stored); "
                  f"{close['planned']} partitions, {close['runs']} run(s) (tail: {close['tail']}), "
                  f"{close['events']:,} events, peak RSS {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
