"""Which windows of a new partition grain are already completely stored and valid (`jutsu adopt`): their
stored bars pass a sync's validation and hold every bar the calendar expects inside the symbol's stored
life; a window wholly before or after that life is valid-empty, as a sync would have recorded it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.quality.grid import calendar_grid
from jutsu_pipeline.quality.schema import validate_bars
from jutsu_pipeline.storage.bars import read_symbol_bars
from jutsu_pipeline.sync.plan import FetchPlan, windows_frame


@dataclass(frozen=True)
class WindowVerdict:
    """Whether one window can be adopted, its stored bar count, and why (not)."""

    date_key: str
    adoptable: bool
    bars: int
    reason: str


def judge_windows(con: duckdb.DuckDBPyConnection, partitioning: BarsPartitioning, symbol: str,
                  date_keys: list[str], now: dt.datetime, grid: pl.DataFrame | None = None) -> list[WindowVerdict]:
    """A verdict for each of `symbol`'s windows `date_keys` (only finished windows can be adopted)."""
    p = partitioning
    stored = read_symbol_bars(con, timeframe=p.timeframe.value, symbol=symbol)
    if stored.is_empty():
        return [WindowVerdict(k, False, 0, "no stored bars of the symbol") for k in date_keys]
    first, last = stored["ts"][0], stored["ts"][-1]  # oldest first
    finished = [k for k in date_keys if p.window(k)[1] <= now]
    verdicts = [WindowVerdict(k, False, 0, "window not over yet") for k in date_keys if k not in finished]
    if not finished:
        return verdicts
    failures = _validate(p, symbol, stored, finished)
    if None in failures:  # a column-level failure: nothing of the symbol is adoptable
        return sorted(verdicts + [WindowVerdict(k, False, 0, f"stored bars fail validation: {failures[None]}")
                                  for k in finished], key=lambda v: v.date_key)
    grid = calendar_grid(p) if grid is None else grid
    for key, (start, end) in zip(finished, (p.window(k) for k in finished), strict=True):
        in_window = stored.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
        if key in failures:
            verdicts.append(WindowVerdict(key, False, in_window.height, f"stored bars fail validation: {failures[key]}"))
            continue
        if in_window.is_empty() and (end <= first or start > last):
            verdicts.append(WindowVerdict(key, True, 0, "valid-empty: outside the symbol's stored life"))
            continue
        expected = grid.filter((pl.col("ts") >= max(start, first)) & (pl.col("ts") < end) & (pl.col("ts") <= last))
        missing = expected.join(in_window.select("ts"), on="ts", how="anti").height
        if missing:
            verdicts.append(WindowVerdict(key, False, in_window.height,
                                          f"{missing} expected bar(s) missing inside the symbol's stored life"))
        else:
            verdicts.append(WindowVerdict(key, True, in_window.height, "completely stored and valid"))
    return sorted(verdicts, key=lambda v: v.date_key)


def _validate(p: BarsPartitioning, symbol: str, stored: pl.DataFrame, keys: list[str]) -> dict[str | None, str]:
    """date_key (None: the whole symbol) -> why the stored bars fail the sync's validation there: all windows
    at once (the common, valid case), then window by window to place each failure."""
    def run(keys: list[str], frame: pl.DataFrame):  # noqa: ANN202 - ValidationReport
        spans = [p.window(k) for k in keys]
        windows = windows_frame([FetchPlan(symbol, (k,), (span,)) for k, span in zip(keys, spans)])
        sessions = None if p.calendar.always_open else p.calendar.sessions(
            min(start for start, _ in spans).date() - dt.timedelta(days=1), max(end for _, end in spans).date())
        return validate_bars(frame.with_columns(pl.lit(symbol).alias("symbol")), windows=windows, sessions=sessions,
                             daily=not p.timeframe.is_intraday, quality=p.config.quality, step=p.timeframe.duration)

    if run(keys, stored).ok:
        return {}
    failures: dict[str | None, str] = {}
    for key in keys:
        start, end = p.window(key)
        report = run([key], stored.filter((pl.col("ts") >= start) & (pl.col("ts") < end)))
        for (_, where), fails in report.failures.items():
            failures[key if where is not None else None] = "; ".join(f.describe() for f in fails)
    return failures
