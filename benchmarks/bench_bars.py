"""Bars spine benchmark: validation, partition replace, point query, orchestration overhead.

Run: .venv/bin/python benchmarks/bench_bars.py   (figures go to docs/performance.md)
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dagster as dg  # noqa: E402
import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from _util import best_of, row  # noqa: E402

from jutsu_pipeline.assets.bars.assets import build_bars_asset  # noqa: E402
from jutsu_pipeline.config import parse_config  # noqa: E402
from jutsu_pipeline.definitions import bars_partitionings, build_definitions  # noqa: E402
from jutsu_pipeline.providers.sample import SampleProvider  # noqa: E402
from jutsu_pipeline.quality.schema import validate_bars  # noqa: E402
from jutsu_pipeline.resources import MarketDataResource  # noqa: E402
from jutsu_pipeline.storage.bars import WindowReplacement, replace_windows  # noqa: E402
from jutsu_pipeline.storage.ddl import SCHEMA_STATEMENTS, ensure_schema, run_ddl  # noqa: E402
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG  # noqa: E402

UTC = dt.timezone.utc
FILL_5M = """
INSERT INTO bars
SELECT 'S' || lpad((i // 10000)::VARCHAR, 3, '0'), '1d',
       TIMESTAMPTZ '1990-01-01 00:00:00+00' + to_days((i % 10000)::INTEGER),
       100, 101, 99, 100.5, 1000, NULL, 'bench', now(), false
FROM range(5000000) t(i)
"""
POINT_QUERY = """
SELECT ts, open, high, low, close, volume FROM bars
WHERE symbol = $symbol AND timeframe = '1d' AND ts >= $start ORDER BY ts LIMIT 1000
"""


def synthetic_bars(n: int, symbol: str = "BENCH", start: dt.datetime = dt.datetime(2000, 1, 1, tzinfo=UTC)) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * (1 + rng.normal(0, 0.002, n))
    return pl.DataFrame({
        "ts": pl.datetime_range(start, start + dt.timedelta(days=n - 1), "1d", time_zone="UTC", eager=True)
        .dt.cast_time_unit("us"),
        "open": open_, "high": np.maximum(open_, close) * 1.01, "low": np.minimum(open_, close) * 0.99,
        "close": close, "volume": rng.integers(1_000, 1_000_000, n).astype(float), "adj_close": close,
    }).with_columns(pl.lit(symbol).alias("symbol"))


def _windows(frame: pl.DataFrame) -> pl.DataFrame:
    lo, hi = frame["ts"].min(), frame["ts"].max() + dt.timedelta(days=1)
    return pl.DataFrame({"symbol": frame["symbol"].unique().to_list()}).with_columns(
        pl.lit("w").alias("date_key"), pl.lit(lo).alias("start"), pl.lit(hi).alias("end"))


def bench_validation() -> None:
    print("Pre-write validation (pandera gate, all rules)")
    for n in (1_000, 10_000, 100_000):
        frame = synthetic_bars(n)
        windows = _windows(frame)
        sessions = frame["ts"].dt.date().to_list()  # every bar's date is a session (as for a 24/7 market)
        seconds = best_of(lambda: validate_bars(frame, windows=windows, sessions=sessions, daily=True),  # noqa: B023 - called in this iteration
                          repeat=7)
        row(f"{n:>7} bars in one call: per 1,000 bars", seconds * 1000 / (n / 1000), "ms", "target <= 10 ms")


def bench_storage(folder: Path) -> None:
    print("DuckDB (5,000,000-bar table, file on disk)")
    path = folder / "bench.duckdb"
    with duckdb.connect(str(path)) as con:
        ensure_schema(con)
        started = time.perf_counter()
        con.execute(FILL_5M)
        row("fill 5M bars (setup)", time.perf_counter() - started, "s")
    frame = synthetic_bars(1_000, "S042", dt.datetime(1995, 1, 1, tzinfo=UTC))
    replacement = WindowReplacement("S042", [(frame["ts"].min(), frame["ts"].max() + dt.timedelta(days=1))],
                                    frame.drop("symbol"))
    with duckdb.connect(str(path)) as con:
        seconds = best_of(lambda: replace_windows(con, timeframe="1d", source="bench", replacements=[replacement]))
        row("replace one 1,000-bar partition (one transaction)", seconds * 1000, "ms", "target <= 20 ms")
        seconds = best_of(lambda: ensure_schema(con), repeat=20)
        row("  of which the schema check (ensure_schema, schema current)", seconds * 1000, "ms")
        seconds = best_of(lambda: run_ddl(con, SCHEMA_STATEMENTS), repeat=20)
        row("  what each replace ran before: every CREATE OR REPLACE", seconds * 1000, "ms")
        params = {"symbol": "S123", "start": dt.datetime(1995, 1, 1, tzinfo=UTC)}
        seconds = best_of(lambda: con.execute(POINT_QUERY, params).to_arrow_table(), repeat=20)
        row("1,000-bar point query (symbol + time range) to Arrow", seconds * 1000, "ms", "target <= 5 ms")


class _TimedSample(SampleProvider):
    spent = 0.0

    def fetch(self, request):  # noqa: ANN001, ANN201
        started = time.perf_counter()
        try:
            return super().fetch(request)
        finally:
            _TimedSample.spent += time.perf_counter() - started


class _TimedMarketData(MarketDataResource):
    def provider_for(self, config, market, timezone):  # noqa: ANN001, ANN201
        return _TimedSample()


def bench_orchestration(folder: Path) -> None:
    print("Orchestration (sample provider, in-process executor)")
    market = {"provider": "sample", "calendar": "XNYS", "timeframes": ["1d"], "partition_grain": {"1d": "month"},
              "start": "2000-03-01",
              "end": "2013-03-01", "symbols": ["AAPL", "FB", "GOOG", "IBM", "MSFT"]}
    for label, make_instance in (("ephemeral (in-memory) instance", dg.DagsterInstance.ephemeral),
                                 ("sqlite DAGSTER_HOME on disk", lambda: _sqlite_instance(folder))):
        config = parse_config({"duckdb_path": str(folder / f"{label[:4]}.duckdb"), "markets": {"us_stocks": market}})
        defs = build_definitions(config)
        unbound = build_bars_asset(config, bars_partitionings(config)[0])
        resources = {"duckdb": defs.resources["duckdb"], "market_data": _TimedMarketData()}
        instance = make_instance()

        def run(start: str, end: str) -> tuple[float, float]:
            _TimedSample.spent = 0.0
            started = time.perf_counter()
            result = dg.materialize([unbound], instance=instance, resources=resources,  # noqa: B023 - run in this iteration
                                    tags={RANGE_START_TAG: start, RANGE_END_TAG: end})
            assert result.success
            return time.perf_counter() - started, _TimedSample.spent

        run("2001-01-01|AAPL", "2001-01-01|AAPL")  # warm up imports and caches
        single, single_provider = min(run("2002-01-01|AAPL", "2002-01-01|AAPL") for _ in range(3))
        full, full_provider = run("2000-03-01|AAPL", "2013-03-01|MSFT")
        per_partition = (full - single) / (785 - 1)
        print(f" {label}")
        row("one run of 1 partition (wall)", single * 1000, "ms")
        row("  of which provider fetch", single_provider * 1000, "ms")
        row("one run of 785 partitions (5 symbols x 157 months, wall)", full, "s")
        row("  of which provider fetch", full_provider, "s")
        row("orchestration cost per extra partition in a range run", per_partition * 1000, "ms")
        row("orchestration / provider time (785-partition run)", (full - full_provider) / full_provider, "x")
        instance.dispose()


def _sqlite_instance(folder: Path) -> dg.DagsterInstance:
    home = folder / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.local_temp(tempdir=str(home))


if __name__ == "__main__":
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    with tempfile.TemporaryDirectory() as tmp:
        bench_validation()
        bench_storage(Path(tmp))
        bench_orchestration(Path(tmp))
