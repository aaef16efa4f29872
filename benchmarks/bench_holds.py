"""Cost of the persisted provider-hold check (one SQLite lookup before every HTTP request).

    .venv/bin/python benchmarks/bench_holds.py

Fetches the same 20,000 one-minute Binance bars (20 pages of 1,000) from the local fake exchange
(no added latency, so the check's share is as large as it can be) with holds persisted beside an
instance (`instance_state(dir)`: what every Dagster run does) and, as the baseline in the same run,
with the in-memory store of plain library use. Prints the median of 5 rounds each and the ratio.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jutsu_fake_exchange import FakeExchange  # noqa: E402
from jutsu_fake_exchange.testing import provider_options  # noqa: E402
from jutsu_pipeline.providers import build_provider  # noqa: E402
from jutsu_pipeline.providers.base import FetchRequest  # noqa: E402
from jutsu_pipeline.providers.http.hold import instance_state  # noqa: E402
from jutsu_pipeline.timeframes import Timeframe  # noqa: E402

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
REQUEST = FetchRequest("BTCUSDT", Timeframe.M1, T0, T0 + dt.timedelta(minutes=20_000))


def fetch_seconds(fx: FakeExchange, state_dir: str | None) -> float:
    with instance_state(state_dir):
        provider = build_provider("binance", provider_options(fx, "binance", page_limit=1000), "UTC", Path)
    began = time.perf_counter()
    frame = provider.fetch(REQUEST)
    elapsed = time.perf_counter() - began
    provider.close()
    assert frame.height == 20_000
    return elapsed


def main() -> None:
    with FakeExchange() as fx, tempfile.TemporaryDirectory() as home:
        fetch_seconds(fx, None)  # warm up imports and the exchange's bar cache
        memory, persisted = [], []
        for _ in range(5):  # interleaved, so machine load hits both alike
            memory.append(fetch_seconds(fx, None))
            persisted.append(fetch_seconds(fx, home))
    base, hold = statistics.median(memory), statistics.median(persisted)
    print(f"holds: 20 pages, in-memory store (baseline) {base * 1000:.0f} ms, persisted store {hold * 1000:.0f} ms, "
          f"ratio {hold / base:.2f}x ({(hold - base) / 20 * 1000:.2f} ms per request)")


if __name__ == "__main__":
    main()
