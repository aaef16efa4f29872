"""A separate process fetching `pages` Binance pages from a fake exchange (for the shared-budget tests).

Usage: python -m jutsu_pipeline_tests.budget_worker <base_url> <pages> <requests_per_second>
The budget file comes from $JUTSU_RATE_BUDGET, as in any jutsu process.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from jutsu_fake_exchange.testing import FAST_HTTP
from jutsu_pipeline.providers import build_provider
from jutsu_pipeline.providers.base import FetchRequest
from jutsu_pipeline.timeframes import Timeframe

DAY = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def main(base_url: str, pages: int, rate: float) -> None:
    http = {**FAST_HTTP, "requests_per_second": rate, "burst": 1.0, "retry_after_max": 30.0, "max_attempts": 8}
    provider = build_provider("binance", {"base_url": base_url, "http": http, "page_limit": 10}, "UTC", Path)
    try:
        frame = provider.fetch(FetchRequest("BTCUSDT", Timeframe.M1, DAY, DAY + dt.timedelta(minutes=10 * pages)))
    finally:
        provider.close()
    print(frame.height, provider.stats.requests)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
