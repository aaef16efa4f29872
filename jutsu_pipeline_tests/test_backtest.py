"""Backtests vs backtesting.py 0.6.6 (test-only oracle) on the real sample bars stored in DuckDB."""

from __future__ import annotations

import datetime as dt
import math
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest
import talib
from backtesting import Backtest, Strategy
from backtesting.lib import FractionalBacktest, crossover

from jutsu_pipeline.backtest import STAT_COLUMNS, StrategyConfig, backtest_bars, run_backtests
from jutsu_pipeline.indicators import compute_indicators
from jutsu_pipeline.providers.sample import SAMPLE_DIR
from jutsu_pipeline.storage.ddl import ensure_schema
from jutsu_pipeline_tests.helpers import bars_versions

SAMPLE = SAMPLE_DIR
REAL = ("AAPL", "FB", "GOOG", "IBM", "MSFT")
NO_TRADES, SHORT, ONE_BAR = "UPTREND", "SHORT", "ONEBAR"
SYMBOLS = (*REAL, NO_TRADES, SHORT, ONE_BAR)
STRATEGIES = (
    StrategyConfig(name="sma_whole", type="sma_cross", params={"fast": 10, "slow": 30}),
    StrategyConfig(name="sma_whole_10bps", type="sma_cross", params={"fast": 10, "slow": 30}, commission_bps=10),
    StrategyConfig(name="sma_frac", type="sma_cross", params={"fast": 10, "slow": 30}, fractional=True),
    StrategyConfig(
        name="sma_frac_10bps", type="sma_cross", params={"fast": 10, "slow": 30}, fractional=True, commission_bps=10
    ),
)
# The provider-adjusted series (prices x adj_close/close) stored as the bars, with no actions: these
# equality tests need the series they were calibrated on. Piecewise-constant back-adjustment keeps the
# exact SMA ties of the raw two-decimal prices, which FractionalBacktest's price scaling breaks either way.
INSERT_BARS = """
INSERT INTO bars
SELECT $symbol, '1d', date::TIMESTAMP AT TIME ZONE 'UTC', open * f, high * f, low * f, close * f, volume / f, NULL,
       'sample', now(), false
FROM (SELECT *, coalesce(adj_close / nullif(close, 0), 1.0) AS f FROM staged)
"""
ORACLE_BARS = """
SELECT ts, open AS "Open", high AS "High", low AS "Low", close AS "Close", volume AS "Volume"
FROM bars_adjusted WHERE symbol = $symbol AND timeframe = '1d' ORDER BY ts
"""


def _sample(symbol: str) -> pl.DataFrame:
    return pl.read_parquet(SAMPLE / f"{symbol}.parquet")


def _synthetic() -> dict[str, pl.DataFrame]:
    """A steady uptrend (SMA10 stays above SMA30: no trade), 20 bars (< SMA30) and a single bar."""
    dates = pd.bdate_range("2010-01-04", periods=200).to_numpy().astype("datetime64[D]")
    close = 100.0 + np.arange(200)
    uptrend = pl.DataFrame({
        "date": dates, "open": close - 0.5, "high": close + 1, "low": close - 1, "close": close,
        "volume": np.full(200, 1e6), "adj_close": close,
    })
    return {NO_TRADES: uptrend, SHORT: _sample("GOOG").head(20), ONE_BAR: _sample("IBM").head(1)}


def _load(con: duckdb.DuckDBPyConnection, frames: dict[str, pl.DataFrame], strategies=STRATEGIES) -> None:  # noqa: ANN001
    """Bars, then the indicators the strategies read (what the indicators asset does before a backtest)."""
    ensure_schema(con)
    for symbol, frame in frames.items():
        con.register("staged", frame.to_arrow())
        con.execute(INSERT_BARS, {"symbol": symbol})
        con.unregister("staged")
    if strategies:
        _indicators(con, list(frames), strategies)


def _indicators(con: duckdb.DuckDBPyConnection, symbols: list[str], strategies) -> None:  # noqa: ANN001
    specs = [spec for s in strategies for spec in s.indicator_specs()]
    compute_indicators(con, timeframe="1d", symbols=symbols, params=specs)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path_factory.mktemp("bt") / "bars.duckdb"))
    _load(con, {**{s: _sample(s) for s in REAL}, **_synthetic()})
    return con


@pytest.fixture(scope="module")
def ours(db: duckdb.DuckDBPyConnection):
    return run_backtests(db, timeframe="1d", symbols=SYMBOLS, strategies=STRATEGIES)


def _sma(values: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib's SMA, the indicator the runtime reads from the indicators table. The rounding matters:
    on AAPL 2003 SMA10 - SMA30 is an exact tie in real arithmetic that pandas rounds to +2.2e-16 and
    others to -1.1e-16, which moves a strict cross by one bar."""
    return talib.SMA(np.asarray(values, dtype=np.float64), n)


class SmaCrossOracle(Strategy):
    fast = 10
    slow = 30

    def init(self) -> None:
        self.sma_fast = self.I(_sma, self.data.Close, self.fast)
        self.sma_slow = self.I(_sma, self.data.Close, self.slow)

    def next(self) -> None:
        if crossover(self.sma_fast, self.sma_slow):
            if not self.position:
                self.buy()
        elif crossover(self.sma_slow, self.sma_fast):
            self.position.close()


def _oracle_frame(con: duckdb.DuckDBPyConnection, symbol: str) -> pd.DataFrame:
    return con.sql(ORACLE_BARS, params={"symbol": symbol}).df().set_index("ts")


def run_oracle(data: pd.DataFrame, strategy: type[Strategy], config: StrategyConfig) -> pd.Series:
    cls = FractionalBacktest if config.fractional else Backtest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(data, strategy, cash=config.initial_cash, commission=config.commission_rate).run()


@pytest.fixture(scope="module")
def oracle(db: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], pd.Series]:
    return {
        (cfg.name, symbol): run_oracle(_oracle_frame(db, symbol), SmaCrossOracle, cfg)
        for cfg in STRATEGIES
        for symbol in SYMBOLS
    }


def _close(ours: object, theirs: object, rel: float) -> bool:
    if isinstance(theirs, pd.Timedelta) or isinstance(ours, dt.timedelta):
        return pd.Timedelta(ours) == theirs
    if isinstance(theirs, pd.Timestamp):
        return pd.Timestamp(ours) == theirs
    theirs = float(theirs)
    if ours is None:
        return math.isnan(theirs)
    if math.isinf(theirs) or theirs == 0:
        return ours == theirs
    return math.isclose(ours, theirs, rel_tol=rel, abs_tol=0)


def assert_stats_equal(row: dict, stats: pd.Series, label: str) -> None:
    for column, key in STAT_COLUMNS.items():
        theirs = stats.get(key, 0.0)  # 'Commissions [$]' is left out by backtesting.py when 0
        assert _close(row[column], theirs, 1e-6), f"{label} {column}: ours={row[column]!r} backtesting={theirs!r}"


def assert_trades_equal(ours_trades: pl.DataFrame, stats: pd.Series, cfg: StrategyConfig, label: str) -> None:
    closed = ours_trades.filter(~pl.col("is_open")).sort("trade_no")
    ref = stats["_trades"]
    assert closed.height == len(ref), label
    assert closed["entry_ts"].to_list() == list(ref["EntryTime"]), label
    assert closed["exit_ts"].to_list() == list(ref["ExitTime"]), label
    assert closed["entry_bar"].to_list() == list(ref["EntryBar"]), label
    assert closed["exit_bar"].to_list() == list(ref["ExitBar"]), label
    np.testing.assert_array_equal(closed["size"].to_numpy(), ref["Size"].to_numpy(float), err_msg=label)
    np.testing.assert_array_equal(closed["entry_price"].to_numpy(), ref["EntryPrice"].to_numpy(float), err_msg=label)
    np.testing.assert_array_equal(closed["exit_price"].to_numpy(), ref["ExitPrice"].to_numpy(float), err_msg=label)
    for ours_col, ref_col in (("pnl", "PnL"), ("return_pct", "ReturnPct"), ("commission", "Commission")):
        np.testing.assert_allclose(closed[ours_col].to_numpy(), ref[ref_col].to_numpy(float), rtol=1e-9, atol=1e-9,
                                   err_msg=f"{label} {ours_col}")
    # The trade still open at the end: not in the stats, reported as open and marked to the last close.
    still_open = ours_trades.filter(pl.col("is_open"))
    active = stats["_strategy"].trades
    assert still_open.height == len(active), label
    for row, trade in zip(still_open.iter_rows(named=True), active):
        assert row["entry_ts"] == trade.entry_time, label
        assert row["size"] == trade.size * cfg.unit, label
        assert row["entry_price"] == trade.entry_price / cfg.unit, label
        assert row["exit_ts"] is None and row["exit_price"] is None, label
        assert math.isclose(row["pnl"], trade.pl, rel_tol=1e-9), label
        assert math.isclose(row["return_pct"], trade.pl_pct, rel_tol=1e-9), label


@pytest.mark.parametrize("cfg", STRATEGIES, ids=lambda c: c.name)
def test_sma_cross_equals_backtesting_py(cfg: StrategyConfig, ours, oracle, db) -> None:
    for symbol in SYMBOLS:
        label = f"{cfg.name}/{symbol}"
        stats = oracle[(cfg.name, symbol)]
        perf = ours.performance.filter((pl.col("strategy") == cfg.name) & (pl.col("symbol") == symbol))
        assert perf.height == 1, label
        assert_stats_equal(perf.row(0, named=True), stats, label)
        trades = ours.trades.filter((pl.col("strategy") == cfg.name) & (pl.col("symbol") == symbol))
        assert_trades_equal(trades, stats, cfg, label)
        curve = ours.equity.filter((pl.col("strategy") == cfg.name) & (pl.col("symbol") == symbol))
        ref = stats["_equity_curve"]
        assert curve["ts"].to_list() == list(ref.index), label
        np.testing.assert_allclose(curve["equity"].to_numpy(), ref["Equity"].to_numpy(), rtol=1e-9, atol=0,
                                   err_msg=label)
        np.testing.assert_allclose(curve["drawdown_pct"].to_numpy(), ref["DrawdownPct"].to_numpy(), rtol=0, atol=1e-12,
                                   err_msg=label)


def test_sample_run_trades_and_commissions(ours) -> None:
    """The sample grid is not degenerate: every real symbol trades, commissions cost money."""
    perf = ours.performance
    real = perf.filter(pl.col("symbol").is_in(REAL))
    assert real["n_trades"].min() > 0
    assert real.filter(pl.col("strategy").str.ends_with("10bps"))["commissions"].min() > 0
    whole = real.filter(pl.col("strategy") == "sma_whole")
    assert (whole["equity_final"] != real.filter(pl.col("strategy") == "sma_frac")["equity_final"]).all()


def test_edge_symbols(ours) -> None:
    """No trades, history shorter than the slow SMA and a single bar: rows with NULL stats, no crash."""
    perf = {r["symbol"]: r for r in ours.performance.filter(pl.col("strategy") == "sma_whole").iter_rows(named=True)}
    for symbol in (NO_TRADES, SHORT, ONE_BAR):
        row = perf[symbol]
        assert row["n_trades"] == 0 and row["equity_final"] == 10_000 and row["return_pct"] == 0
        assert row["sharpe_ratio"] is None and row["win_rate_pct"] is None and row["sqn"] is None
    assert perf[ONE_BAR]["n_bars"] == 1 and perf[ONE_BAR]["return_ann_pct"] is None
    assert ours.trades.filter(pl.col("symbol").is_in([NO_TRADES, SHORT, ONE_BAR])).height == 0


def test_results_are_stored_and_replaced(db, ours) -> None:
    counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
              for t in ("backtest_trades", "backtest_equity", "backtest_performance")}
    assert counts["backtest_performance"] == len(STRATEGIES) * len(SYMBOLS)
    assert counts["backtest_trades"] == ours.trades.height
    assert counts["backtest_equity"] == ours.equity.height
    cols = "start, sharpe_ratio, return_pct, n_trades, open_trade, data_version"
    stored = db.sql(f"SELECT {cols} FROM backtest_performance WHERE symbol = 'GOOG' AND strategy = 'sma_frac_10bps'")
    mine = ours.performance.filter((pl.col("symbol") == "GOOG") & (pl.col("strategy") == "sma_frac_10bps"))
    assert stored.fetchall()[0] == mine.select(cols.split(", ")).row(0)
    # Re-running a subset replaces only that subset, in place.
    snapshot = "SELECT strategy, symbol, data_version, sharpe_ratio FROM backtest_performance ORDER BY ALL"
    before = db.sql(snapshot).fetchall()
    run_backtests(db, timeframe="1d", symbols=["GOOG"], strategies=STRATEGIES[:1])
    after = db.sql(snapshot).fetchall()
    assert before == after
    assert db.execute("SELECT count(*) FROM backtest_equity").fetchall()[0][0] == counts["backtest_equity"]


def test_data_version_tracks_the_bars(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "v.duckdb"))
    _load(con, {"GOOG": _sample("GOOG"), "IBM": _sample("IBM")})
    strategy = STRATEGIES[:1]
    first = run_backtests(con, timeframe="1d", symbols=["GOOG", "IBM"], strategies=strategy).performance
    con.execute("UPDATE bars SET close = close * 1.01 WHERE symbol = 'GOOG' AND ts = (SELECT max(ts) FROM bars)")
    _indicators(con, ["GOOG"], strategy)
    second = run_backtests(con, timeframe="1d", symbols=["GOOG", "IBM"], strategies=strategy).performance
    version = {r["symbol"]: r["data_version"] for r in first.iter_rows(named=True)}
    changed = {r["symbol"]: r["data_version"] for r in second.iter_rows(named=True)}
    # Aggregated from the bars read, it is the documented content hash of the stored bars.
    assert changed == bars_versions(con, timeframe="1d", symbols=["GOOG", "IBM"])
    assert version["IBM"] == changed["IBM"] and version["GOOG"] != changed["GOOG"]
    # A symbol whose bars are gone loses its stored rows.
    con.execute("DELETE FROM bars WHERE symbol = 'IBM'")
    run_backtests(con, timeframe="1d", symbols=["IBM"], strategies=strategy)
    assert con.execute("SELECT count(*) FROM backtest_performance WHERE symbol = 'IBM'").fetchall()[0][0] == 0
    assert con.execute("SELECT count(*) FROM backtest_equity WHERE symbol = 'GOOG'").fetchall()[0][0] > 0


def test_backtests_read_the_stored_indicators_or_say_what_is_missing(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    _load(con, {"GOOG": _sample("GOOG"), "IBM": _sample("IBM")}, strategies=())
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['sma_10', 'sma_30'\].*materialize"):
        run_backtests(con, timeframe="1d", symbols=["GOOG", "IBM"], strategies=STRATEGIES[:1])
    _indicators(con, ["GOOG"], STRATEGIES[:1])  # IBM's rows are missing
    with pytest.raises(ValueError, match=r"no indicators stored for some bars of \['IBM'\]"):
        run_backtests(con, timeframe="1d", symbols=["GOOG", "IBM"], strategies=STRATEGIES[:1])
    compute_indicators(con, timeframe="1d", symbols=["IBM"], params=[])  # IBM's rows, without the SMAs
    with pytest.raises(ValueError, match=r"sma_10 is not computed for \['IBM'\]"):
        run_backtests(con, timeframe="1d", symbols=["GOOG", "IBM"], strategies=STRATEGIES[:1])
    # The backtest trades on the stored values: changing them changes the trades (the lineage is real).
    before = run_backtests(con, timeframe="1d", symbols=["GOOG"], strategies=STRATEGIES[:1]).trades.height
    con.execute("UPDATE indicators SET sma_10 = sma_10 * 1.05 WHERE symbol = 'GOOG'")
    assert run_backtests(con, timeframe="1d", symbols=["GOOG"], strategies=STRATEGIES[:1]).trades.height != before


def _bars_frame(symbol: str, frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        pl.lit(symbol).alias("symbol"),
        pl.col("date").cast(pl.Datetime("us", "UTC")).alias("ts"),
        "open", "high", "low", "close", "volume",
    )


def test_no_look_ahead() -> None:
    """Bars after t never change anything up to t; a signal on t's close fills at t+1's open."""
    goog = _bars_frame("FULL", _sample("GOOG"))
    rng = np.random.default_rng(6)
    cut_at = (400, 1000, 1700)
    frames = [goog]
    for k in cut_at:
        frames.append(goog.head(k + 1).with_columns(pl.lit(f"CUT{k}").alias("symbol")))
        noise = np.r_[np.ones(k + 1), rng.uniform(0.5, 1.5, goog.height - k - 1)]
        frames.append(goog.with_columns(pl.lit(f"PERTURB{k}").alias("symbol"),
                                        *(pl.col(c) * noise for c in ("open", "high", "low", "close"))))
    cfg = StrategyConfig(name="sma", type="sma_cross", params={"fast": 10, "slow": 30}, commission_bps=5)
    res = backtest_bars(pl.concat(frames), [cfg])
    full_eq = res.equity.filter(pl.col("symbol") == "FULL")["equity"].to_numpy()
    full_tr = res.trades.filter(pl.col("symbol") == "FULL")
    for k in cut_at:
        for name in (f"CUT{k}", f"PERTURB{k}"):
            eq = res.equity.filter(pl.col("symbol") == name)["equity"].to_numpy()
            np.testing.assert_array_equal(eq[: k + 1], full_eq[: k + 1], err_msg=name)
            tr = res.trades.filter(pl.col("symbol") == name)
            done = [c for c in full_tr.columns if c not in ("symbol",)]
            expect = full_tr.filter(pl.col("exit_bar") <= k).select(done)
            assert tr.filter(pl.col("exit_bar") <= k).select(done).equals(expect), name
            entered = full_tr.filter(pl.col("entry_bar") <= k).select("entry_ts", "entry_price", "size")
            assert tr.filter(pl.col("entry_bar") <= k).select("entry_ts", "entry_price", "size").equals(entered), name
    # Fills: each entry is at the open of the bar after a strict SMA cross computed from closes only.
    close = _sample("GOOG")["close"].to_numpy()
    opens = _sample("GOOG")["open"].to_numpy()
    fast, slow = _sma(close, 10), _sma(close, 30)
    for row in full_tr.iter_rows(named=True):
        t = row["entry_bar"] - 1
        assert fast[t - 1] < slow[t - 1] and fast[t] > slow[t]
        assert row["entry_price"] == opens[t + 1]


def test_signals_equal_backtesting_crossover_bar_by_bar() -> None:
    """The vectorised sma_cross rule equals ``backtesting.lib.crossover`` evaluated on every bar."""
    goog = _bars_frame("GOOG", _sample("GOOG"))
    close = goog["close"].to_numpy()
    for fast, slow in ((10, 30), (5, 20), (20, 150)):
        cfg = StrategyConfig(name="s", type="sma_cross", params={"fast": fast, "slow": slow})
        a, b = _sma(close, fast), _sma(close, slow)
        entries = [t for t in range(slow + 1, close.size - 1) if crossover(a[: t + 1], b[: t + 1])]
        trades = backtest_bars(goog, [cfg]).trades
        got = [bar - 1 for bar in trades["entry_bar"].to_list()]
        assert got and set(got) <= set(entries)  # entries only act when flat
        exits = [t for t in range(slow + 1, close.size - 1) if crossover(b[: t + 1], a[: t + 1])]
        assert {bar - 1 for bar in trades["exit_bar"].drop_nulls().to_list()} <= set(exits)


class RsiReversionOracle(Strategy):
    period, lower, upper = 14, 30.0, 70.0

    def init(self) -> None:
        self.rsi = self.I(talib.RSI, self.data.Close, self.period)

    def next(self) -> None:
        if crossover(self.lower, self.rsi):
            if not self.position:
                self.buy()
        elif crossover(self.rsi, self.upper):
            self.position.close()


def _bands(close: np.ndarray, period: int, nbdev: float) -> tuple[np.ndarray, np.ndarray]:
    _, middle, lower = talib.BBANDS(close, period, nbdev, nbdev)
    return middle, lower


class BollingerReversionOracle(Strategy):
    period, nbdev = 20, 2.0

    def init(self) -> None:
        self.bands = self.I(_bands, self.data.Close, self.period, self.nbdev)

    def next(self) -> None:
        middle, lower = self.bands[0][-1], self.bands[1][-1]
        if self.data.Close[-1] < lower:
            if not self.position:
                self.buy()
        elif self.data.Close[-1] >= middle:
            self.position.close()


INDICATOR_CASES = (
    (StrategyConfig(name="rsi_14", type="rsi_reversion", params={"period": 14, "lower": 30, "upper": 70}),
     RsiReversionOracle, {}),
    (StrategyConfig(name="rsi_7_10bps", type="rsi_reversion", params={"period": 7, "lower": 25, "upper": 60},
                    commission_bps=10), RsiReversionOracle, {"period": 7, "lower": 25.0, "upper": 60.0}),
    (StrategyConfig(name="bb_20_2", type="bollinger_reversion", params={"period": 20, "nbdev": 2.0}),
     BollingerReversionOracle, {}),
    (StrategyConfig(name="bb_10_1_5_10bps", type="bollinger_reversion", params={"period": 10, "nbdev": 1.5},
                    commission_bps=10), BollingerReversionOracle, {"period": 10, "nbdev": 1.5}),
)


def test_indicator_strategies_equal_backtesting_py(db) -> None:
    """rsi_reversion and bollinger_reversion vs backtesting.py strategies fed by TA-Lib."""
    cur = db.cursor()
    configs = [cfg for cfg, _, _ in INDICATOR_CASES]
    _indicators(cur, list(SYMBOLS), configs)
    res = run_backtests(cur, timeframe="1d", symbols=SYMBOLS, strategies=configs)
    for cfg, oracle_cls, params in INDICATOR_CASES:
        strategy = type(f"{oracle_cls.__name__}_{cfg.name}", (oracle_cls,), params)
        traded = 0
        for symbol in SYMBOLS:
            label = f"{cfg.name}/{symbol}"
            stats = run_oracle(_oracle_frame(cur, symbol), strategy, cfg)
            pick = (pl.col("strategy") == cfg.name) & (pl.col("symbol") == symbol)
            assert_stats_equal(res.performance.filter(pick).row(0, named=True), stats, label)
            assert_trades_equal(res.trades.filter(pick), stats, cfg, label)
            curve = res.equity.filter(pick)
            np.testing.assert_allclose(curve["equity"].to_numpy(), stats["_equity_curve"]["Equity"].to_numpy(),
                                       rtol=1e-9, atol=0, err_msg=label)
            traded += stats["# Trades"]
        assert traded > 0, cfg.name


def test_stored_equity_view_equals_the_run(db, ours) -> None:
    """backtest_equity (a row view over the stored curves) gives back every bar's equity and drawdown."""
    stored = db.sql("SELECT strategy, symbol, ts, equity, drawdown_pct FROM backtest_equity "
                    "WHERE strategy IN (SELECT unnest($s)) ORDER BY strategy, symbol, ts",
                    params={"s": [c.name for c in STRATEGIES]}).pl().sort("strategy", "symbol", "ts")
    mine = ours.equity.with_columns(pl.col("strategy", "symbol").cast(pl.String)).sort("strategy", "symbol", "ts")
    assert stored["ts"].to_list() == mine["ts"].to_list()
    assert stored["symbol"].to_list() == mine["symbol"].to_list()
    np.testing.assert_array_equal(stored["equity"].to_numpy(), mine["equity"].to_numpy())
    np.testing.assert_array_equal(stored["drawdown_pct"].to_numpy(), mine["drawdown_pct"].to_numpy())


def test_equity_view_marks_each_result_to_the_bars_it_read(tmp_path: Path) -> None:
    """With a split stored, the same strategy on adjusted and on raw prices trades differently; the view
    derives each one's curve from its own trades and bars, bit for bit."""
    con = duckdb.connect(str(tmp_path / "a.duckdb"))
    _load(con, {"GOOG": _sample("GOOG")}, strategies=())
    con.execute("INSERT INTO corporate_actions VALUES ('GOOG', '2008-06-02', 'split', 2.0, NULL, 'USD', 'files', now())")
    _indicators(con, ["GOOG"], STRATEGIES[:1])
    runs = [run_backtests(con, timeframe="1d", symbols=["GOOG"], strategies=[STRATEGIES[0]]),
            run_backtests(con, timeframe="1d", symbols=["GOOG"], adjusted=False,
                          strategies=[STRATEGIES[0].model_copy(update={"name": "sma_raw"})])]
    stored = con.sql("SELECT strategy, ts, equity, drawdown_pct FROM backtest_equity ORDER BY strategy, ts").pl()
    mine = pl.concat([r.equity.select(pl.col("strategy").cast(pl.String), "ts", "equity", "drawdown_pct")
                      for r in runs]).sort("strategy", "ts")
    assert stored["ts"].to_list() == mine["ts"].to_list()
    np.testing.assert_array_equal(stored["equity"].to_numpy(), mine["equity"].to_numpy())
    np.testing.assert_array_equal(stored["drawdown_pct"].to_numpy(), mine["drawdown_pct"].to_numpy())
    assert runs[0].performance["equity_final"][0] != runs[1].performance["equity_final"][0]


def test_a_file_of_the_older_layout_loses_its_stored_curves(tmp_path: Path) -> None:
    """The curves were stored in `backtest_equity_curves` (and trades without cash): the table goes, the
    columns come, and the view derives the curves of the next run."""
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    _load(con, {"GOOG": _sample("GOOG")}, strategies=STRATEGIES[:1])
    run_backtests(con, timeframe="1d", symbols=["GOOG"], strategies=STRATEGIES[:1])
    con.execute("CREATE TABLE backtest_equity_curves (strategy VARCHAR, symbol VARCHAR, timeframe VARCHAR, "
                "ts TIMESTAMPTZ[], equity DOUBLE[])")
    con.execute("CREATE OR REPLACE VIEW backtest_equity AS SELECT * FROM backtest_equity_curves")
    for table, column in (("backtest_trades", "cash_after_entry"), ("backtest_trades", "cash_after_exit"),
                          ("backtest_performance", "adjusted")):
        con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    result = run_backtests(con, timeframe="1d", symbols=["GOOG"], strategies=STRATEGIES[:1])
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'backtest_equity_curves'"
                       ).fetchall()[0][0] == 0
    stored = con.sql("SELECT equity FROM backtest_equity ORDER BY ts").fetchnumpy()["equity"]
    np.testing.assert_array_equal(stored, result.equity["equity"].to_numpy())
