"""Data-quality checks benchmark: every check over the whole stored table of one asset.

500 symbols × 10 years of daily bars and 50 symbols × 2 years of 5-minute bars (XNYS sessions, synthetic
random walks written straight into DuckDB); every partition counts as materialised.

Each round evaluates the four checks as one check step does (`stored.shared_reads`); best of 3 rounds.

Run: /tmp/venv/bin/python benchmarks/bench_checks.py      (targets: daily check set < 2 s)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from _util import row  # noqa: E402

from jutsu_pipeline.config import parse_config  # noqa: E402
from jutsu_pipeline.partitions import BarsPartitioning  # noqa: E402
from jutsu_pipeline.quality.grid import calendar_grid  # noqa: E402
from jutsu_pipeline.quality.report import CheckReport  # noqa: E402
from jutsu_pipeline.quality.stored import (  # noqa: E402
    check_anomalies,
    check_calendar,
    check_duplicates,
    check_schema,
    shared_reads,
)
from jutsu_pipeline.storage.ddl import ensure_schema  # noqa: E402
from jutsu_pipeline.timeframes import Timeframe  # noqa: E402

INSERT = """
INSERT INTO bars
SELECT symbol, $timeframe, ts, open, high, low, close, volume, close, 'bench', now(), false FROM staged
"""


def _partitioning(timeframe: str, symbols: int, start: str, end: str) -> BarsPartitioning:
    market = {"provider": "sample", "calendar": "XNYS", "timeframes": [timeframe], "start": start, "end": end,
              "symbols": [f"S{i:03d}" for i in range(symbols)]}
    config = parse_config({"markets": {"bench": market}})
    return BarsPartitioning("bench", Timeframe(timeframe), config.markets["bench"])


def _fill(con: duckdb.DuckDBPyConnection, p: BarsPartitioning) -> int:
    grid = calendar_grid(p)
    rng = np.random.default_rng(7)
    rows = 0
    for symbol in p.symbols:
        n = grid.height
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = np.concatenate([[100.0], close[:-1]]) * (1 + rng.normal(0, 0.002, n))
        frame = grid.select("ts").with_columns(
            pl.lit(symbol).alias("symbol"), pl.Series("open", open_), pl.Series("close", close),
            pl.Series("high", np.maximum(open_, close) * 1.01), pl.Series("low", np.minimum(open_, close) * 0.99),
            pl.Series("volume", rng.integers(1_000, 1_000_000, n).astype(float)),
        )
        con.register("staged", frame.to_arrow())
        con.execute(INSERT, {"timeframe": p.timeframe.value})
        con.unregister("staged")
        rows += n
    return rows


def _bench(label: str, p: BarsPartitioning, folder: Path) -> float:
    path = folder / f"{p.timeframe.value}.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        ensure_schema(con)
        started = time.perf_counter()
        rows = _fill(con, p)
        print(f"{label}: {rows:,} bars written in {time.perf_counter() - started:.1f} s")
    keys = p.all_partition_keys()
    rounds: list[dict[str, CheckReport]] = []
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        checks = {
            "ohlcv_schema": lambda: check_schema(con, p),
            "no_duplicates": lambda: check_duplicates(con, p),
            "calendar_complete": lambda: check_calendar(con, p, keys),
            "price_anomalies": lambda: check_anomalies(con, p),
        }
        for _ in range(3):
            with shared_reads():  # as in the check step: one connection, reads of the same scope shared
                rounds.append({name: run() for name, run in checks.items()})
    for name in checks:  # a check's time includes the shared reads it was the first to make
        report = min((r[name] for r in rounds), key=lambda r: r.seconds)
        assert report.rows_checked == rows, (name, report.rows_checked)
        row(f"{label} {name} ({report.failures} failures)", report.seconds, "s", f"{rows / report.seconds:,.0f} rows/s")
    total = min(sum(r.seconds for r in reports.values()) for reports in rounds)
    row(f"{label} all checks (best of 3 step rounds)", total, "s", f"{rows / total:,.0f} rows/s")
    return total


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        daily = _bench("daily 500 × 10 y", _partitioning("1d", 500, "2014-01-02", "2023-12-29"), Path(folder))
        _bench("5m 50 × 2 y", _partitioning("5m", 50, "2022-03-01", "2024-02-29"), Path(folder))
    print(f"daily check set: {daily:.2f} s (target < 2 s): {'OK' if daily < 2 else 'MISSED'}")


if __name__ == "__main__":
    main()
