"""Shared reading of local per-symbol bar files (CSV or Parquet) into the canonical frame."""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from jutsu_pipeline.providers.base import (
    FetchRequest,
    FetchStats,
    ProviderCapabilities,
    ProviderError,
    SymbolHistory,
    UnknownSymbolError,
    epoch_us,
)
from jutsu_pipeline.timeframes import Timeframe

_ALIASES = {
    **{name: name for name in ("date", "ts", "open", "high", "low", "close", "volume", "adj_close")},
    **dict.fromkeys(("timestamp", "datetime", "time"), "ts"),
    **dict.fromkeys(("adj close", "adjclose", "adjusted_close"), "adj_close"),
}
_REQUIRED = ("open", "high", "low", "close", "volume")
# Files read at once by `prefetch`: polars' readers release the GIL, so a run's reads use every core while
# the engine validates (each read of a 20-year daily CSV is mostly single-threaded inside polars).
READERS = max(2, min(4, os.cpu_count() or 1))


def symbol_file_stem(symbol: str) -> str:
    """File name stem for a symbol: '/' cannot appear in file names, so it becomes '_'."""
    return symbol.replace("/", "_")


class LocalFilesProvider:
    """Bars from `<dir>/<SYMBOL>.parquet|.csv` (or `<dir>/<timeframe>/<SYMBOL>.*`), read once per symbol.

    Dates and naive timestamps are read in `timezone` (the market's); daily bars are keyed by date.
    Like the HTTP providers, only final bars are served: a bar whose end (start + timeframe; daily: the next
    local midnight) is after `clock()` is still forming and is left out (e.g. today's daily bar).
    """

    name = "files"

    def __init__(self, path: Path, timezone: str, timeframes: frozenset[Timeframe] | None = None, *,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.path = Path(path)
        self.timezone = timezone
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.capabilities = ProviderCapabilities(
            timeframes=timeframes or frozenset(Timeframe), static_history=True, has_adj_close=True
        )
        self.stats = FetchStats()
        self._cache: dict[tuple[str, Timeframe], pl.DataFrame] = {}
        self._epochs: dict[tuple[str, Timeframe], np.ndarray] = {}  # each cached frame's ts, epoch microseconds
        self._reading: dict[tuple[str, Timeframe], Future[pl.DataFrame]] = {}  # prefetched, not yet fetched
        self._pool: ThreadPoolExecutor | None = None

    def _find_file(self, symbol: str, timeframe: Timeframe) -> Path:
        stem = symbol_file_stem(symbol)
        for folder in (self.path / timeframe.value, self.path):
            for suffix in (".parquet", ".csv"):
                candidate = folder / f"{stem}{suffix}"
                if candidate.is_file():
                    return candidate
        raise UnknownSymbolError(
            f"{self.name}: no file for symbol {symbol} ({timeframe}) in {self.path}: expected "
            f"{stem}.parquet or {stem}.csv there or in {timeframe.value}/; add the file or remove the symbol"
        )

    def _read(self, path: Path) -> pl.DataFrame:
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        # Every column's type is given, so polars infers nothing: inferring over 10,000 rows cost 7x the
        # read itself (10 s against 1 s for 500 files of 20 years). Values are float64 (what to_canonical
        # casts to), the time column is parsed by `_timestamps`, other columns stay text (they are dropped).
        types: dict[str, pl.DataType] = {}
        for column in _csv_header(path):
            canonical = _ALIASES.get(column.strip().lower())
            types[column] = pl.Float64() if canonical and canonical not in ("date", "ts") else pl.String()
        try:
            return pl.read_csv(path, schema_overrides=types)
        except pl.exceptions.ComputeError as error:
            raise ProviderError(_bad_number(self.name, path, types) or f"{self.name}: cannot read {path}: {error}") from error

    def prefetch(self, symbols: Iterable[str], timeframe: Timeframe) -> None:
        """Start reading the files of `symbols` on `READERS` threads, in order; a fetch takes its symbol's
        frame when read (or waits for it) and a read's error is raised by that symbol's fetch."""
        for symbol in symbols:
            key = (symbol, timeframe)
            if key in self._cache or key in self._reading:
                continue
            try:
                path = self._find_file(symbol, timeframe)
            except UnknownSymbolError:
                continue  # raised again, in its place, by the symbol's fetch
            self._pool = self._pool or ThreadPoolExecutor(READERS, thread_name_prefix=f"{self.name}-reader")
            self.stats.requests += 1
            self._reading[key] = self._pool.submit(self._read_symbol, symbol, timeframe, path)

    def _load(self, symbol: str, timeframe: Timeframe) -> pl.DataFrame:
        key = (symbol, timeframe)
        if key not in self._cache:
            reading = self._reading.pop(key, None)
            if reading is None:
                path = self._find_file(symbol, timeframe)
                self.stats.requests += 1
                frame = self._read_symbol(symbol, timeframe, path)
            else:
                frame = reading.result()
            self._cache[key] = frame
            self._epochs[key] = frame["ts"].to_numpy().view(np.int64)  # sorted (by _normalise): binary search
        return self._cache[key]

    def _read_symbol(self, symbol: str, timeframe: Timeframe, path: Path) -> pl.DataFrame:
        try:
            frame = self._normalise(self._read(path), timeframe, path)
        except ProviderError:
            raise
        except Exception as error:  # noqa: BLE001 - re-raised with the file named
            raise ProviderError(f"{self.name}: cannot read {path} for {symbol}: {error}") from error
        if frame["ts"].null_count():  # rows without a date/time are never in a window
            frame = frame.filter(pl.col("ts").is_not_null())
        return frame

    def _normalise(self, raw: pl.DataFrame, timeframe: Timeframe, path: Path) -> pl.DataFrame:
        renames: dict[str, str] = {}
        for column in raw.columns:
            canonical = _ALIASES.get(column.strip().lower())
            if canonical and canonical not in renames.values():
                renames[column] = canonical
        frame = raw.rename(renames)
        missing = [c for c in _REQUIRED if c not in frame.columns]
        time_column = "ts" if "ts" in frame.columns else "date" if "date" in frame.columns else None
        if missing or time_column is None:
            need = missing + ([] if time_column else ["date or ts/timestamp"])
            raise ProviderError(f"{self.name}: {path} lacks column(s) {need}; found {raw.columns}")
        if frame.schema[time_column] == pl.Date and not timeframe.is_intraday:  # plain dates: the common daily file
            ts = frame[time_column].cast(pl.Datetime("us", "UTC"))  # the session date at 00:00 UTC
        else:
            ts = self._timestamps(frame[time_column], timeframe, path).dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        # The canonical columns (`to_canonical`) from Series casts: each polars query (select, sort, filter) costs
        # ~0.5 ms however small the file, and a close reads 500 files.
        adj = frame["adj_close"] if "adj_close" in frame.columns else pl.Series([None] * frame.height)
        bars = pl.DataFrame([ts.alias("ts"), *(frame[name].cast(pl.Float64) for name in _REQUIRED),
                             adj.cast(pl.Float64).alias("adj_close")])
        return bars if ts.is_sorted() else bars.sort("ts")

    def _timestamps(self, column: pl.Series, timeframe: Timeframe, path: Path) -> pl.Series:
        if column.dtype == pl.String:
            # A column of plain dates is a Date column. ISO dates first: 4x cheaper than letting polars infer the
            # format, and what it infers for them anyway.
            dates = column.str.to_date("%Y-%m-%d", strict=False)
            if dates.null_count() != column.null_count():
                dates = column.str.to_date(strict=False)
            if dates.null_count() == column.null_count():
                column = dates
        if column.dtype == pl.String:
            parsed = column.str.to_datetime(strict=False, time_zone=None)
            if parsed.null_count() > column.null_count():
                parsed = column.str.to_datetime(strict=False, time_zone="UTC")
            if parsed.null_count() > column.null_count():
                row = (parsed.is_null() & column.is_not_null()).arg_max() or 0
                raise ProviderError(
                    f"{self.name}: {path} line {row + 2}: time value {column[row]!r} is not a date or timestamp; "
                    "write it as 2024-01-02 or 2024-01-02 09:30 (ISO 8601), or remove that row")
            column = parsed
        if column.dtype == pl.Date:
            if timeframe.is_intraday:
                raise ProviderError(f"{self.name}: {path} has dates but timeframe {timeframe} needs timestamps")
            return column.cast(pl.Datetime("us", "UTC"))  # midnight UTC (replace_time_zone cost 60x as much)
        if not isinstance(column.dtype, pl.Datetime):
            raise ProviderError(f"{self.name}: {path} time column has type {column.dtype}, expected a date or timestamp")
        if column.dtype.time_zone is None:  # naive: the market's local time
            column = column.dt.replace_time_zone(self.timezone, ambiguous="earliest", non_existent="null")
        column = column.dt.convert_time_zone("UTC")
        if not timeframe.is_intraday:  # daily bars are keyed by the local session date
            local_date = column.dt.convert_time_zone(self.timezone).dt.date()
            column = local_date.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        return column

    def _final_before(self, timeframe: Timeframe) -> tuple[int, str]:
        """(bound, side): the rows whose bar has ended by `clock()` are those before `searchsorted(ts, bound,
        side)` in the sorted epoch microseconds: a bound computed once, not a per-row end in the market's
        timezone."""
        now = self.clock().astimezone(dt.timezone.utc)
        if timeframe.is_intraday:  # the bar [ts, ts + duration) has ended: ts <= now - duration
            return epoch_us(now - timeframe.duration), "right"
        # ts is the local session date at 00:00 UTC, its bar ends at the next local midnight: final once the
        # market's local date is later than the bar's date.
        today = now.astimezone(ZoneInfo(self.timezone)).date()
        return epoch_us(dt.datetime.combine(today, dt.time(), dt.timezone.utc)), "left"

    def _rows(self, symbol: str, timeframe: Timeframe, start: dt.datetime | None = None,
              end: dt.datetime | None = None) -> pl.DataFrame:
        """The file's final rows with start <= ts < end, a slice of the sorted cached frame found by binary
        search (polars filters with timezone-aware datetime literals cost ~1 ms each: 500 per close)."""
        frame = self._load(symbol, timeframe)
        ts = self._epochs[(symbol, timeframe)]
        bound, side = self._final_before(timeframe)
        lo = int(np.searchsorted(ts, epoch_us(start), "left")) if start is not None else 0
        hi = int(np.searchsorted(ts, bound, side))  # type: ignore[call-overload]
        if end is not None:
            hi = min(hi, int(np.searchsorted(ts, epoch_us(end), "left")))
        return frame.slice(lo, max(0, hi - lo))

    def fetch(self, request: FetchRequest) -> pl.DataFrame:
        window = self._rows(request.symbol, request.timeframe, request.start, request.end)
        self.stats.bars += window.height
        return window

    def history(self, symbol: str, timeframe: Timeframe) -> SymbolHistory:
        frame = self._rows(symbol, timeframe)
        if frame.is_empty():
            return SymbolHistory()
        return SymbolHistory(first_ts=frame["ts"][0], last_ts=frame["ts"][-1])  # sorted by `_normalise`

    actions_source = "files"

    def corporate_actions(self, symbol: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Actions from `<dir>/<SYMBOL>.actions.csv` (absent file: none)."""
        from jutsu_pipeline.actions.files import ActionsFileError, read_actions_file

        path = self.path / f"{symbol_file_stem(symbol)}.actions.csv"
        self.stats.requests += path.is_file()
        try:
            frame = read_actions_file(path, symbol)
        except ActionsFileError as error:
            raise ProviderError(f"{self.name}: {error}; fix the file and re-materialise corporate_actions") from None
        return frame.filter((pl.col("ex_date") >= start) & (pl.col("ex_date") <= end))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        self._reading.clear()
        self._cache.clear()
        self._epochs.clear()


def _csv_header(path: Path) -> list[str]:
    """The column names of a CSV file from its first line (a polars read of zero rows cost ~1.5 ms a file)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle), [])


def _bad_number(name: str, path: Path, types: dict[str, pl.DataType]) -> str | None:
    """Name the first CSV cell of a price/volume column that is not a number: its line, column and value
    (polars' own error gives a byte offset and advice about its reader's arguments)."""
    text = pl.read_csv(path, infer_schema=False)
    for column, kind in types.items():
        if kind != pl.Float64() or column not in text.columns:
            continue
        values = text[column]
        bad = values.str.strip_chars().cast(pl.Float64, strict=False).is_null() & values.is_not_null()
        if bad.any():
            row = bad.arg_max() or 0
            return (f"{name}: {path} line {row + 2}: column {column!r} has {values[row]!r}, which is not a number; "
                    "fix or remove that row (an empty cell is read as missing and rejected by validation)")
    return None

