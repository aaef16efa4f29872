"""Public entry points: run strategies over bars, get trades, equity curves and statistics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from typing import cast

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

try:  # numpy's switch behind NUMPY_MADVISE_HUGEPAGE is private (numpy._core since numpy 2)
    from numpy._core.multiarray import _set_madvise_hugepage as _madvise_switch  # type: ignore[attr-defined]
except ImportError:  # a numpy without it: runs keep numpy's own setting
    _madvise_switch = None

from jutsu_pipeline.backtest.curves import Clock, series_aggregates, series_clock
from jutsu_pipeline.backtest.engine import SimInput, SimResult, simulate
from jutsu_pipeline.backtest.stats import DURATION_STATS, PERFORMANCE
from jutsu_pipeline.backtest.strategies import Bars, StrategyConfig
from jutsu_pipeline.indicators import indicator_frame
from jutsu_pipeline.indicators.frame import sorted_runs
from jutsu_pipeline.storage.backend import current_snapshot
from jutsu_pipeline.storage.backtests import ensure_result_tables, replace_results
from jutsu_pipeline.storage.ddl import column_names, ensure_schema
from jutsu_pipeline.storage.files import SAFE_CONFIG
from jutsu_pipeline.storage.scope import OHLCV, ROW_HASH, read_bars
from jutsu_pipeline.storage.transactions import transaction
from jutsu_pipeline.storage.versions import version_parts

BAR_COLUMNS = ("symbol", "ts", *OHLCV)

# backtest_bars hashes its in-memory bars as `read_bars(..., row_hash=True)` does stored ones (data version).
ROW_HASH_OF_ARROW = f"SELECT {ROW_HASH} AS row_hash FROM _bt_bars"


@dataclass(frozen=True)
class BacktestResult:
    """Results of every strategy x symbol: statistics, trades and equity curves."""

    performance: pl.DataFrame
    trades: pl.DataFrame
    build_equity: Callable[[], pl.DataFrame] = field(repr=False)

    @cached_property
    def equity(self) -> pl.DataFrame:
        """strategy, symbol (Enum), ts, equity, drawdown_pct of every bar (as the view ``backtest_equity``):
        built when first read, since the asset never reads it (~0.02-0.1 s of 1.26 M rows)."""
        return self.build_equity()


@contextmanager
def _small_pages() -> Iterator[None]:
    """numpy's arrays of >= 4 MB in 4 KB pages while a run lasts (numpy's NUMPY_MADVISE_HUGEPAGE=0 setting,
    restored after). A run makes ~150 MB of short-lived temporaries; on this project's VM a fresh transparent
    huge page cost ~5-15 ms of system time (the host reclaims free guest memory in 2 MB blocks, zeroing one
    faults it all back in): 0.2-0.9 s of a 500 x 2,520 run, the slow mode of its benchmark, against ~0.05 s."""
    if _madvise_switch is None:
        yield
        return
    previous = _madvise_switch(False)
    try:
        yield
    finally:
        _madvise_switch(previous)


@_small_pages()
def run_backtests(
    con: duckdb.DuckDBPyConnection,
    *,
    timeframe: str,
    symbols: Sequence[str],
    strategies: Sequence[StrategyConfig],
    adjusted: bool = True,
) -> BacktestResult:
    """Backtest ``strategies`` on ``symbols``' bars and the indicators stored for them; replace results.

    Reads ``bars_adjusted`` (raw ``bars`` unless ``adjusted``) and the ``indicators`` columns the
    strategies need, which the indicators asset must have computed (ValueError naming what to
    materialise otherwise). The results of these strategies, symbols and timeframe are replaced in
    one transaction (a symbol without bars loses its rows).
    On DuckLake each performance row records the catalog snapshot its bars were read at
    (``data_snapshot``; re-read them with ``AT (VERSION => data_snapshot)``); NULL on a DuckDB file.
    """
    _check_unique_names(strategies)
    ensure_schema(con)
    ensure_result_tables(con)
    needed = list(dict.fromkeys(c for s in strategies for c in s.input_columns().values()))
    stored = set(column_names(con, "indicators"))
    missing = [c for c in needed if c not in stored]
    if missing:
        raise ValueError(f"indicators table lacks column(s) {missing} the strategies read: materialize the "
                         f"indicators asset of timeframe {timeframe} (it computes every strategy's indicators)")
    names = sorted(set(symbols))  # symbol_no in name order: series, trades and results ordered by symbol
    with transaction(con):  # the snapshot id, the bars and the indicators come from one (DuckLake) snapshot
        snapshot = current_snapshot(con)
        bars = read_bars(con, timeframe, names, relation="bars_adjusted" if adjusted else "bars",
                         columns=("open", "close"), row_hash=True, positions=True)
        # Two reads matched by position cost a third of a join.
        loaded = read_bars(con, timeframe, names, relation="indicators", columns=needed, positions=True) if needed else None
    bars = _sorted(bars)
    position = bars.column("symbol_no").to_numpy()
    starts = np.flatnonzero(np.diff(position, prepend=-1))
    counts = np.diff(starts, append=position.size)
    run_names = [names[k] for k in position[starts].tolist()]
    if loaded is not None:
        bars = _with_indicators(bars, _sorted(loaded), names, timeframe)
        _check_computed(bars, run_names, starts, counts, strategies, timeframe)
    try:
        result = _backtest_loaded(con, bars, run_names, counts, strategies)
        result = replace(result, performance=result.performance.with_columns(
            pl.lit(snapshot, pl.Int64).alias("data_snapshot")))
        replace_results(con, timeframe=timeframe, strategies=[s.name for s in strategies], symbols=list(symbols),
                        computed_at=dt.datetime.now(dt.timezone.utc), adjusted=adjusted, data_snapshot=snapshot)
    finally:
        for name in REGISTERED:
            con.unregister(name)
    return result


@_small_pages()
def backtest_bars(bars: pl.DataFrame, strategies: Sequence[StrategyConfig]) -> BacktestResult:
    """In-memory variant: ``bars`` has symbol, ts, open, high, low, close, volume; nothing is stored."""
    _check_unique_names(strategies)
    ts = bars.schema["ts"]
    utc = pl.col("ts").dt.replace_time_zone("UTC") if getattr(ts, "time_zone", None) is None else (
        pl.col("ts").dt.convert_time_zone("UTC"))
    frame = bars.select(BAR_COLUMNS).with_columns(utc.dt.cast_time_unit("us")).sort("symbol", "ts")
    specs = [spec for s in strategies for spec in s.indicator_specs()]
    frame = frame.hstack(indicator_frame(frame, specs).drop("symbol", "ts").get_columns())
    con = duckdb.connect(config=dict(SAFE_CONFIG))
    try:
        con.register("_bt_bars", frame.select(BAR_COLUMNS).to_arrow())
        row_hash = con.execute(ROW_HASH_OF_ARROW).to_arrow_table().column("row_hash")
        table = frame.drop("high", "low", "volume").to_arrow().append_column("row_hash", row_hash)
        runs = pc.run_end_encode(table.column("symbol").combine_chunks())
        counts = np.diff(runs.run_ends.to_numpy().astype(np.int64), prepend=0)
        return _backtest_loaded(con, table, runs.values.to_pylist(), counts, strategies)
    finally:
        con.close()


# Arrow tables registered in the caller's connection during a run: stats.py's inputs and what is stored.
REGISTERED = ("_bt_version_parts", "_bt_series", "_bt_equity_agg", "_bt_dd_episodes", "_bt_period_agg", "_bt_trades",
              "_bt_performance")
# Reductions SQL returned as NULL (no non-zero drawdown, fewer than two return pairs): NaN here.
NULL_WHEN_NAN = ("mean_nonzero_drawdown", "covariance", "market_variance")


def _check_unique_names(strategies: Sequence[StrategyConfig]) -> None:
    names = [s.name for s in strategies]
    if len(set(names)) != len(names):
        raise ValueError(f"strategy names must be unique, got {names}")


def _backtest_loaded(
    con: duckdb.DuckDBPyConnection, table: pa.Table, symbols: list[str], counts: np.ndarray,
    strategies: Sequence[StrategyConfig],
) -> BacktestResult:
    """Signals, simulation and statistics over ``table`` (ts, open, close, row_hash and the indicator columns;
    runs of ``counts`` rows, each one of ``symbols``' bars in ts order); the results stay registered for
    ``replace_results``."""
    strategies = sorted(strategies, key=lambda s: s.name)  # every result comes out ordered by strategy, symbol
    table = table.combine_chunks()
    ends = np.cumsum(counts)
    ts_us = table.column("ts").cast(pa.int64()).to_numpy()
    starts = ends - counts
    con.register("_bt_version_parts", version_parts(pa.array(symbols, pa.string()), counts, table.column("ts"),
                                                    table.column("row_hash").to_numpy()))
    clock = series_clock(starts, ends, ts_us)  # per symbol: each strategy runs over the same bars
    first = np.zeros(table.num_rows, dtype=bool)
    first[starts] = True
    opens, close = (table.column(c).to_numpy() for c in ("open", "close"))
    signals = []
    for strategy in strategies:
        inputs = {role: table.column(column).to_numpy()
                  for role, column in strategy.input_columns().items()}
        entry, exit_ = strategy.strategy.signal(strategy.typed_params, Bars(opens, close, first, inputs))
        warmup = _warmup(inputs.values(), starts, counts)
        dead = np.minimum(warmup + 1, counts)  # each symbol's bars up to its warmup's, then live ones
        live = np.repeat(np.tile([False, True], counts.size), np.column_stack([dead, counts - dead]).ravel())
        signals.append((entry & live, exit_ & live, warmup))
    sim, series = _assemble(strategies, symbols, counts, opens, close, signals)
    result = simulate(sim)
    ts_all = np.tile(ts_us, len(strategies))
    tables, drawdown = _register_results(con, series, sim, ts_all, result, clock.repeated(len(strategies)))
    performance = con.execute(PERFORMANCE).to_arrow_table()
    con.register("_bt_performance", performance)
    return BacktestResult(
        performance=cast(pl.DataFrame, pl.from_arrow(performance.drop_columns(["params_json"]))).with_columns(
            pl.col(DURATION_STATS).cast(pl.Duration("us"))),
        trades=cast(pl.DataFrame, pl.from_arrow(tables["_bt_trades"].drop_columns(["series_id"]))),
        build_equity=partial(_equity_frame, series, ts_all, result.equity, drawdown),
    )


def _sorted(table: pa.Table) -> pa.Table:
    """``table`` (symbol_no, ts, ...) ordered by symbol_no, ts: as it is when stored so."""
    order, _, _ = sorted_runs(table.column("symbol_no").to_numpy(), table.column("ts").cast(pa.int64()).to_numpy())
    return table if order is None else table.take(order)


def _with_indicators(bars: pa.Table, indicators: pa.Table, names: Sequence[str], timeframe: str) -> pa.Table:
    """``bars`` with the indicator columns appended, both sorted by (symbol_no, ts); every bar needs its row."""
    keys = ["symbol_no", "ts"]
    if indicators.num_rows != bars.num_rows or not all(bars.column(k).equals(indicators.column(k)) for k in keys):
        # Slow path: rows of bars deleted since the indicators ran are ignored; a bar without its row is an error.
        marked = cast(pl.DataFrame, pl.from_arrow(indicators)).with_columns(pl.lit(True).alias("_stored"))
        joined = cast(pl.DataFrame, pl.from_arrow(bars.select(keys))).join(marked, on=keys, how="left", maintain_order="left")
        lacking = joined.filter(pl.col("_stored").is_null())["symbol_no"].unique().to_list()
        if lacking:
            raise ValueError(f"no indicators stored for some bars of {sorted(names[k] for k in lacking)} ({timeframe}): "
                             "materialize their indicators partitions first")
        indicators = joined.drop("_stored").to_arrow()
    for name in indicators.column_names[2:]:
        bars = bars.append_column(name, indicators.column(name))
    return bars


def _check_computed(bars: pa.Table, names: list[str], starts: np.ndarray, counts: np.ndarray,
                    strategies: Sequence[StrategyConfig], timeframe: str) -> None:
    """Each symbol (runs of ``counts`` rows from ``starts``, ``names``) has every input value TA-Lib defines
    (rows written without a column hold NULLs)."""
    for strategy in strategies:
        for spec, output in strategy.inputs().values():
            values = bars.column(spec.column(output)).to_numpy()
            defined = np.add.reduceat(~np.isnan(values), starts) if counts.size else counts
            short = np.asarray(names, dtype=object)[defined < np.maximum(counts - spec.lookback(), 0)]
            if short.size:
                raise ValueError(f"indicator {spec.column(output)} is not computed for {sorted(short)} ({timeframe}): "
                                 "materialize their indicators partitions first")


def _warmup(inputs: Iterable[np.ndarray], starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """backtesting.py's ``_indicator_warmup_nbars`` per symbol: the latest first non-NaN bar over the
    inputs, an all-NaN input counting as 0. Signals act from the bar after it."""
    warmup = np.zeros(starts.size, dtype=np.int64)
    for values in inputs:
        defined = ~np.isnan(values)
        opening = defined.copy()  # the first bar of each run of defined bars within a symbol (a few per symbol)
        opening[1:] &= ~defined[:-1]
        opening[starts] = defined[starts]
        runs = np.append(np.flatnonzero(opening), values.size)
        found = runs[np.searchsorted(runs, starts)] - starts
        warmup = np.maximum(warmup, np.where(found < counts, found, 0))
    return warmup


def _equity_frame(series: dict[str, np.ndarray], ts_us: np.ndarray, equity: np.ndarray,
                  drawdown: np.ndarray) -> pl.DataFrame:
    """strategy, symbol (Enum), ts, equity, drawdown_pct of every bar."""
    per_bar = np.repeat(np.arange(series["n_bars"].size), series["n_bars"])
    labels = {}
    for column in ("strategy", "symbol"):
        categories, codes = np.unique(series[column].astype(str), return_inverse=True)
        names = categories.tolist()
        labels[column] = pl.Series(column, names, dtype=pl.Enum(names)).gather(codes[per_bar])
    return pl.DataFrame({**labels, "ts": pa.array(ts_us, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                         "equity": equity, "drawdown_pct": drawdown})


def _assemble(
    strategies: Sequence[StrategyConfig], symbols: list[str], counts: np.ndarray, opens: np.ndarray, close: np.ndarray,
    signals: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[SimInput, dict[str, np.ndarray]]:
    """Every strategy's rows one after another (entry, exit and per-symbol warmup of each); one series per
    strategy x symbol (same symbol order)."""
    k = len(strategies)
    n_bars = np.tile(counts, k)
    ends = np.cumsum(n_bars)

    def per_series(values: list[object]) -> np.ndarray:
        return np.repeat(np.asarray(values), counts.size)

    def flat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.asarray(parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else (), dtype=dtype)

    sim = SimInput(
        starts=ends - n_bars,
        ends=ends,
        open=flat([opens] * k, np.float64),
        close=flat([close] * k, np.float64),
        entry=flat([entry for entry, _, _ in signals], bool),
        exit=flat([exit_ for _, exit_, _ in signals], bool),
        initial_cash=per_series([s.initial_cash for s in strategies]).astype(np.float64),
        commission=per_series([s.commission_rate for s in strategies]).astype(np.float64),
        unit=per_series([s.unit for s in strategies]).astype(np.float64),
    )
    series = {
        "series_id": np.arange(n_bars.size, dtype=np.int64),
        "strategy": per_series([s.name for s in strategies]),
        "symbol": np.tile(np.asarray(symbols, dtype=object), k),
        "params_json": per_series([s.params_json() for s in strategies]),
        "warmup": flat([warmup for _, _, warmup in signals], np.int64),
        "n_bars": n_bars,
    }
    return sim, series


def _register_results(
    con: duckdb.DuckDBPyConnection, series: dict[str, np.ndarray], sim: SimInput, ts_us: np.ndarray, result: SimResult,
    clock: Clock,
) -> tuple[dict[str, pa.Table], np.ndarray]:
    """Expose series, the curves' reductions and trades to stats.py's SQL (and return them, with the
    per-bar drawdown)."""
    n_bars = sim.ends - sim.starts
    tr = result.trades
    agg = series_aggregates(sim.starts, sim.ends, ts_us, sim.close, result.equity, clock)
    open_trade = np.zeros(n_bars.size, dtype=bool)
    open_trade[tr.series[tr.is_open]] = True
    ts_type = pa.timestamp("us", tz="UTC")
    base = sim.starts + series["warmup"]
    tables = {
        "_bt_series": pa.table({
            **{k: pa.array(v.tolist() if v.dtype == object else v) for k, v in series.items()},
            "open_trade": open_trade,
            "annual_periods": clock.annual_periods,
            "resolution_us": clock.resolution_us,
            "close_base": sim.close[base] if base.size else np.empty(0),
        }),
        "_bt_equity_agg": pa.table({
            "series_id": agg.series_id,
            "start_ts": pa.array(agg.start_us, pa.int64()).cast(ts_type),
            "end_ts": pa.array(agg.end_us, pa.int64()).cast(ts_type),
            "start_us": agg.start_us,
            "end_us": agg.end_us,
            **{name: pa.array(getattr(agg, name), from_pandas=name in NULL_WHEN_NAN)
               for name in ("equity_first", "equity_final", "equity_peak", "max_drawdown", "mean_nonzero_drawdown",
                            "close_last", "covariance", "market_variance")},
        }),
        "_bt_dd_episodes": pa.table({"series_id": agg.episode_series, "peak_drawdown": agg.episode_peak,
                                     "duration_us": agg.episode_duration_us}),
        "_bt_period_agg": pa.table({"series_id": agg.returns_series, "gmean": agg.returns_gmean,
                                    "variance": pa.array(agg.returns_variance, from_pandas=True),
                                    "downside": agg.returns_downside}),
    }
    closed = ~tr.is_open
    exit_idx = np.where(closed, tr.exit_idx, 0)
    tables["_bt_trades"] = pa.table({
        "series_id": tr.series,
        "strategy": pa.array(series["strategy"][tr.series].tolist(), pa.string()),
        "symbol": pa.array(series["symbol"][tr.series].tolist(), pa.string()),
        # Trades come sorted by series, then entry: numbered from 1 within their series.
        "trade_no": (np.arange(tr.series.size) - np.searchsorted(tr.series, tr.series) + 1).astype(np.int32),
        "entry_bar": tr.entry_idx - sim.starts[tr.series],
        "exit_bar": pa.array(exit_idx - sim.starts[tr.series], mask=~closed),
        "entry_ts": pa.array(ts_us[tr.entry_idx], pa.int64()).cast(ts_type),
        "exit_ts": pa.array(ts_us[exit_idx], pa.int64(), mask=~closed).cast(ts_type),
        "entry_price": tr.entry_price,
        "exit_price": pa.array(tr.exit_price, mask=~closed),
        "mark_price": tr.exit_price,
        "size": tr.size,
        "pnl": tr.pnl,
        "return_pct": tr.return_pct,
        "commission": tr.commission,
        "is_open": tr.is_open,
        "cash_after_entry": tr.cash_after_entry,
        "cash_after_exit": pa.array(tr.cash_after_exit, mask=~closed),
    })
    for name, table in tables.items():
        con.register(name, table)
    return tables, agg.drawdown
