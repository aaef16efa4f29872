"""Atomic, idempotent replacement of bar windows (DuckDB file or DuckLake)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import cast

import duckdb
import polars as pl

from jutsu_pipeline.storage.backend import is_lake
from jutsu_pipeline.storage.ddl import ensure_schema, relation_exists
from jutsu_pipeline.storage.scope import BAR_COLUMNS, read_bars, registered
from jutsu_pipeline.storage.transactions import retry_conflicts

# The symbol bounds let the scan skip row groups by their min/max: the rows a streamed replace already
# inserted (other symbols) are not rescanned by each later part's delete.
DELETE_STAGED_WINDOWS = """
DELETE FROM bars
USING staged_windows AS w
WHERE bars.symbol = w.symbol AND bars.timeframe = $timeframe AND bars.ts >= w.start AND bars.ts < w.end
  AND bars.symbol BETWEEN $first AND $last
"""

INSERT_STAGED = """
INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume, adj_close, source, ingested_at)
SELECT symbol, $timeframe, ts, open, high, low, close, volume, adj_close, $source, $ingested_at
FROM staged_bars
"""

Window = tuple[dt.datetime, dt.datetime]
# A write whose first part holds this many rows runs on one DuckDB thread (setting `threads` costs 0.4-5 ms).
ONE_THREAD_ROWS = 100_000


@dataclass(frozen=True)
class WindowReplacement:
    """Everything of `symbol` inside `windows` becomes `frame` (validated rows inside those windows)."""

    symbol: str
    windows: Sequence[Window]
    frame: pl.DataFrame


class WindowsWriter:
    """ONE transaction replacing bar windows, fed part by part: `add` deletes a part's windows and inserts its
    rows on a writer thread (DuckDB releases the GIL, so the insert overlaps the caller's next fetches),
    `commit` lands every part; leaving the `with` block without it (an error anywhere) rolls all back.
    On a DuckDB file a big write runs on one DuckDB thread: two doubled the CPU of a 2.5 M-bar fill on a busy
    2-core machine and left the file bigger (docs/performance.md, issue 10). On DuckLake a commit conflict
    with a concurrent writer re-runs the whole transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, timeframe: str, source: str) -> None:
        ensure_schema(con)
        self.con, self.timeframe, self.source = con, timeframe, source
        self.ingested_at = dt.datetime.now(dt.timezone.utc)
        self._lake = is_lake(con)
        self.parts: list[Sequence[WindowReplacement]] = []  # DuckLake: kept to re-run it after a commit conflict
        self.rows = self.symbols = 0
        self._threads: int | None = None  # the setting to restore after a one-thread write
        self._open = False
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bars-write")
        self._inserting: Future[None] | None = None

    def __enter__(self) -> WindowsWriter:
        return self

    def __exit__(self, error: type[BaseException] | None, *_: object) -> None:
        try:
            self._wait()  # the writer thread leaves the connection first
        except BaseException:
            if error is None:
                raise
        finally:
            self._worker.shutdown()
            if self._open:  # not committed: nothing of it stays
                self._end("ROLLBACK")

    def add(self, replacements: Sequence[WindowReplacement]) -> None:
        """Delete `replacements`' windows and insert their rows in the transaction, on the writer thread
        (one part in flight: an earlier part's error raises here)."""
        self._wait()
        if replacements:
            if self._lake:
                self.parts.append(replacements)
            self.rows += sum(r.frame.height for r in replacements)
            self.symbols += len(replacements)
            self._inserting = self._worker.submit(self._insert, replacements)

    def commit(self, in_transaction: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> int:
        """Commit every part, `in_transaction(con)` running last inside the transaction (e.g. recording the
        corporate actions the new bars imply: they land with the bars or not at all); returns rows written."""
        self._wait()

        def attempt() -> None:
            if not self._open:  # nothing added, or a commit conflict rolled it all back: (re)run it all
                self._begin(self.rows)
                for part in self.parts:
                    self._insert(part)
            if in_transaction is not None:
                in_transaction(self.con)
            self._end("COMMIT")

        retry_conflicts(attempt, f"replace {self.symbols} symbol(s) of bars {self.timeframe}")
        return self.rows

    def _begin(self, rows: int) -> None:
        if rows >= ONE_THREAD_ROWS and not self._lake:
            self._threads = int(self.con.execute("SELECT current_setting('threads')").fetchall()[0][0])
            self.con.execute("SET threads = 1")
        self.con.execute("BEGIN TRANSACTION")
        self._open = True

    def _insert(self, replacements: Sequence[WindowReplacement]) -> None:
        if not self._open:
            self._begin(sum(r.frame.height for r in replacements))
        frames = [r.frame.select("ts", "open", "high", "low", "close", "volume", "adj_close")
                  .with_columns(pl.lit(r.symbol).alias("symbol")) for r in replacements]
        # One contiguous Arrow chunk in (symbol, ts) order: DuckDB inserts it in full vectors (a concat of one
        # small frame per window took ~2x as long), the row groups' symbol ranges stay narrow for the deletes'
        # skipping, and adjacent rows show duplicates.
        staged = pl.concat(frames, how="vertical").sort("symbol", "ts").rechunk()
        _refuse_duplicates(staged, self.timeframe)
        windows = pl.DataFrame(
            [(r.symbol, start, end) for r in replacements for start, end in r.windows],
            schema={"symbol": pl.String, "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC")},
            orient="row",
        )
        with registered(self.con, staged_windows=windows.to_arrow(), staged_bars=staged.to_arrow()):
            self.con.execute(DELETE_STAGED_WINDOWS, {"timeframe": self.timeframe, "first": windows["symbol"].min(),
                                                     "last": windows["symbol"].max()})
            if staged.height:
                self.con.execute(INSERT_STAGED, {"timeframe": self.timeframe, "source": self.source,
                                                 "ingested_at": self.ingested_at})

    def _wait(self) -> None:
        inserting, self._inserting = self._inserting, None
        if inserting is not None:
            inserting.result()

    def _end(self, statement: str) -> None:
        """COMMIT or ROLLBACK; a failed COMMIT is rolled back (if it did not already) and raises."""
        self._open = False
        try:
            self.con.execute(statement)
        except duckdb.Error:
            with suppress(duckdb.Error):
                self.con.execute("ROLLBACK")
            if statement == "COMMIT":
                raise
        finally:
            if self._threads is not None:
                with suppress(duckdb.Error):
                    self.con.execute(f"SET threads = {self._threads}")
                self._threads = None


class DuplicateBarsError(ValueError):
    """One write held two bars of a symbol with the same start: nothing of the write is kept."""


def _refuse_duplicates(staged: pl.DataFrame, timeframe: str) -> None:
    """What the primary key did on files made before 2026-12-02 (`staged` sorted by symbol, ts): the rows
    deleted first cannot collide with the new ones, two new ones can only if a caller skipped validation."""
    same = (pl.col("symbol") == pl.col("symbol").shift()) & (pl.col("ts") == pl.col("ts").shift())
    twice = staged.select("symbol", "ts").filter(same)
    if twice.height:
        symbol, ts = twice.row(0)
        raise DuplicateBarsError(f"bars {timeframe}: {twice.height} duplicate bar(s) in one write, the first "
                                 f"{symbol} at {ts:%Y-%m-%d %H:%M}; nothing of the write was stored")


def replace_windows(
    con: duckdb.DuckDBPyConnection,
    *,
    timeframe: str,
    source: str,
    replacements: Sequence[WindowReplacement],
    in_transaction: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> int:
    """Apply all replacements in ONE transaction (WindowsWriter with one part); returns rows written."""
    with WindowsWriter(con, timeframe=timeframe, source=source) as writer:
        writer.add(replacements)
        return writer.commit(in_transaction)


LAST_FINAL_BARS = """
SELECT w.symbol, w.date_key, max(b.ts) AS last_ts
FROM windows AS w
JOIN bars AS b ON b.symbol = w.symbol AND b.timeframe = $timeframe AND b.ts >= w.start AND b.ts < w."end"
WHERE b.ts <= $final_before
GROUP BY w.symbol, w.date_key
"""


def last_final_bars(con: duckdb.DuckDBPyConnection, *, timeframe: str, windows: pl.DataFrame,
                    final_before: dt.datetime) -> dict[tuple[str, str], dt.datetime]:
    """(symbol, date_key) -> start of the last stored bar that started at or before `final_before`
    inside each window of `windows` (symbol, date_key, start, end); windows without one are absent."""
    rows = _per_window(con, LAST_FINAL_BARS, windows, {"timeframe": timeframe, "final_before": final_before})
    return {(symbol, date_key): last_ts.astimezone(dt.timezone.utc) for symbol, date_key, last_ts in rows}


WINDOW_STATS = """
SELECT w.symbol, w.date_key, count(*) AS bars, min(b.ts) AS first_ts, max(b.ts) AS last_ts
FROM windows AS w
JOIN bars AS b ON b.symbol = w.symbol AND b.timeframe = $timeframe AND b.ts >= w.start AND b.ts < w."end"
GROUP BY w.symbol, w.date_key
"""


def window_stats(con: duckdb.DuckDBPyConnection, *, timeframe: str,
                 windows: pl.DataFrame) -> dict[tuple[str, str], tuple[int, dt.datetime, dt.datetime]]:
    """(symbol, date_key) -> (stored bars, first and last bar start) of each window of `windows` (symbol,
    date_key, start, end); windows without bars are absent."""
    rows = _per_window(con, WINDOW_STATS, windows, {"timeframe": timeframe})
    utc = dt.timezone.utc
    return {(symbol, key): (int(n), first.astimezone(utc), last.astimezone(utc)) for symbol, key, n, first, last in rows}


def _per_window(con: duckdb.DuckDBPyConnection, statement: str, windows: pl.DataFrame,
                params: dict[str, object]) -> list[tuple]:
    if windows.is_empty() or not relation_exists(con, "bars"):
        return []
    with registered(con, windows=windows.to_arrow()):
        return con.execute(statement, params).fetchall()


def read_symbol_bars(con: duckdb.DuckDBPyConnection, *, timeframe: str, symbol: str) -> pl.DataFrame:
    """Every stored bar of one symbol × timeframe (canonical columns, ts in UTC), oldest first."""
    schema = pl.Schema({"ts": pl.Datetime("us", "UTC"), **{c: pl.Float64() for c in BAR_COLUMNS}})
    if not relation_exists(con, "bars"):
        return pl.DataFrame(schema=schema)
    frame = cast(pl.DataFrame, pl.from_arrow(read_bars(con, timeframe, [symbol]))).drop("symbol")
    return frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC").dt.cast_time_unit("us")).cast(schema)
