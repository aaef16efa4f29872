"""Bars sync cost against a plain polars -> DuckDB script doing the same reading, checks and writing.

Three cases, each in a fresh process, on each instance: the shipped one (data/dagster_home/dagster.yaml:
SQLite with the batching event log) and, when a Postgres URL is given, Postgres event storage with
DAGSTER_EVENT_BATCH_SIZE=1000 and the batching event log of docs/operations.md:
  first sync   N symbols x Y years of daily `files` bars (yearly partitions), every bar run `jutsu sync` plans
  daily close  one session appended to every file, the market's `end` moved onto it (tail refresh)
  1m sync      M symbols x 1 year of 1-minute `files` bars (quarterly partitions)
The bars runs are the ones `jutsu sync` plans (one planner), with the bars asset's checks; downstream assets
are not part of this comparison (bench_close.py measures them). The script runs in the same process just
before the pipeline, over the same files.

Run: .venv/bin/python benchmarks/bench_sync.py [--symbols 500] [--years 20] [--minute-symbols 50]
     (defaults: the issue's sizes; Postgres cases with JUTSU_BENCH_POSTGRES_URL=postgresql://.../db, which
     needs the right to create a database named <db>_bench)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # as `jutsu sync` runs: no console echo
CLOSE_DAY = dt.date(2024, 6, 28)
POSTGRES_ENV = "JUTSU_BENCH_POSTGRES_URL"
CASE_URL_ENV = "JUTSU_BENCH_CASE_POSTGRES_URL"  # the fresh database of one case


# -- the plain script ----------------------------------------------------------------------------


def plain_script(folder: Path, database: Path, symbols: list[str], *, intraday: bool = False,
                 since: dt.date | None = None, timings: dict[str, float] | None = None) -> int:
    """What a user would write by hand: read, check, one transaction of Arrow inserts (`timings["read_check"]`:
    the seconds until the check passed)."""
    started = time.perf_counter()
    import duckdb
    import polars as pl

    check = ((pl.col("high") >= pl.col("low")) & (pl.col("low") <= pl.min_horizontal("open", "close"))
             & (pl.col("high") >= pl.max_horizontal("open", "close")) & (pl.col("low") > 0) & (pl.col("volume") >= 0))
    frames = []
    for symbol in symbols:
        if intraday:
            frame = pl.read_parquet(folder / f"{symbol}.parquet")
        else:
            frame = pl.read_csv(folder / f"{symbol}.csv", try_parse_dates=True).rename({"date": "ts"})
        if since is not None:
            frame = frame.filter(pl.col("ts") >= since)
        frames.append(frame.with_columns(pl.lit(symbol).alias("symbol")))
    bars = pl.concat(frames)
    assert bars.select(check.all()).item(), "invalid bars"
    if timings is not None:
        timings["read_check"] = time.perf_counter() - started
    ts_type = "TIMESTAMPTZ" if intraday else "DATE"
    with duckdb.connect(str(database)) as con:
        con.execute(f"CREATE TABLE IF NOT EXISTS bars (symbol VARCHAR, ts {ts_type}, open DOUBLE, high DOUBLE, "
                    "low DOUBLE, close DOUBLE, volume DOUBLE, PRIMARY KEY (symbol, ts))")
        con.register("staged", bars.select("symbol", "ts", "open", "high", "low", "close", "volume").to_arrow())
        con.execute("BEGIN")
        if since is not None:
            con.execute("DELETE FROM bars WHERE ts >= ?", [since])
        con.execute("INSERT INTO bars SELECT * FROM staged")
        con.execute("COMMIT")
    return bars.height


# -- the data --------------------------------------------------------------------------------------


def daily_sessions(years: int) -> list[dt.date]:
    import exchange_calendars as xc

    calendar = xc.get_calendar("XNYS", start="2000-01-01")
    # History up to 2024-06-27; the close of 2024-06-28 then moves `end` one session inside the stored
    # 2024 window: the planner's tail refresh, as at a real close.
    return [d.date() for d in calendar.sessions_in_range(f"{2024 - years}-07-01", "2024-06-27")]


def write_daily(folder: Path, symbols: list[str], sessions: list[dt.date]) -> None:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    dates = [d.isoformat() for d in sessions]
    for symbol in symbols:
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, len(dates))))
        pl.DataFrame({"date": dates, "open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
                      "volume": rng.integers(1_000, 100_000, len(dates)).astype(float)}).write_csv(folder / f"{symbol}.csv")


def append_session(folder: Path, symbols: list[str], day: dt.date) -> None:
    """One more bar per file, at the symbol's last close (no price jump for the checks to flag)."""
    for symbol in symbols:
        path = folder / f"{symbol}.csv"
        close = float(path.read_text().rstrip("\n").rsplit("\n", 1)[-1].split(",")[4])
        with path.open("a") as f:
            f.write(f"{day.isoformat()},{close},{close * 1.01},{close * 0.99},{close},1000.0\n")


def write_minutes(folder: Path, symbols: list[str], first: str, last: str) -> int:
    import exchange_calendars as xc
    import numpy as np
    import polars as pl

    minutes = xc.get_calendar("XNYS").sessions_minutes(first, last)  # bar starts, open <= ts < close
    epoch_us = minutes.tz_convert("UTC").as_unit("us").asi8
    ts = pl.Series("ts", epoch_us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    rng = np.random.default_rng(11)
    folder.mkdir(parents=True, exist_ok=True)
    for symbol in symbols:
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.0005, len(ts))))
        pl.DataFrame({"ts": ts, "open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
                      "volume": rng.integers(1, 1_000, len(ts)).astype(float)}).write_parquet(folder / f"{symbol}.parquet")
    return len(ts)


# -- one case in this process ----------------------------------------------------------------------


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _configure(tmp: Path, market: dict):  # noqa: ANN202 - a JutsuConfig
    import yaml

    from jutsu_pipeline.config import load_config

    (tmp / "jutsu.yaml").write_text(yaml.safe_dump({"duckdb_path": "jutsu.duckdb", "markets": {"bench": market}}))
    return load_config(tmp / "jutsu.yaml")


def _pipeline_sync(config, instance) -> dict:  # noqa: ANN001
    """The bars part of `jutsu sync`: definitions, plan with the shared planner, execute its range runs."""
    from jutsu_pipeline.assets.bars.assets import bars_asset_key
    from jutsu_pipeline.assets.partitions import bars_partitions_def
    from jutsu_pipeline.definitions import bars_job_name, bars_partitionings, build_definitions
    from jutsu_pipeline.status import partition_status
    from jutsu_pipeline.sync.planner import plan_sync

    started = time.perf_counter()
    defs = build_definitions(config)
    defs_seconds = time.perf_counter() - started
    [p] = bars_partitionings(config)
    key = bars_asset_key(p.market, p.timeframe.value)
    job = defs.resolve_job_def(bars_job_name(p))
    started = time.perf_counter()
    plan = plan_sync(p, partition_status(instance, key, p, job.name))
    run_ids: list[str] = []
    checks: dict[str, bool] = {}
    for partition_range in plan.ranges:
        result = job.execute_in_process(instance=instance, tags=partition_range.tags, raise_on_error=True,
                                        run_config=QUIET)
        run_ids.append(result.run_id)
        checks.update({e.check_name: e.passed for e in result.get_asset_check_evaluations()})
    wall = time.perf_counter() - started
    # Counted after the clock stops: reading 21,000 events back took ~11 s, which earlier runs timed as the sync's.
    events = sum(len(instance.get_records_for_run(run_id, limit=10_000_000).records) for run_id in run_ids)
    return {"wall": wall, "definitions": defs_seconds, "partitions": bars_partitions_def(p).get_num_partitions(),
            "planned": len(plan.keys), "runs": len(run_ids), "events": events, "tail": any(r.tail for r in plan.ranges),
            "checks_failed": sorted(name for name, ok in checks.items() if not ok)}


def _read_and_validate(config, folder: Path) -> float:  # noqa: ANN001
    """Seconds of the bars engine's fetch and validation of every partition alone (no write, no Dagster):
    the part of a sync that does what the script's read and check do."""
    import logging

    from jutsu_pipeline.definitions import bars_partitionings
    from jutsu_pipeline.partitions import partition_key
    from jutsu_pipeline.providers.files import FilesProvider
    from jutsu_pipeline.sync.engine import BarsSync

    class ReadAndValidate(BarsSync):
        def _feed(self) -> None:  # validated windows are dropped, not stored
            self._pending = []

        def _write(self) -> None:
            self._pending, self._pending_rows = [], 0

    [p] = bars_partitionings(config)
    keys = [partition_key(d, s) for s in p.symbols for d in p.date_keys()]
    started = time.perf_counter()
    provider = FilesProvider(folder, p.calendar.timezone.key)
    outcome = ReadAndValidate(p, provider, connect=None, log=logging.getLogger("bench")).run(keys)  # type: ignore[arg-type]
    provider.close()
    assert not outcome.failed, list(outcome.failed.values())[:3]
    return time.perf_counter() - started


def _stored(config) -> int:  # noqa: ANN001
    import duckdb

    with duckdb.connect(str(config.database), read_only=True) as con:
        return con.execute("SELECT count(*) FROM bars").fetchall()[0][0]


def child(case: str, symbols_n: int, years: int, tmp: Path) -> None:
    warnings.filterwarnings("ignore")
    import dagster as dg

    symbols = [f"S{i:04d}" for i in range(symbols_n)]
    out: list[dict] = []
    with dg.DagsterInstance.get() as instance:
        if case == "daily":
            sessions = daily_sessions(years)
            write_daily(tmp / "bars", symbols, sessions)
            market = {"provider": "files", "options": {"path": "bars"}, "calendar": "XNYS", "timeframes": ["1d"],
                      "start": sessions[0].isoformat(), "end": sessions[-1].isoformat(), "symbols": symbols,
                      "partition_grain": {"1d": "year"}}
            started, timings = time.perf_counter(), {}
            rows = plain_script(tmp / "bars", tmp / "script.duckdb", symbols, timings=timings)
            script = time.perf_counter() - started
            config = _configure(tmp, market)
            first = _pipeline_sync(config, instance)
            out.append({"step": f"first sync, {symbols_n} x {years} y daily", "script": script, "rows": rows,
                        "stored": _stored(config), "rss": _peak_mb(), **first, "script_read_check": timings["read_check"],
                        "read_validate": _read_and_validate(config, tmp / "bars")})

            append_session(tmp / "bars", symbols, CLOSE_DAY)
            started = time.perf_counter()
            rows = plain_script(tmp / "bars", tmp / "script.duckdb", symbols, since=CLOSE_DAY)
            script = time.perf_counter() - started
            config = _configure(tmp, {**market, "end": CLOSE_DAY.isoformat()})
            close = _pipeline_sync(config, instance)
            out.append({"step": f"daily close, {symbols_n} symbols +1 session", "script": script, "rows": rows,
                        "stored": _stored(config), "rss": _peak_mb(), **close})
        else:
            per_symbol = write_minutes(tmp / "bars", symbols, "2023-07-03", "2024-06-28")
            market = {"provider": "files", "options": {"path": "bars"}, "calendar": "XNYS", "timeframes": ["1m"],
                      "start": "2023-07-03", "end": "2024-06-28", "symbols": symbols,
                      "partition_grain": {"1m": "quarter"}}
            started, timings = time.perf_counter(), {}
            rows = plain_script(tmp / "bars", tmp / "script.duckdb", symbols, intraday=True, timings=timings)
            script = time.perf_counter() - started
            assert rows == per_symbol * symbols_n
            config = _configure(tmp, market)
            first = _pipeline_sync(config, instance)
            out.append({"step": f"first sync, {symbols_n} x 1 y 1m", "script": script, "rows": rows,
                        "stored": _stored(config), "rss": _peak_mb(), **first, "script_read_check": timings["read_check"],
                        "read_validate": _read_and_validate(config, tmp / "bars")})
    print(json.dumps(out))


# -- the driver ------------------------------------------------------------------------------------


def _fresh_postgres(url: str) -> str:
    """A new empty database `<db>_bench` next to `url`'s (dropped first if left over)."""
    import sqlalchemy as sa

    url = url.replace("postgresql://", "postgresql+psycopg2://", 1)  # SQLAlchemy 2.1 maps plain to psycopg 3
    base, _, name = url.rpartition("/")
    target = f"{name.split('?')[0]}_bench"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as con:
        con.execute(sa.text(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))
        con.execute(sa.text(f'CREATE DATABASE "{target}"'))
    engine.dispose()
    return f"{base}/{target}"


def _instance_yaml(kind: str) -> str:
    shipped = (REPO / "data" / "dagster_home" / "dagster.yaml").read_text()
    if kind == "sqlite":
        return shipped
    url = f"config: {{postgres_url: {{env: {CASE_URL_ENV}}}}}"  # docs/operations.md's Postgres storages
    return shipped + (f"\nrun_storage: {{module: dagster_postgres.run_storage, class: PostgresRunStorage, {url}}}\n"
                      f"event_log_storage: {{module: jutsu_pipeline.instance_storage, "
                      f"class: BatchingPostgresEventLogStorage, {url}}}\n"
                      f"schedule_storage: {{module: dagster_postgres.schedule_storage, class: PostgresScheduleStorage, {url}}}\n")


def run_case(case: str, kind: str, symbols: int, years: int) -> list[dict] | None:
    with tempfile.TemporaryDirectory(prefix="bench_sync_") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "dagster_home").mkdir()
        (tmp / "dagster_home" / "dagster.yaml").write_text(_instance_yaml(kind))
        env = {**os.environ, "DAGSTER_HOME": str(tmp / "dagster_home")}
        env.pop("DAGSTER_EVENT_BATCH_SIZE", None)  # the shipped SQLite instance sets its own
        if kind == "postgres":
            env[CASE_URL_ENV] = _fresh_postgres(os.environ[POSTGRES_ENV])
            env["DAGSTER_EVENT_BATCH_SIZE"] = "1000"
        done = subprocess.run([sys.executable, __file__, "--child", case, str(symbols), str(years), str(tmp)],
                              env=env, capture_output=True, text=True, check=False, cwd=tmp)
    if done.returncode:
        print(f"  {case} on {kind} FAILED:\n{done.stderr[-3000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500, help="daily symbols (default 500)")
    parser.add_argument("--years", type=int, default=20, help="daily years (default 20)")
    parser.add_argument("--minute-symbols", type=int, default=50, help="1m symbols, one year each (default 50; 0 skips)")
    args = parser.parse_args()
    kinds = ["sqlite"] + (["postgres"] if os.environ.get(POSTGRES_ENV) else [])
    load = os.getloadavg()
    print(f"Bars sync against a plain polars -> DuckDB script; {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs"
          + ("" if POSTGRES_ENV in os.environ else f"; Postgres cases skipped ({POSTGRES_ENV} is not set)"))
    cases = [("daily", args.symbols, args.years)] + ([("minute", args.minute_symbols, 1)] if args.minute_symbols else [])
    for case, symbols, years in cases:
        for kind in kinds:
            results = run_case(case, kind, symbols, years)
            for r in results or []:
                target = "<= 3x, <= 5 s" if r["step"].startswith("daily close") else "<= 2x"
                label = "SQLite (shipped)" if kind == "sqlite" else "Postgres, batching"
                print(f"  {r['step']:<34} {label:<22} script {r['script']:6.1f} s, pipeline {r['wall']:6.1f} s "
                      f"= {r['wall'] / r['script']:5.1f}x (target {target}); {r['partitions']:,} partitions per asset, "
                      f"{r['planned']:,} planned, {r['runs']} run(s){' (tail)' if r['tail'] else ''}, "
                      f"{r['events']:,} events, peak RSS {r['rss']:.0f} MB; rows {r['rows']:,} script / "
                      f"{r['stored']:,} stored; definitions {r['definitions']:.1f} s"
                      + (f"; FAILED checks: {r['checks_failed']}" if r["checks_failed"] else ""))
                if "read_validate" in r:  # the engine's share of the comparison, timed apart
                    print(f"    of which reading and validating: the engine's fetch + validation alone "
                          f"{r['read_validate']:.1f} s, the script's read + check {r['script_read_check']:.1f} s "
                          f"= {r['read_validate'] / r['script_read_check']:.1f}x")


if __name__ == "__main__":
    if len(sys.argv) > 5 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
    else:
        main()
