"""Sync a run's partitions: fetch per symbol, validate in batches, and replace every validated window of the
run in one transaction (each batch inserted once validated, committed after the last)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from itertools import groupby

import duckdb
import numpy as np
import polars as pl

from jutsu_pipeline import faultpoints
from jutsu_pipeline.actions.infer import record_inferred_actions
from jutsu_pipeline.partitions import BarsPartitioning, Window, partition_key
from jutsu_pipeline.providers.base import (
    BarsProvider,
    FetchRequest,
    PrefetchingProvider,
    ProviderError,
    SymbolHistory,
    empty_frame,
    epoch_us,
    to_canonical,
)
from jutsu_pipeline.quality.rules import WINDOW_COLUMN
from jutsu_pipeline.quality.schema import RuleFailure, validate_bars
from jutsu_pipeline.storage.bars import WindowReplacement, WindowsWriter, last_final_bars, window_stats
from jutsu_pipeline.sync.plan import FetchPlan, plan_fetches, window_rows_frame, windows_frame

UTC = dt.timezone.utc
Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]
FLUSH_ROWS = 250_000  # validate in batches of about this many bars
# Bars of the run's one write (transaction); only a run writing more commits every WRITE_ROWS (each commit
# still whole windows). Ten 250,000-bar transactions cost ~2x one, measured while `bars` had its primary key:
# every commit maintained and persisted its index again (2026-12-02, 500 x 20 y daily).
WRITE_ROWS = 10_000_000
# Progress lines per run: each Dagster log line is an event-log row written on its own (no batching), so
# a run logs at most PROGRESS_LINES of them, and none sooner than PROGRESS_SECONDS after the previous one
# (a daily close fetches 500 symbols in about a second: one line, not twenty); the last symbol always logs.
PROGRESS_LINES = 20
PROGRESS_SECONDS = 2.0
PROGRESS_EXTRA = "jutsu_progress"  # structured progress in a log record's `extra` (jutsu_pipeline.console reads it)


@dataclass
class SyncOutcome:
    """What a run did, per partition key."""

    written: dict[str, int] = field(default_factory=dict)  # key -> bars stored by this run
    # key -> the partition's bars after the run, first and last bar start (a tail refresh writes only the tail)
    stored: dict[str, tuple[int, dt.datetime, dt.datetime]] = field(default_factory=dict)
    empty: dict[str, str] = field(default_factory=dict)  # key -> why it is valid with no bars
    failed: dict[str, str] = field(default_factory=dict)  # key -> what went wrong
    bars_fetched: int = 0
    provider_calls: int = 0
    symbols_done: list[str] = field(default_factory=list)

    @property
    def succeeded_keys(self) -> list[str]:
        return [*self.written, *self.empty]

    @property
    def bars_written(self) -> int:
        return sum(self.written.values())


@dataclass
class _SymbolFetch:
    symbol: str
    plans: list[FetchPlan]
    frame: pl.DataFrame  # canonical bars, without the symbol
    history: SymbolHistory | None


WindowStats = tuple[int, dt.datetime, dt.datetime]  # bars, first and last bar start


class BarsSync:
    """One run's sync of `partitioning`'s partitions from `provider` into DuckDB."""

    def __init__(
        self,
        partitioning: BarsPartitioning,
        provider: BarsProvider,
        connect: Connect,
        log: logging.Logger | logging.LoggerAdapter,
        now: dt.datetime | None = None,
        tail: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.p = partitioning
        self.tail = tail
        self.provider = provider
        self.connect = connect
        self.log = log
        self.now = now or dt.datetime.now(UTC)
        self.outcome = SyncOutcome()
        self._pending: list[WindowReplacement] = []  # validated, not yet handed to the write
        self._writing: list[str] = []  # symbols handed to the open write
        self._writes = ExitStack()  # the open write's connection and WindowsWriter
        self._writer: WindowsWriter | None = None
        self._pending_windows: list[tuple[str, str, dt.datetime, dt.datetime]] = []  # their windows with bars
        self._pending_rows = 0
        self._sessions: pl.Series | None = None  # the calendar's sessions over the run's windows (None: 24/7)
        self.clock = clock  # seconds, for the spacing of progress lines
        self._progress_at = clock()
        self._where = f"{partitioning.market}/bars_{partitioning.timeframe}"

    def run(self, partition_keys: Iterable[str]) -> SyncOutcome:
        plans = plan_fetches(self.p, partition_keys)
        if self.tail:
            plans = self._tail_plans(plans)
        total = len(plans)
        windows = sum(len(plan.date_keys) for symbol_plans in plans.values() for plan in symbol_plans)
        self.log.info(f"{self._where}: {windows} partition(s) of {total} symbol(s) to sync",
                      extra={PROGRESS_EXTRA: {"phase": "plan", "symbols": total, "windows": windows}})
        every = [plan for symbol_plans in plans.values() for plan in symbol_plans]
        if every and not self.p.calendar.always_open:  # once per run (with the day before the first window)
            first, last = min(plan.start for plan in every).date(), max(plan.end for plan in every).date()
            self._sessions = pl.Series(self.p.calendar.sessions(first - dt.timedelta(days=1), last), dtype=pl.Date)
        # Local files are read on other cores while this thread validates, and each validated batch goes into
        # the run's open transaction at once (the insert overlaps the next reads; the commit follows the last).
        # Other providers write after their last fetch: the DuckDB file stays unlocked while they wait on a network.
        if stream := isinstance(self.provider, PrefetchingProvider):
            self.provider.prefetch(plans, self.p.timeframe)
        batch: list[_SymbolFetch] = []
        buffered = 0
        with self._writes:  # leaving it on an error rolls the open write back
            for number, (symbol, symbol_plans) in enumerate(plans.items(), start=1):
                fetched = self._fetch_symbol(symbol, symbol_plans, number, total)
                if fetched is None:
                    continue
                batch.append(fetched)
                buffered += fetched.frame.height
                if buffered >= FLUSH_ROWS:
                    self._validate(batch)
                    batch, buffered = [], 0
                    if stream:
                        self._feed()
                    if self._pending_rows >= WRITE_ROWS:
                        self._write()
            if batch:
                self._validate(batch)
            self._write()
        return self.outcome

    # -- tail refresh --------------------------------------------------------------------------

    def _tail_plans(self, plans: dict[str, list[FetchPlan]]) -> dict[str, list[FetchPlan]]:
        """Windows that already hold final bars are fetched (and replaced) only from the last final bar,
        less `tail_overlap_bars` bars to pick up provider revisions; the others stay whole."""
        step = self.p.timeframe.duration
        overlap = step * self.p.config.tail_overlap_bars
        with self.connect() as con:
            last = last_final_bars(con, timeframe=self.p.timeframe.value, windows=windows_frame(
                plan for symbol_plans in plans.values() for plan in symbol_plans), final_before=self.now - step)
        tailed: dict[str, list[FetchPlan]] = {symbol: [] for symbol in plans}
        for symbol, symbol_plans in plans.items():
            for plan in symbol_plans:  # a run of windows without final bars stays one call
                keyed = [((symbol, date_key), date_key, window) for date_key, window in zip(plan.date_keys, plan.windows)]
                for whole, run in groupby(keyed, key=lambda row: row[0] not in last):
                    if whole:
                        tailed[symbol].append(_plan(symbol, [(date_key, window) for _, date_key, window in run]))
                    else:
                        tailed[symbol] += [_plan(symbol, [(date_key, (max(start, last[at] - overlap), end))])
                                           for at, date_key, (start, end) in run]
        self.log.info(f"{self._where}: tail refresh of {len(last)} stored window(s) (overlap {overlap}); "
                      "the rest replaced whole")
        return tailed

    # -- fetch ---------------------------------------------------------------------------------

    def _fetch_symbol(self, symbol: str, plans: list[FetchPlan], number: int, total: int) -> _SymbolFetch | None:
        frames: list[pl.DataFrame] = []
        windows = sum(len(plan.date_keys) for plan in plans)
        started = time.perf_counter()
        try:
            for plan in plans:
                end = min(plan.end, self.now)
                if end <= plan.start:
                    continue  # the whole run lies in the future: nothing can exist yet
                faultpoints.reach("fetching")
                frame = self.provider.fetch(FetchRequest(symbol, self.p.timeframe, plan.start, end))
                self.outcome.provider_calls += 1
                frames.append(to_canonical(frame))
            history = self._history_if_needed(symbol, plans, frames)
        except ProviderError as error:
            self._fail_symbol(symbol, plans, f"provider {self.provider.name} failed: {error}")
            return None
        frame = pl.concat(frames) if frames else empty_frame()
        self.outcome.bars_fetched += frame.height
        if number == total or (number % -(-total // PROGRESS_LINES) == 0
                               and self.clock() - self._progress_at >= PROGRESS_SECONDS):
            self._progress_at = self.clock()
            self.log.info(
                f"{self._where} {symbol} ({number}/{total} symbols): fetched {frame.height} bars for "
                f"{windows} window(s) in {len(frames)} provider call(s), {time.perf_counter() - started:.2f} s; "
                f"{self.outcome.bars_fetched} bars so far",
                extra={PROGRESS_EXTRA: {"phase": "fetched", "symbol": symbol, "symbols_done": number,
                                        "bars_so_far": self.outcome.bars_fetched}},
            )
        return _SymbolFetch(symbol, plans, frame, history)

    def _history_if_needed(self, symbol: str, plans: list[FetchPlan], frames: list[pl.DataFrame]) -> SymbolHistory | None:
        """Ask for the symbol's listing range only when some window came back empty."""
        fetched = pl.concat([f.select("ts") for f in frames]) if frames else empty_frame().select("ts")
        if fetched.schema["ts"] != empty_frame().schema["ts"]:
            return None  # unusable timestamps: validation reports them
        # Bars per window [start, end) by binary search over the sorted epoch microseconds (one polars filter
        # per window cost ~0.7 ms: 7 s for a first sync of 10,500 windows).
        ts = np.sort(fetched["ts"].drop_nulls().dt.epoch("us").to_numpy())
        bounds = np.array([[epoch_us(start), epoch_us(end)] for plan in plans for start, end in plan.windows],
                          dtype=np.int64).reshape(-1, 2)
        if (np.searchsorted(ts, bounds[:, 1]) == np.searchsorted(ts, bounds[:, 0])).any():
            return self.provider.history(symbol, self.p.timeframe)
        return None

    # -- validate and write --------------------------------------------------------------------

    def _validate(self, batch: list[_SymbolFetch]) -> None:
        """Validate a batch of fetched symbols; their valid windows wait for the run's write."""
        frame = pl.concat([item.frame.with_columns(pl.lit(item.symbol).alias("symbol")) for item in batch])
        windows = windows_frame(plan for item in batch for plan in item.plans)
        report = validate_bars(frame, windows=windows, sessions=self._sessions, daily=not self.p.timeframe.is_intraday,
                               quality=self.p.config.quality, step=self.p.timeframe.duration)
        # Each window's bars, first and last bar in one aggregation (a frame per window cost ~0.2 ms each).
        stats: dict[tuple[str, str], WindowStats] = {
            (symbol, key): (n, first, last) for symbol, key, n, first, last in report.located.group_by(
                "symbol", WINDOW_COLUMN).agg(pl.len(), pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last")).iter_rows()}
        offset = 0
        for item in batch:
            bad = {key: fails for (symbol, key), fails in report.failures.items() if symbol == item.symbol}
            rows = report.located.slice(offset, item.frame.height)  # the batch keeps each symbol's rows together
            offset += item.frame.height
            if None in bad:  # rows outside every window, or a column-level failure: nothing of the symbol is stored
                self._fail_symbol(item.symbol, item.plans, "invalid data: " + "; ".join(f.describe() for f in bad[None]))
                continue
            replacement = self._replacement(item, bad, stats, rows)
            if replacement.windows:
                self._pending.append(replacement)
                self._pending_rows += replacement.frame.height

    def _feed(self) -> None:
        """Hand the pending windows to the open write (opening it: connection, transaction)."""
        if not self._pending:
            return
        if self._writer is None:
            con = self._writes.enter_context(self.connect())
            self._writer = self._writes.enter_context(
                WindowsWriter(con, timeframe=self.p.timeframe.value, source=self.provider.name))
        self._writer.add(self._pending)
        self._writing += [r.symbol for r in self._pending]
        self._pending = []

    def _write(self) -> None:
        """Commit every window handed to the write and the pending ones in one transaction: all of them land,
        or none."""
        self._feed()
        if self._writer is None:
            return
        symbols, self._writing, self._pending_rows = self._writing, [], 0
        writer, self._writer = self._writer, None
        with self._writes:  # closes the connection after the commit
            written = writer.commit(self._infer_actions(symbols))
            if self.tail:  # tailed windows kept their earlier bars: count what each window holds now
                self._restat(writer.con)
        self._pending_windows = []
        faultpoints.reach("after_commit")
        self.outcome.symbols_done.extend(symbols)
        shown = ", ".join(symbols[:20]) + (f" and {len(symbols) - 20} more" if len(symbols) > 20 else "")
        self.log.info(f"{self._where}: stored {written} bars for {len(symbols)} symbol(s) in one transaction "
                      f"({shown})")

    def _infer_actions(self, symbols: list[str]) -> Callable[[duckdb.DuckDBPyConnection], None] | None:
        """Daily bars with the provider's adjusted close imply splits and dividends: record them with the bars."""
        if self.p.timeframe.is_intraday or not self.provider.capabilities.has_adj_close:
            return None

        def infer(con: duckdb.DuckDBPyConnection) -> None:
            appended = record_inferred_actions(con, self.provider.name, symbols, self.p.config.currency, self.now)
            if appended:
                self.log.info(f"{self._where}: {appended} corporate action change(s) inferred from adj_close")

        return infer

    def _replacement(self, item: _SymbolFetch, bad: dict[str | None, list[RuleFailure]],
                     stats: dict[tuple[str, str], WindowStats], located: pl.DataFrame) -> WindowReplacement:
        """The windows of `item` that passed, with their rows (`located`: the item's validated rows); failed
        and unexplained-empty ones are recorded."""
        windows: list[tuple[dt.datetime, dt.datetime]] = []
        for plan in item.plans:
            for date_key, window in zip(plan.date_keys, plan.windows):
                key = partition_key(date_key, item.symbol)
                if date_key in bad:
                    reasons = "; ".join(f.describe() for f in bad[date_key])
                    self.outcome.failed[key] = f"{self._where}: invalid data in partition {key}: {reasons}"
                    continue
                stat = stats.get((item.symbol, date_key))
                if stat is None:
                    reason = self._empty_reason(date_key, window, item.history)
                    if reason is None:
                        self.outcome.failed[key] = self._unexplained_empty(key, date_key, item.history)
                        continue
                    self.outcome.empty[key] = reason
                else:
                    self.outcome.written[key] = stat[0]
                    self.outcome.stored[key] = stat
                    self._pending_windows.append((item.symbol, date_key, *self.p.window(date_key)))  # whole: a tail restats it
                windows.append(window)
        # Every row is in a window (else the symbol failed): without failed windows, all of them are stored.
        frame = item.frame if not bad else located.filter(~pl.col(WINDOW_COLUMN).is_in(list(bad))).select(item.frame.columns)
        return WindowReplacement(item.symbol, windows, frame)

    def _unexplained_empty(self, key: str, date_key: str, history: SymbolHistory | None) -> str:
        sessions = len(self.p.sessions(date_key))
        return (
            f"{self._where}: no bars in partition {key} although the calendar has {sessions} session(s) there "
            f"and the symbol trades then ({_life(history)}); check the provider's data for that window, "
            "or narrow the market's start/end"
        )

    def _empty_reason(self, date_key: str, window: tuple[dt.datetime, dt.datetime],
                      history: SymbolHistory | None) -> str | None:
        """Why an empty window is valid, or None if it should have had bars."""
        start, end = window
        if not self.p.sessions(date_key):
            return "no trading session in this window"
        if history is not None and history.first_ts is None and self.provider.capabilities.static_history:
            return "the provider has no bars for this symbol"
        if history is not None and history.first_ts is not None and end <= history.first_ts:
            return f"before the symbol's first available bar ({history.first_ts:%Y-%m-%d})"
        if history is not None and history.last_ts is not None and start > history.last_ts \
                and self.provider.capabilities.static_history:
            return f"after the symbol's last available bar ({history.last_ts:%Y-%m-%d})"
        if end > self.now:
            return "window in progress: no final bar yet"
        return None

    def _restat(self, con: duckdb.DuckDBPyConnection) -> None:
        """The stored bars of the windows this write stored rows in (their whole window, not just the tail)."""
        windows = window_rows_frame(self._pending_windows)
        for (symbol, date_key), stats in window_stats(con, timeframe=self.p.timeframe.value, windows=windows).items():
            self.outcome.stored[partition_key(date_key, symbol)] = stats

    def _fail_symbol(self, symbol: str, plans: list[FetchPlan], message: str) -> None:
        keys = [partition_key(k, symbol) for plan in plans for k in plan.date_keys]
        for key in keys:
            self.outcome.failed[key] = f"{self._where} {symbol}: {message}"
        self.log.error(f"{self._where} {symbol}: nothing stored for {len(keys)} partition(s): {message}")


def _plan(symbol: str, windows: list[tuple[str, Window]]) -> FetchPlan:
    return FetchPlan(symbol, tuple(k for k, _ in windows), tuple(w for _, w in windows))


def _life(history: SymbolHistory | None) -> str:
    if history is None or history.first_ts is None:
        return "listing dates unknown"
    last = f"{history.last_ts:%Y-%m-%d}" if history.last_ts else "today"
    return f"bars available {history.first_ts:%Y-%m-%d} to {last}"
