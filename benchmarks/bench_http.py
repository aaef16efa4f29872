"""HTTP provider benchmarks against the local fake exchange (50 ms latency per request).

    /tmp/venv/bin/python benchmarks/bench_http.py

(a) requests issued / minimum (ceil(bars / page size) per contiguous range)
(b) provider wall time / a raw httpx loop fetching the same pages
(c) exchange limit 10 req/s, two concurrent clients: achieved rate / limit, and 429s
(d) 20% injected transient faults: fetched frames identical to a fault-free run
"""

from __future__ import annotations

import datetime as dt
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import httpx
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jutsu_fake_exchange import TRANSIENT_MIX, FakeExchange  # noqa: E402
from jutsu_fake_exchange.testing import credential_env, seed_schwab_tokens  # noqa: E402
from jutsu_pipeline.providers import build_provider  # noqa: E402
from jutsu_pipeline.providers.base import FetchRequest  # noqa: E402
from jutsu_pipeline.timeframes import Timeframe  # noqa: E402

UTC = dt.timezone.utc
LATENCY = 0.05
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)


def minutes(symbol: str, offset: int, count: int) -> FetchRequest:
    start = T0 + dt.timedelta(minutes=offset)
    return FetchRequest(symbol, Timeframe.M1, start, start + dt.timedelta(minutes=count))


def options(fx: FakeExchange, provider: str, **extra: object) -> dict:
    urls = fx.base_urls()
    out: dict = {"base_url": urls[provider], **extra}
    if provider == "yahoo":
        out["cookie_url"] = urls["yahoo_cookie_url"]
    return out


def bench_requests_and_wall(fx: FakeExchange, rounds: int = 3) -> dict[str, float]:
    """(a) and (b) on a Binance 1m backfill of three contiguous missing ranges (30,000 + 2,500 + 999 bars).

    Wall times are medians of `rounds` interleaved runs (provider, raw loop) after a warm-up run.
    """
    ranges = [minutes("BTCUSDT", 0, 30_000), minutes("BTCUSDT", 60_000, 2_500), minutes("BTCUSDT", 70_000, 999)]

    def run_provider() -> tuple[float, int]:
        provider = build_provider("binance", options(fx, "binance"), "UTC", Path)
        began = time.perf_counter()
        count = sum(provider.fetch(r).height for r in ranges)
        wall = time.perf_counter() - began
        provider.close()
        return wall, count

    fx.log.clear()
    _, bars = run_provider()  # warm-up; its request log is the page list
    minimum = sum(math.ceil((r.end - r.start) / r.timeframe.duration / 1000) for r in ranges)
    pages = [dict(r.params) for r in fx.requests("binance")]

    def run_raw() -> float:
        with httpx.Client(base_url=fx.url, timeout=10) as client:  # the same pages, nothing but GET + JSON
            began = time.perf_counter()
            for params in pages:
                client.get("/api/v3/klines", params=params).json()
            return time.perf_counter() - began

    ours, raw = [], []
    for _ in range(rounds):
        ours.append(run_provider()[0])
        raw.append(run_raw())
    ours_s, raw_s = statistics.median(ours), statistics.median(raw)
    alpaca = build_provider("alpaca", options(fx, "alpaca"), "America/New_York", Path)
    fx.log.clear()
    equity = alpaca.fetch(FetchRequest("AAPL", Timeframe.M1, T0, T0 + dt.timedelta(days=120)))
    alpaca_min = math.ceil(equity.height / 10_000)
    alpaca.close()
    return {"bars": bars, "requests": len(pages), "minimum": minimum, "a_ratio": len(pages) / minimum,
            "ours_s": ours_s, "raw_s": raw_s, "b_ratio": ours_s / raw_s, "alpaca_bars": equity.height,
            "alpaca_requests": fx.count("alpaca"), "alpaca_minimum": alpaca_min,
            "alpaca_a_ratio": fx.count("alpaca") / alpaca_min}


def bench_shared_limit(fx: FakeExchange, limit: float = 10.0, pages_per_client: int = 40) -> dict[str, float]:
    """(c) two concurrent clients against an exchange allowing `limit` requests/s."""
    fx.log.clear()
    fx.set_rate_limit(limit)
    time.sleep(1.1)  # let the exchange's bucket fill
    http = {"requests_per_second": limit, "burst": 1.0}
    errors: list[BaseException] = []

    def client(symbol: str) -> None:
        provider = build_provider("binance", options(fx, "binance", page_limit=10, http=http), "UTC", Path)
        try:
            provider.fetch(minutes(symbol, 0, 10 * pages_per_client))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            provider.close()

    threads = [threading.Thread(target=client, args=(s,)) for s in ("BTCUSDT", "ETHUSDT")]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    fx.set_rate_limit(None)
    logged = fx.requests("binance")
    ok = [r for r in logged if r.status == 200]
    span = ok[-1].at - ok[0].at
    rate = (len(ok) - 1) / span
    return {"requests": len(logged), "ok": len(ok), "429s": sum(r.status == 429 for r in logged),
            "rate": rate, "c_ratio": rate / limit, "wall_s": wall, "errors": len(errors)}


def _fetch_all(fx: FakeExchange) -> dict[str, pl.DataFrame]:
    jobs = {
        "binance": ("UTC", [minutes("BTCUSDT", 0, 15_000), minutes("ETHUSDT", 0, 5_000)]),
        "alpaca": ("America/New_York", [FetchRequest("AAPL", Timeframe.M1, T0, T0 + dt.timedelta(days=60))]),
        "schwab": ("America/New_York", [FetchRequest("MSFT", Timeframe.M1, T0, T0 + dt.timedelta(days=150)),
                                        FetchRequest("MSFT", Timeframe.D1, T0, T0 + dt.timedelta(days=365))]),
        "yahoo": ("America/New_York", [FetchRequest("SPY", Timeframe.M1, T0, T0 + dt.timedelta(days=30)),
                                       FetchRequest("SPY", Timeframe.D1, T0, T0 + dt.timedelta(days=365))]),
    }
    frames: dict[str, pl.DataFrame] = {}
    for name, (tz, requests) in jobs.items():
        # the providers' real-world rate defaults and backoff are slower; faults, not waits, are under test
        fast = {"requests_per_second": 50.0, "burst": 5.0, "backoff_initial": 0.1, "backoff_max": 1.0}
        pages = {"binance": {"page_limit": 200}, "alpaca": {"page_limit": 2000}}.get(name, {})
        opts = options(fx, name, http=fast, **pages)
        provider = build_provider(name, opts, tz, Path)
        for request in requests:
            key = f"{name}:{request.symbol}:{request.timeframe.value}"
            frames[key] = provider.fetch(request).with_columns(pl.lit(key).alias("series"))
        provider.close()
    return frames


def bench_faults(fx: FakeExchange, rate: float = 0.2) -> dict[str, float]:
    """(d) the same fetches with and without `rate` transient faults, compared as DuckDB tables."""
    fx.log.clear()
    clean = _fetch_all(fx)
    fx.log.clear()
    fx.faults.random("*", rate, TRANSIENT_MIX, seed=2024)
    began = time.perf_counter()
    faulty = _fetch_all(fx)
    wall = time.perf_counter() - began
    fx.faults.clear()
    logged = fx.requests()
    con = duckdb.connect()
    con.register("clean_frame", pl.concat(list(clean.values())).to_arrow())
    con.register("faulty_frame", pl.concat(list(faulty.values())).to_arrow())
    differing = con.execute("SELECT count(*) FROM ((SELECT * FROM clean_frame EXCEPT ALL SELECT * FROM faulty_frame) "
                            "UNION ALL (SELECT * FROM faulty_frame EXCEPT ALL SELECT * FROM clean_frame))").fetchone()[0]
    rows = con.execute("SELECT count(*) FROM clean_frame").fetchone()[0]
    return {"rows": rows, "differing_rows": differing, "identical": differing == 0 and all(
        clean[k].equals(faulty[k]) for k in clean), "requests": len(logged),
        "faulted": sum(bool(r.faults) for r in logged), "wall_s": wall}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, FakeExchange(latency=LATENCY) as fx:
        os.environ.update(credential_env(fx, Path(tmp) / "schwab-tokens.json"))
        seed_schwab_tokens(fx, Path(tmp) / "schwab-tokens.json")
        print(f"fake exchange {fx.url}, latency {LATENCY * 1000:.0f} ms per request, CPUs {os.cpu_count()}")
        a = bench_requests_and_wall(fx)
        print(f"(a) binance: {a['bars']} bars in 3 ranges -> {a['requests']} requests, minimum {a['minimum']}: "
              f"ratio {a['a_ratio']:.3f}")
        print(f"    alpaca:  {a['alpaca_bars']} bars -> {a['alpaca_requests']} requests, minimum "
              f"{a['alpaca_minimum']}: ratio {a['alpaca_a_ratio']:.3f}")
        print(f"(b) provider {a['ours_s']:.2f} s vs raw httpx loop {a['raw_s']:.2f} s (medians): ratio {a['b_ratio']:.3f}")
        c = bench_shared_limit(fx)
        print(f"(c) limit 10 req/s, 2 concurrent clients: {c['ok']} ok / {c['requests']} requests in "
              f"{c['wall_s']:.2f} s, achieved {c['rate']:.2f} req/s = {c['c_ratio']:.3f} of the limit, "
              f"429s: {c['429s']}, client errors: {c['errors']}")
        d = bench_faults(fx)
        print(f"(d) 20% faults: {d['faulted']} of {d['requests']} requests faulted, {d['rows']} rows, "
              f"differing rows {d['differing_rows']}, identical: {d['identical']} (faulty run {d['wall_s']:.2f} s)")
        ok = a["a_ratio"] <= 1.05 and a["b_ratio"] <= 1.10 and c["c_ratio"] >= 0.95 and c["429s"] == 0 \
            and d["identical"]
        print("targets met" if ok else "TARGETS MISSED")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
