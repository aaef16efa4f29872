"""The one interface every bars provider implements, and the canonical frame it returns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import polars as pl

from jutsu_pipeline.timeframes import Timeframe

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

# The canonical frame: one row per bar, sorted by ts, ts = bar start in UTC
# (daily bars: the session date at 00:00 UTC); adj_close is NULL when the provider has none.
CANONICAL_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),
    **dict.fromkeys(("open", "high", "low", "close", "volume", "adj_close"), pl.Float64()),
}


@dataclass(frozen=True)
class FetchRequest:
    """Bars of one symbol and timeframe with start <= ts < end (UTC, tz-aware)."""

    symbol: str
    timeframe: Timeframe
    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("FetchRequest bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"empty FetchRequest window {self.start} .. {self.end}")


@dataclass(frozen=True)
class ProviderCapabilities:
    """What a provider can do; the sync engine plans requests with it."""

    timeframes: frozenset[Timeframe]
    delay: dt.timedelta = dt.timedelta(0)  # how long after its end a bar becomes final
    has_adj_close: bool = False
    static_history: bool = False  # True for local files: no bars will ever appear beyond the last one


@dataclass(frozen=True)
class SymbolHistory:
    """The first and last bar a provider has for a symbol (None where unknown)."""

    first_ts: dt.datetime | None = None
    last_ts: dt.datetime | None = None


@dataclass
class FetchStats:
    """Counters a provider keeps for metadata and benchmarks."""

    requests: int = 0  # underlying requests (HTTP pages, file reads)
    bars: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class ProviderError(RuntimeError):
    """A provider could not deliver a window. The message names provider, symbol, window and what to do."""


class UnknownSymbolError(ProviderError):
    """The provider does not know the symbol."""


@runtime_checkable
class BarsProvider(Protocol):
    """Fetches bars of one symbol/timeframe for a time window, paginating itself."""

    name: str
    capabilities: ProviderCapabilities
    stats: FetchStats

    def fetch(self, request: FetchRequest) -> pl.DataFrame:
        """Final bars in [request.start, request.end) as a canonical frame (any order; the engine sorts)."""
        ...

    def history(self, symbol: str, timeframe: Timeframe) -> SymbolHistory:
        """The symbol's first/last available bar, so windows outside its life are valid-empty."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


@runtime_checkable
class PrefetchingProvider(Protocol):
    """A provider that can start reading a run's symbols before their fetches (local files, on threads)."""

    def prefetch(self, symbols: Iterable[str], timeframe: Timeframe) -> None: ...


def epoch_us(moment: dt.datetime) -> int:
    """A tz-aware moment as the canonical ts's integer (microseconds since the Unix epoch)."""
    return (moment - EPOCH) // dt.timedelta(microseconds=1)


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=CANONICAL_SCHEMA)


def to_canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast to the canonical columns and dtypes (UTC ts, float64 values), sorted by ts."""
    if list(frame.schema.items()) == list(CANONICAL_SCHEMA.items()) and not frame["ts"].null_count() \
            and frame["ts"].is_sorted():
        return frame  # already canonical (e.g. a window of a local file): 500 symbols re-cast it for nothing
    if "adj_close" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("adj_close"))
    ts_dtype = frame.schema["ts"]
    ts = pl.col("ts")
    if isinstance(ts_dtype, pl.Datetime) and ts_dtype.time_zone is not None:
        ts = ts.dt.convert_time_zone("UTC")
    columns = [ts.dt.cast_time_unit("us").alias("ts")] + [
        pl.col(name).cast(pl.Float64) for name in ("open", "high", "low", "close", "volume", "adj_close")
    ]
    return frame.select(columns).sort("ts")


@runtime_checkable
class ActionsProvider(Protocol):
    """A provider that also publishes corporate actions (splits, dividends) of a symbol."""

    actions_source: str  # the `source` its actions are stored under

    def corporate_actions(self, symbol: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Every action with start <= ex_date <= end, as an `actions.model.ACTION_SCHEMA` frame."""
        ...
