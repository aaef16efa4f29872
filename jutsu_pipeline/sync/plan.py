"""Turn a run's partition keys into the fewest provider calls: contiguous windows per symbol coalesce."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from jutsu_pipeline.partitions import BarsPartitioning, Window, contiguous_runs, split_partition_key


@dataclass(frozen=True)
class FetchPlan:
    """One provider call: a run of adjacent partition windows of one symbol."""

    symbol: str
    date_keys: tuple[str, ...]
    windows: tuple[Window, ...]

    @property
    def start(self) -> dt.datetime:
        return self.windows[0][0]

    @property
    def end(self) -> dt.datetime:
        return self.windows[-1][1]


def plan_fetches(
    partitioning: BarsPartitioning, partition_keys: Iterable[str]
) -> dict[str, list[FetchPlan]]:
    """Group keys by symbol (config order) and coalesce adjacent date keys into one plan each.
    (Dagster's MultiPartitionKey is a `str` of this `<date>|<SYMBOL>` form.)"""
    by_symbol: dict[str, list[str]] = {}
    for key in partition_keys:
        date_key, symbol = split_partition_key(key)
        if symbol not in partitioning.symbols:
            raise ValueError(f"{partitioning.market}: symbol {symbol} of partition {key} is not in the config")
        by_symbol.setdefault(symbol, []).append(date_key)
    ordered = partitioning.date_keys()
    plans: dict[str, list[FetchPlan]] = {}
    for symbol in (s for s in partitioning.symbols if s in by_symbol):
        plans[symbol] = [
            FetchPlan(symbol, tuple(run), tuple(partitioning.window(k) for k in run))
            for run in contiguous_runs(by_symbol[symbol], ordered)
        ]
    return plans


def windows_frame(plans: Iterable[FetchPlan]) -> pl.DataFrame:
    """symbol, date_key, start, end of every window in `plans` (what validation places bars into)."""
    return window_rows_frame((p.symbol, key, start, end) for p in plans for key, (start, end) in zip(p.date_keys, p.windows))


def window_rows_frame(rows: Iterable[tuple[str, str, dt.datetime, dt.datetime]]) -> pl.DataFrame:
    """The (symbol, date_key, start, end) rows as the windows frame that storage's window queries join."""
    return pl.DataFrame(list(rows), orient="row", schema={
        "symbol": pl.String, "date_key": pl.String, "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC")})
