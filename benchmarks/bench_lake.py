"""DuckLake benchmarks: parallel writers, the shared rate budget, and the cost of Parquet + catalog.

    JUTSU_BENCH_POSTGRES_URL=postgresql://user:pass@127.0.0.1:5432/db .venv/bin/python benchmarks/bench_lake.py
    (or $JUTSU_TEST_POSTGRES_URL; the catalog gets two throw-away schemas, dropped afterwards)

(a) 200 symbols x one month of daily bars from the fake exchange (50 ms latency, 20 req/s limit) synced
    into a DuckLake on Postgres by 1 process vs 2 processes (100 symbols each, one shared rate budget):
    wall-time ratio, achieved request rate / limit, 429s.
(b) first sync of the same data: DuckLake vs a DuckDB file (1 process each).
(c) a 1,000-bar point query (one symbol's 1,000 daily bars, synced into both afterwards), warm
    connection, best of 20; and the cost of opening a connection.
(d) two processes each allowed the whole 10 req/s of an exchange limited to 10 req/s (no latency):
    achieved rate together / limit (target >= 0.95) and 429s (target 0).
The sync workers run the bars asset's engine (BarsSync) without Dagster's per-partition event writes.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import best_of, row  # noqa: E402
from jutsu_fake_exchange import FakeExchange  # noqa: E402
from jutsu_fake_exchange.bars import SymbolSpec  # noqa: E402
from jutsu_pipeline.providers.http.budget import BUDGET_ENV  # noqa: E402

SYMBOLS = tuple(f"S{i:03d}USDT" for i in range(200))
START, END = dt.date(2024, 1, 1), dt.date(2024, 1, 31)  # one month: the sync is bound by requests, not CPU
QUERY_START, QUERY_END = dt.date(2021, 6, 1), dt.date(2024, 2, 25)  # 1,000 daily bars of one symbol
LATENCY, LIMIT = 0.05, 20.0
POSTGRES = re.sub(r"^postgres(ql)?\+\w+://", "postgresql://",
                  os.environ.get("JUTSU_BENCH_POSTGRES_URL") or os.environ.get("JUTSU_TEST_POSTGRES_URL") or "")


def write_config(folder: Path, fx: FakeExchange, storage: dict, name: str = "jutsu.yaml",
                 start: dt.date = START, end: dt.date = END, symbols: tuple[str, ...] = SYMBOLS) -> Path:
    http = {"requests_per_second": LIMIT, "burst": 1.0, "retry_after_max": 30.0}
    market = {"provider": "binance", "calendar": "24/7", "timeframes": ["1d"], "start": start.isoformat(),
              "end": end.isoformat(), "symbols": list(symbols), "options": {"base_url": fx.url, "http": http}}
    path = folder / name
    path.write_text(yaml.safe_dump({"storage": storage, "markets": {"crypto": market}}))
    return path


def worker(config_path: str, first: int, last: int) -> None:
    """Sync symbols[first:last] with the bars asset's engine; prints bars written."""
    import logging

    from jutsu_pipeline.config import load_config
    from jutsu_pipeline.partitions import BarsPartitioning, partition_key
    from jutsu_pipeline.resources import JutsuDuckDBResource, MarketDataResource
    from jutsu_pipeline.sync.engine import BarsSync
    from jutsu_pipeline.timeframes import Timeframe

    config = load_config(config_path)
    p = BarsPartitioning("crypto", Timeframe("1d"), config.markets["crypto"])
    keys = [partition_key(d, s) for s in p.symbols[first:last] for d in p.date_keys()]
    provider = MarketDataResource().provider_for(config, "crypto", "UTC")
    storage = JutsuDuckDBResource.for_config(config)
    outcome = BarsSync(p, provider, storage.get_connection, logging.getLogger("bench")).run(keys)
    provider.close()
    assert not outcome.failed, list(outcome.failed.values())[:3]
    print(outcome.bars_written)


def sync(config_path: Path, parts: int, env: dict, symbols: int = len(SYMBOLS)) -> float:
    """Wall time of `parts` worker processes sharing the symbols (and one budget file)."""
    step = symbols // parts
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(config_path), str(i * step),
                               str(symbols if i == parts - 1 else (i + 1) * step)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(parts)]
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - started
    for p, (_out, err) in zip(procs, outs):
        if p.returncode != 0:
            raise SystemExit(f"worker failed:\n{err[-3000:]}")
    return wall


def request_rate(fx: FakeExchange) -> tuple[float, int, int]:
    arrivals = sorted(r.at for r in fx.requests("binance"))
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
    return rate, len(arrivals), fx.count("binance", 429)


def point_query(config_path: Path) -> tuple[float, float]:
    """Best time of a 1,000-bar read on a warm connection, and of opening a connection."""
    from jutsu_pipeline.config import load_config
    from jutsu_pipeline.resources import JutsuDuckDBResource

    storage = JutsuDuckDBResource.for_config(load_config(config_path))
    sql = "SELECT ts, open, high, low, close, volume FROM bars WHERE symbol = ? AND timeframe = '1d' ORDER BY ts"
    with storage.get_connection(read_only=True) as con:
        assert len(con.execute(sql, [SYMBOLS[42]]).fetchall()) == 1000
        query = best_of(lambda: con.execute(sql, [SYMBOLS[42]]).fetchall(), repeat=20)

    def connect() -> None:
        with storage.get_connection(read_only=True) as con:
            con.execute("SELECT 1").fetchall()

    return query, best_of(connect, repeat=5)


def drop_schemas(schemas: list[str]) -> None:
    import psycopg2

    with psycopg2.connect(POSTGRES) as pg, pg.cursor() as cursor:
        for schema in schemas:
            cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def shared_budget(folder: Path) -> tuple[float, int]:
    """(d): two processes, each configured for the whole 10 req/s, against a 10 req/s exchange."""
    env = {**os.environ, BUDGET_ENV: str(folder / "budget_d.sqlite")}
    pages = 40
    with FakeExchange(rate_limit=10) as fx:
        procs = [subprocess.Popen([sys.executable, "-m", "jutsu_pipeline_tests.budget_worker", fx.url, str(pages), "10"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for p in procs:
            p.communicate()
        rate, _, throttled = request_rate(fx)
    return rate / 10.0, throttled


def main() -> None:
    if not POSTGRES:
        print("bench_lake: not run: set JUTSU_BENCH_POSTGRES_URL (or JUTSU_TEST_POSTGRES_URL) to a Postgres database")
        return
    print(f"bench_lake: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} (shared machine)")
    specs = tuple(SymbolSpec(s, "crypto", dt.date(2017, 8, 17), 100.0 + i) for i, s in enumerate(SYMBOLS))
    schemas = [f"bench_lake_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results: dict[str, float] = {}
        try:
            with FakeExchange(symbols=specs, latency=LATENCY, rate_limit=LIMIT) as fx:
                configs = {}
                for label, storage in [
                    ("lake1", {"kind": "ducklake", "catalog": POSTGRES, "data_path": str(folder / "lake1"),
                               "metadata_schema": schemas[0]}),
                    ("lake2", {"kind": "ducklake", "catalog": POSTGRES, "data_path": str(folder / "lake2"),
                               "metadata_schema": schemas[1]}),
                    ("duckdb", {"kind": "duckdb", "path": str(folder / "bars.duckdb")}),
                ]:
                    (folder / label).mkdir(exist_ok=True)
                    configs[label] = write_config(folder / label, fx, storage)
                for label, parts in [("lake1", 1), ("lake2", 2), ("duckdb", 1)]:
                    fx.log.clear()
                    env = {**os.environ, BUDGET_ENV: str(folder / f"budget_{label}.sqlite")}
                    results[label] = sync(configs[label], parts, env)
                    rate, count, throttled = request_rate(fx)
                    results[f"{label}_rate"], results[f"{label}_429"], results[f"{label}_requests"] = rate, throttled, count
                for label in ("lake1", "duckdb"):  # one long history for the point query
                    storage = yaml.safe_load(configs[label].read_text())["storage"]
                    query_config = write_config(folder / label, fx, storage, "query.yaml", QUERY_START, QUERY_END,
                                                (SYMBOLS[42],))
                    sync(query_config, 1, {**os.environ, BUDGET_ENV: str(folder / "budget_q.sqlite")}, symbols=1)
            lake_query, lake_connect = point_query(configs["lake1"])
            file_query, file_connect = point_query(configs["duckdb"])
            budget_ratio, budget_429 = shared_budget(folder)
        finally:
            drop_schemas(schemas)
    print(f"(a) 200 symbols x 31 daily bars, fake exchange {LATENCY * 1000:.0f} ms latency, {LIMIT:.0f} req/s limit:")
    row("DuckLake, 1 process: wall", results["lake1"], "s")
    row("DuckLake, 2 processes: wall", results["lake2"], "s")
    row("speed-up 2 processes / 1 process", results["lake1"] / results["lake2"], "x", "(<= 2, capped by the limit)")
    row("request rate / limit, 1 process", results["lake1_rate"] / LIMIT, "")
    row("request rate / limit, 2 processes", results["lake2_rate"] / LIMIT, "", "(never above 1)")
    row("HTTP 429s, 1 and 2 processes", results["lake1_429"] + results["lake2_429"], "", "(target 0)")
    print("(b) first sync, 1 process:")
    row("DuckDB file: wall", results["duckdb"], "s")
    row("DuckLake / DuckDB file", results["lake1"] / results["duckdb"], "x")
    print("(c) 1,000-bar point query (warm connection, best of 20):")
    row("DuckDB file", file_query * 1000, "ms")
    row("DuckLake (Postgres catalog)", lake_query * 1000, "ms")
    row("DuckLake / DuckDB file", lake_query / file_query, "x")
    row("opening a connection: DuckDB file", file_connect * 1000, "ms")
    row("opening a connection: DuckLake (extensions + ATTACH)", lake_connect * 1000, "ms")
    print("(d) two processes sharing one budget, exchange limit 10 req/s:")
    row("achieved rate together / limit", budget_ratio, "", "(target >= 0.95)")
    row("HTTP 429s", budget_429, "", "(target 0)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
