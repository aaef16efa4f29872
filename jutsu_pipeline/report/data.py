"""What the HTML report shows, read from DuckDB and the partition statuses the caller passes (the report
asset and `jutsu report`): plain, JSON-ready values."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

import duckdb
import numpy as np
import polars as pl

from jutsu_pipeline.partitions import BarsPartitioning, partition_key
from jutsu_pipeline.quality.grid import calendar_grid
from jutsu_pipeline.report import sql
from jutsu_pipeline.storage.ddl import column_names, relation_exists
from jutsu_pipeline.storage.scope import fetch_arrow, registered, scope_params

MAX_COVERAGE_COLUMNS = 400  # intraday session partitions are binned so a row stays readable
MAX_CURVE_POINTS = 1500  # equity curves are thinned (drawdown keeps each bucket's deepest point)


class Cell(StrEnum):
    """State of one symbol × window of the coverage grid (worst first when windows are binned)."""

    FAILED = "f"  # the last materialisation attempt of the partition failed
    MISSING = "m"  # never materialised although its window has closed
    RUNNING = "r"  # a run is materialising it now
    OPEN = "o"  # the window has not closed yet and is not materialised
    PARTIAL = "p"  # materialised; fewer bars than calendar sessions (the symbol's life starts/ends or a halt)
    EMPTY = "e"  # materialised with no bars (outside the symbol's life: valid)
    COMPLETE = "c"  # materialised with a bar for every calendar slot


_SEVERITY = {cell: i for i, cell in enumerate(Cell)}


class PartitionStatus(StrEnum):
    """A bars partition as Dagster records it (None = never materialised)."""

    MATERIALIZED = "materialized"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True)
class Coverage:
    """One market × timeframe: columns of windows and a string of `Cell` codes per symbol."""

    timeframe: str
    columns: list[str]  # window labels (first date key of the bin)
    expected: list[int]  # calendar slots (bars) per column
    symbols: list[str]
    cells: list[str]  # per symbol, one Cell code per column
    bars: list[list[int]]  # per symbol, stored bars on the grid per column
    counts: dict[str, int]  # partitions per Cell code (before binning)
    binned: bool  # a column holds several windows (its worst cell is shown)


def coverage(
    con: duckdb.DuckDBPyConnection,
    partitioning: BarsPartitioning,
    statuses: Mapping[str, PartitionStatus | None],
    now: dt.datetime,
) -> Coverage:
    """Every partition of the bars asset classified (see `Cell`), binned to at most MAX_COVERAGE_COLUMNS."""
    date_keys = partitioning.date_keys()
    symbols = list(partitioning.symbols)
    grid = calendar_grid(partitioning, today=now.date())
    expected_by_key = dict(grid.group_by("partition_date").len().select(
        pl.col("partition_date").dt.strftime("%Y-%m-%d"), "len").iter_rows())
    stored: dict[tuple[str, str], int] = {}
    if relation_exists(con, "bars") and grid.height:
        with registered(con, grid=grid.to_arrow()):
            rows = con.execute(sql.BARS_PER_PARTITION, scope_params(partitioning.timeframe.value, symbols)).fetchall()
        stored = {(symbol, day.isoformat()): int(bars) for symbol, day, bars in rows}
    closed = {key: partitioning.window(key)[1] <= now for key in date_keys}

    def classify(symbol: str, key: str) -> Cell:
        status = statuses.get(partition_key(key, symbol))
        if status is PartitionStatus.IN_PROGRESS:
            return Cell.RUNNING
        if status is PartitionStatus.FAILED:
            return Cell.FAILED
        if status is None:
            return Cell.MISSING if closed[key] else Cell.OPEN
        bars, expected = stored.get((symbol, key), 0), expected_by_key.get(key, 0)
        if bars == 0 and expected:
            return Cell.EMPTY
        return Cell.COMPLETE if bars >= expected else Cell.PARTIAL

    bins = _bins(len(date_keys), MAX_COVERAGE_COLUMNS)
    states = [[classify(symbol, key) for key in date_keys] for symbol in symbols]
    return Coverage(
        timeframe=partitioning.timeframe.value,
        columns=[date_keys[a] for a, _ in bins],
        expected=[sum(expected_by_key.get(key, 0) for key in date_keys[a:b]) for a, b in bins],
        symbols=symbols,
        cells=["".join(min(row[a:b], key=_SEVERITY.__getitem__).value for a, b in bins) for row in states],
        bars=[[sum(stored.get((symbol, key), 0) for key in date_keys[a:b]) for a, b in bins] for symbol in symbols],
        counts={cell.value: sum(row.count(cell) for row in states) for cell in Cell},
        binned=len(bins) < len(date_keys),
    )


def _bins(n: int, most: int) -> list[tuple[int, int]]:
    """[start, end) index ranges splitting n items into at most `most` near-equal consecutive bins."""
    size = max(1, math.ceil(n / most))
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def _rounded(values: np.ndarray, digits: int) -> list[float | None]:
    """Values rounded for display (the DuckDB file keeps full precision); NaN/NULL become None."""
    out = np.round(values.astype(np.float64), digits)
    return [None if v != v else v for v in out.tolist()]


def _packed(values: np.ndarray, digits: int) -> list[int | None]:
    """A series for the page in half the bytes of rounded decimals: integers in units of 10**-digits, each
    the difference to the previous non-null one (the first absolute), NULL as None; the page's `unpack`."""
    scaled = np.round(values.astype(np.float64) * 10.0**digits)
    finite = np.isfinite(scaled)
    out = np.full(values.size, None, dtype=object)
    out[finite] = np.diff(scaled[finite].astype(np.int64), prepend=np.int64(0))  # as Python ints
    return out.tolist()


def _price_digits(close: np.ndarray) -> int:
    """Decimals that keep 4 significant digits of a symbol's typical price (at least cents)."""
    finite = np.abs(close[np.isfinite(close)])
    typical = float(np.median(finite)) if finite.size else 1.0
    return int(min(8, max(2, 3 - math.floor(math.log10(typical))))) if typical > 0 else 2


def _time_deltas(t: np.ndarray) -> tuple[int, int, list[int]]:
    """(unit seconds, first time in units, deltas in units): days for daily bars, else minutes."""
    unit = 86_400 if t.size and not np.any(t % 86_400) else 60
    units = t // unit
    return unit, int(units[0]) if units.size else 0, np.diff(units).tolist()


def price_series(
    con: duckdb.DuckDBPyConnection,
    *,
    timeframe: str,
    symbols: Sequence[str],
    columns: Any,  # IndicatorParams.columns(): names by output (.sma, .bb_upper, .rsi, .macd, ...)
    adjusted: bool,
    bars: int,
) -> dict[str, dict]:
    """Per symbol: the latest `bars` candles with SMA, Bollinger bands, RSI and MACD: times `t0` plus deltas
    in `unit` seconds, o/h/l/c `_packed` with `digits` decimals, each indicator {"d": decimals, "v": packed}."""
    source = "bars_adjusted" if adjusted else "bars"
    if not relation_exists(con, "bars"):
        return {}
    wanted = {"sma": columns.sma, "bbu": columns.bb_upper, "bbm": columns.bb_middle, "bbl": columns.bb_lower,
              "rsi": columns.rsi, "macd": columns.macd, "sig": columns.macd_signal, "hist": columns.macd_hist}
    present = set(column_names(con, "indicators"))
    available = {short: name for short, name in wanted.items() if name in present}
    select = "".join(f', i."{name}" AS "{short}"' for short, name in available.items())
    query = sql.PRICE.format(columns=select, source=source, join=sql.INDICATORS_JOIN if available else "")
    frame = cast(pl.DataFrame, pl.from_arrow(fetch_arrow(con, query, {**scope_params(timeframe, symbols), "bars": bars})))
    out: dict[str, dict] = {}
    for (symbol,), part in frame.group_by(["symbol"], maintain_order=True):
        t = part["t"].to_numpy()
        unit, t0, deltas = _time_deltas(t)
        digits = _price_digits(part["close"].to_numpy())
        series: dict[str, object] = {"unit": unit, "t0": t0, "dt": deltas, "digits": digits}
        for name in ("open", "high", "low", "close"):
            series[name[0]] = _packed(part[name].to_numpy(), digits)
        names = {}
        for short, name in available.items():
            if part[short].null_count() == part.height:
                continue  # not computed for this symbol (yet)
            places = digits if short in ("sma", "bbu", "bbm", "bbl") else 2 if short == "rsi" else digits + 1
            series[short] = {"d": places, "v": _packed(part[short].to_numpy(), places)}
            names[short] = name
        series["names"] = names
        out[symbol] = series
    return out


def leaderboard(con: duckdb.DuckDBPyConnection, market: str, top: int) -> dict:
    """The market's top results and each one's equity and drawdown curve (thinned to MAX_CURVE_POINTS)."""
    if not (relation_exists(con, "backtest_leaderboard") and relation_exists(con, "backtest_equity")):
        return {"rows": [], "curves": {}}
    params = {"market": market, "top": top}
    rows = cast(pl.DataFrame, pl.from_arrow(fetch_arrow(con, sql.LEADERBOARD, params)))
    keys = {name: rows[column].unique().to_list() if rows.height else []
            for name, column in (("strategies", "strategy"), ("symbols", "symbol"), ("timeframes", "timeframe"))}
    curves = cast(pl.DataFrame, pl.from_arrow(fetch_arrow(con, sql.LEADERBOARD_CURVES, {**params, **keys})))
    out_rows = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
                for row in rows.iter_rows(named=True)]
    out_curves: dict[str, dict] = {}
    for (rank,), part in curves.group_by(["rank"], maintain_order=True):
        t, equity, drawdown = part["t"].to_numpy(), part["equity"].to_numpy(), part["drawdown_pct"].to_numpy()
        bins = _bins(t.size, MAX_CURVE_POINTS)
        ends = np.array([b - 1 for _, b in bins], dtype=np.int64)
        deepest = np.array([a + int(np.argmax(drawdown[a:b])) for a, b in bins], dtype=np.int64)
        unit, t0, deltas = _time_deltas(t[ends])
        out_curves[str(rank)] = {
            "unit": unit, "t0": t0, "dt": deltas,
            "equity": _rounded(equity[ends], 2),
            "drawdown": _rounded(-100 * drawdown[deepest], 2),  # percent below the running peak, <= 0
        }
    return {"rows": out_rows, "curves": out_curves}
