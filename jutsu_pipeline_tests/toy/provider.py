"""A toy provider: a deterministic daily random walk per symbol, every day (a 24/7 market)."""

from __future__ import annotations

import datetime as dt
import zlib

import numpy as np
import polars as pl
from pydantic import Field

from jutsu_pipeline.providers.base import FetchRequest, FetchStats, ProviderCapabilities, SymbolHistory, to_canonical
from jutsu_pipeline.providers.registry import BuildContext, ProviderOptions, ProviderSpec, register
from jutsu_pipeline.timeframes import Timeframe


class WalkOptions(ProviderOptions):
    start_price: float = Field(default=100.0, gt=0)  # `options: {start_price: 50}` in jutsu.yaml
    daily_move: float = Field(default=0.01, gt=0, lt=0.2)


class WalkProvider:
    """Implements the BarsProvider protocol: name, capabilities, stats, fetch, history, close."""

    name = "toy_walk"

    def __init__(self, options: WalkOptions) -> None:
        self.options = options
        self.capabilities = ProviderCapabilities(timeframes=frozenset({Timeframe.D1}), static_history=True)
        self.stats = FetchStats()
        self.epoch = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)

    def fetch(self, request: FetchRequest) -> pl.DataFrame:
        self.stats.requests += 1
        ts = pl.datetime_range(self.epoch, max(request.end, self.epoch), "1d", closed="left", eager=True)
        rng = np.random.default_rng(zlib.crc32(request.symbol.encode()))  # the same walk on every call
        close = self.options.start_price * np.cumprod(1 + rng.uniform(-1, 1, len(ts)) * self.options.daily_move)
        frame = pl.DataFrame({
            "ts": ts, "open": close, "high": close * 1.001, "low": close * 0.999, "close": close, "volume": 1000.0,
        })
        frame = frame.filter(pl.col("ts") >= request.start)
        self.stats.bars += frame.height
        return to_canonical(frame)

    def history(self, symbol: str, timeframe: Timeframe) -> SymbolHistory:
        return SymbolHistory(first_ts=self.epoch)

    def close(self) -> None:
        pass


def build(options: WalkOptions, context: BuildContext) -> WalkProvider:
    return WalkProvider(options)


SPEC = register(ProviderSpec("toy_walk", WalkOptions, build, local=True, description="a deterministic random walk"))
