"""Indicators equal TA-Lib 0.8 (the oracle) through DuckDB and in memory, edge cases, no look-ahead."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jutsu_pipeline.indicators import IndicatorParams, compute_indicators, ensure_indicator_schema, indicator_frame
from jutsu_pipeline.indicators.registry import DECAY, IndicatorSpec
from jutsu_pipeline.providers.sample import SAMPLE_DIR
from jutsu_pipeline.storage.ddl import ensure_schema
from jutsu_pipeline.storage.indicators import input_versions
from jutsu_pipeline.storage.scope import ROW_HASH
from jutsu_pipeline_tests.conftest import kill_at_pause
from jutsu_pipeline_tests.helpers import bars_versions

SAMPLE_SYMBOLS = ("AAPL", "FB", "GOOG", "IBM", "MSFT")
ATOL = 1e-8
DEFAULT = IndicatorParams()
CUSTOM = IndicatorParams(
    sma_period=7, ema_period=9, rsi_period=5, bbands_period=10, bbands_stdev=2.5, macd_fast=5,
    macd_slow=13, macd_signal=4, atr_period=3, stoch_fastk=9, stoch_slowk=4, stoch_slowd=2,
)  # fmt: skip


def talib_reference(bars: pl.DataFrame, params: IndicatorParams) -> dict[str, np.ndarray]:
    """TA-Lib's outputs for ONE symbol's bars (sorted by ts), keyed by our column names."""
    h, low, c, v = (bars.get_column(k).to_numpy().astype(np.float64) for k in ("high", "low", "close", "volume"))
    p, names = params, params.columns()
    upper, middle, lower = talib.BBANDS(c, p.bbands_period, p.bbands_stdev, p.bbands_stdev, 0)
    line, signal, hist = talib.MACD(c, p.macd_fast, p.macd_slow, p.macd_signal)
    slow_k, slow_d = talib.STOCH(h, low, c, p.stoch_fastk, p.stoch_slowk, 0, p.stoch_slowd, 0)
    return {
        names.sma: talib.SMA(c, p.sma_period),
        names.ema: talib.EMA(c, p.ema_period),
        names.rsi: talib.RSI(c, p.rsi_period),
        names.bb_upper: upper,
        names.bb_middle: middle,
        names.bb_lower: lower,
        names.macd: line,
        names.macd_signal: signal,
        names.macd_hist: hist,
        names.atr: talib.ATR(h, low, c, p.atr_period),
        names.stoch_k: slow_k,
        names.stoch_d: slow_d,
        names.obv: talib.OBV(c, v),
    }


def assert_matches_talib(
    bars: pl.DataFrame,
    result: pl.DataFrame,
    params: IndicatorParams,
    atol: float = ATOL,
    rtol: float = 0.0,
    column_rtol: dict[str, float] | None = None,
) -> None:
    """Every symbol of `result` equals TA-Lib on that symbol's bars; NaN exactly where TA-Lib's NaN is NULL."""
    bars = bars.sort("symbol", "ts")
    assert result.select("symbol", "ts").equals(bars.select("symbol", "ts"))
    for (symbol,), group in bars.group_by("symbol", maintain_order=True):
        ours = result.filter(pl.col("symbol") == symbol)
        for column, expected in talib_reference(group, params).items():
            series = ours.get_column(column)
            assert series.is_nan().sum() == 0, f"{symbol} {column}: NaN must be stored as NULL"
            got = series.to_numpy().astype(np.float64)  # NULL -> NaN
            np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{symbol} {column} NULLs")
            np.testing.assert_allclose(got, expected, rtol=(column_rtol or {}).get(column, rtol), atol=atol, err_msg=f"{symbol} {column}")


def make_bars(symbol: str, close: np.ndarray, *, spread: float = 0.01, start: dt.date = dt.date(2020, 1, 1)) -> pl.DataFrame:
    """Daily bars around `close`: high/low at +-spread*|close|, volumes 1000+i (deterministic)."""
    n = close.shape[0]
    ts = [dt.datetime.combine(start + dt.timedelta(days=i), dt.time(), dt.timezone.utc) for i in range(n)]
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "ts": ts,
            "open": close,
            "high": close + spread * np.abs(close),
            "low": close - spread * np.abs(close),
            "close": close,
            "volume": 1000.0 + np.arange(n, dtype=np.float64),
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def random_walk(n: int, seed: int, scale: float = 100.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return scale * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file holding the five sample symbols' daily bars (adj_close included)."""
    path = tmp_path_factory.mktemp("indicators") / "sample.duckdb"
    with duckdb.connect(str(path)) as con:
        ensure_schema(con)
        for symbol in SAMPLE_SYMBOLS:
            frame = pl.read_parquet(SAMPLE_DIR / f"{symbol}.parquet").select(
                pl.lit(symbol).alias("symbol"),
                pl.col("date").cast(pl.Datetime("us", "UTC")).alias("ts"),
                "open", "high", "low", "close", "volume", "adj_close",
            )  # fmt: skip
            con.register("frame", frame.to_arrow())
            con.execute(
                "INSERT INTO bars SELECT symbol, '1d', ts, open, high, low, close, volume, adj_close, "
                "'sample', now(), false FROM frame"
            )
            con.unregister("frame")
    return path


def adjusted_bars(con: duckdb.DuckDBPyConnection, symbols: tuple[str, ...]) -> pl.DataFrame:
    return pl.from_arrow(
        con.sql(
            "SELECT symbol, ts, open, high, low, close, volume FROM bars_adjusted "
            "WHERE timeframe = '1d' AND list_contains($s, symbol) ORDER BY symbol, ts",
            params={"s": list(symbols)},
        ).to_arrow_table()
    )


def stored_indicators(con: duckdb.DuckDBPyConnection, params: IndicatorParams) -> pl.DataFrame:
    cols = ", ".join(f'"{c}"' for c in params.column_names())
    return pl.from_arrow(
        con.sql(f"SELECT symbol, ts, {cols} FROM indicators WHERE timeframe = '1d' ORDER BY symbol, ts").to_arrow_table()
    )


@pytest.mark.parametrize("params", [DEFAULT, CUSTOM], ids=["default", "custom"])
def test_duckdb_parity_on_all_sample_symbols(sample_db: Path, tmp_path: Path, params: IndicatorParams) -> None:
    path = tmp_path / "copy.duckdb"
    path.write_bytes(sample_db.read_bytes())
    with duckdb.connect(str(path)) as con:
        written = compute_indicators(con, timeframe="1d", symbols=list(SAMPLE_SYMBOLS), params=params)
        bars = adjusted_bars(con, SAMPLE_SYMBOLS)
        assert written == bars.height
        assert_matches_talib(bars, stored_indicators(con, params), params)


def test_default_column_names_follow_the_issue() -> None:
    assert DEFAULT.column_names() == (
        "sma_20", "ema_20", "rsi_14", "bb_upper_20_2", "bb_middle_20_2", "bb_lower_20_2", "macd_12_26_9",
        "macd_signal_12_26_9", "macd_hist_12_26_9", "atr_14", "stoch_k_5_3_3", "stoch_d_5_3_3", "obv",
    )  # fmt: skip
    assert CUSTOM.columns().bb_upper == "bb_upper_10_2_5"
    assert DEFAULT.lookbacks()["macd_12_26_9"] == 33 and DEFAULT.lookbacks()["stoch_k_5_3_3"] == 8


@pytest.mark.parametrize(
    "bad",
    [{"macd_fast": 26, "macd_slow": 12}, {"sma_period": 1}, {"bbands_stdev": 2.00001}, {"bbands_stdev": float("nan")}, {"rsi": 3}],
)
def test_invalid_params_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        IndicatorParams(**bad)


def test_frame_is_order_independent_and_matches_talib() -> None:
    bars = pl.concat([make_bars("B", random_walk(300, 1)), make_bars("A", random_walk(120, 2))])
    shuffled = bars.sample(fraction=1.0, shuffle=True, seed=7)
    result = indicator_frame(shuffled, DEFAULT)
    assert result.columns == ["symbol", "ts", *DEFAULT.column_names()]
    assert_matches_talib(bars, result, DEFAULT)


@pytest.mark.parametrize("n", [1, 2, 8, 9, 14, 15, 19, 20, 33, 34])
def test_series_around_the_lookbacks(n: int) -> None:
    """Shorter than, equal to and just past every lookback; a single bar has only OBV = volume[0]."""
    bars = make_bars("S", random_walk(n, n))
    result = indicator_frame(bars, DEFAULT)
    assert_matches_talib(bars, result, DEFAULT)
    if n == 1:
        assert result.row(0, named=True) | {"symbol": None, "ts": None} == {
            "symbol": None, "ts": None, **{c: None for c in DEFAULT.column_names()}, "obv": 1000.0
        }  # fmt: skip


@pytest.mark.parametrize("level", [100.1, 1e-6 * 3.3, 1e9 + 0.3])
def test_flat_series(level: float) -> None:
    """Flat: RSI 0, Bollinger width 0, stoch fastK 0 (hence %K and %D 0), ATR 0, MACD 0, OBV volume[0]."""
    bars = make_bars("F", np.full(60, level), spread=0.0)
    result = indicator_frame(bars, DEFAULT)
    assert_matches_talib(bars, result, DEFAULT)
    tail = result.slice(40)
    assert (tail["rsi_14"] == 0.0).all() and (tail["stoch_k_5_3_3"] == 0.0).all() and (tail["stoch_d_5_3_3"] == 0.0).all()
    assert (tail["bb_upper_20_2"] == tail["bb_middle_20_2"]).all() and (tail["bb_lower_20_2"] == tail["bb_middle_20_2"]).all()
    assert (tail["atr_14"] == 0.0).all() and (tail["obv"] == 1000.0).all()


def test_small_prices() -> None:
    """At 1e-6 an absolute 1e-8 would be vacuous: price-valued outputs must also agree to 1e-12 relative."""
    bars = make_bars("T", random_walk(400, 3, scale=1e-6))
    assert_matches_talib(bars, indicator_frame(bars, DEFAULT), DEFAULT, atol=1e-20, rtol=1e-12)


def test_large_prices() -> None:
    """At 1e9 one ULP is 1.2e-7 > 1e-8: parity is 4 ULPs of the price level, and 1e-13 relative for
    the Bollinger bands, whose variance TA-Lib 0.8 rounds differently (see docs/indicators.md)."""
    ulps = 4 * float(np.spacing(2e9))
    bands = {DEFAULT.columns().bb_upper: 1e-13, DEFAULT.columns().bb_lower: 1e-13}
    for bars in (make_bars("L", random_walk(400, 4, scale=1e9)), make_bars("M", 1e9 + np.repeat(np.arange(20.0), 20))):
        assert_matches_talib(bars, indicator_frame(bars, DEFAULT), DEFAULT, atol=ulps, column_rtol=bands)


def test_gap_is_just_fewer_bars() -> None:
    """Missing dates are not NaN bars: indicators run over the bars present, like TA-Lib on that array."""
    full = make_bars("G", random_walk(200, 5))
    gapped = full.filter((pl.col("ts").dt.day() > 0) & ~pl.int_range(pl.len()).is_between(80, 109))
    result = indicator_frame(gapped, DEFAULT)
    assert_matches_talib(gapped, result, DEFAULT)
    before = result.filter(pl.col("ts") < full["ts"][80])
    assert before.equals(indicator_frame(full, DEFAULT).filter(pl.col("ts") < full["ts"][80]))
    first_after = result.filter(pl.col("ts") == full["ts"][110])
    assert first_after["sma_20"][0] == pytest.approx(float(gapped["close"][61:81].mean()), abs=1e-9)


def test_interior_nan_is_rejected() -> None:
    close = random_walk(50, 6)
    close[10] = np.nan
    with pytest.raises(ValueError, match="finite"):
        indicator_frame(make_bars("N", close), DEFAULT)


def test_duplicate_bars_are_rejected() -> None:
    bars = make_bars("D", random_walk(30, 8))
    with pytest.raises(ValueError, match="duplicate"):
        indicator_frame(pl.concat([bars, bars.slice(3, 1)]), DEFAULT)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=1, max_value=120),
    cut=st.integers(min_value=1, max_value=120),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    flat_run=st.booleans(),
)
def test_no_look_ahead(n: int, cut: int, seed: int, flat_run: bool) -> None:
    """Truncating future bars never changes any earlier value (bit for bit, NULLs included)."""
    close = random_walk(n, seed)
    if flat_run and n > 10:
        close[n // 3 : n // 3 + 10] = close[n // 3]
    bars = pl.concat([make_bars("X", close), make_bars("Y", close[::-1].copy())])
    full = indicator_frame(bars, CUSTOM)
    keep = min(cut, n)
    truncated = indicator_frame(bars.filter(pl.int_range(pl.len()).over("symbol") < keep), CUSTOM)
    expected = full.filter(pl.int_range(pl.len()).over("symbol") < keep)
    assert truncated.equals(expected, null_equal=True)


def test_replace_is_per_symbol_and_transactional(sample_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "copy.duckdb"
    path.write_bytes(sample_db.read_bytes())
    with duckdb.connect(str(path)) as con:
        compute_indicators(con, timeframe="1d", symbols=list(SAMPLE_SYMBOLS), params=DEFAULT)
        assert con.execute("FROM duckdb_variables()").fetchall() == []  # the read's bound variables are reset
        before = stored_indicators(con, DEFAULT)
        con.execute("UPDATE bars SET close = close * 1.5, adj_close = adj_close * 1.5 WHERE symbol = 'IBM' AND ts >= '2010-01-01'")
        compute_indicators(con, timeframe="1d", symbols=["IBM"], params=DEFAULT)
        after = stored_indicators(con, DEFAULT)
        others = pl.col("symbol") != "IBM"
        assert after.filter(others).equals(before.filter(others), null_equal=True)
        assert not after.filter(~others).equals(before.filter(~others), null_equal=True)
        assert_matches_talib(adjusted_bars(con, ("IBM",)), after.filter(~others), DEFAULT)
        # symbols whose bars disappeared lose their rows; unknown symbols write nothing
        con.execute("DELETE FROM bars WHERE symbol = 'FB'")
        assert compute_indicators(con, timeframe="1d", symbols=["FB", "NOPE"], params=DEFAULT) == 0
        assert con.execute("SELECT count(*) FROM indicators WHERE symbol = 'FB'").fetchone()[0] == 0
        # a failure inside the transaction leaves the table untouched
        count = con.execute("SELECT count(*) FROM indicators").fetchone()[0]
        con.execute("INSERT INTO bars VALUES ('GOOG', '1d', '2030-01-01', 1, 1, 1, 'nan'::DOUBLE, 1, NULL, 'x', now(), false)")
        with pytest.raises(ValueError, match="finite"):
            compute_indicators(con, timeframe="1d", symbols=["GOOG"], params=DEFAULT)
        assert con.execute("SELECT count(*) FROM indicators").fetchone()[0] == count



def table_oid(con: duckdb.DuckDBPyConnection) -> int:
    """Changes when a full refresh swapped in a new `indicators` table."""
    return con.execute("SELECT table_oid FROM duckdb_tables() WHERE table_name = 'indicators'").fetchone()[0]


def test_a_full_refresh_of_every_row_swaps_the_table_and_keeps_the_rest(sample_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "copy.duckdb"
    path.write_bytes(sample_db.read_bytes())
    symbols = list(SAMPLE_SYMBOLS)
    with duckdb.connect(str(path)) as con:
        compute_indicators(con, timeframe="1d", symbols=symbols, params=CUSTOM)  # CUSTOM's columns first
        oid = table_oid(con)
        con.execute("UPDATE bars SET close = close * 1.5 WHERE symbol = 'IBM'")
        compute_indicators(con, timeframe="1d", symbols=symbols, params=DEFAULT)  # every row: swapped
        assert table_oid(con) != oid
        assert_matches_talib(adjusted_bars(con, SAMPLE_SYMBOLS), stored_indicators(con, DEFAULT), DEFAULT)
        assert con.execute("SELECT count(*) FROM indicators WHERE sma_7 IS NOT NULL").fetchone() == (0,)  # replaced
        columns = [c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'indicators' "
                                            "AND NOT is_nullable").fetchall()]
        assert columns == ["symbol", "timeframe", "ts"]  # the same DDL
        assert con.execute("SELECT count(*) FROM bars_with_indicators WHERE sma_20 IS NOT NULL").fetchone()[0] > 0
        # Rows outside the scope (another symbol, another timeframe) are deleted around, not swapped away.
        before = stored_indicators(con, DEFAULT)
        con.execute("INSERT INTO indicators (symbol, timeframe, ts) VALUES ('IBM', '1h', '2020-01-01')")
        oid = table_oid(con)
        compute_indicators(con, timeframe="1d", symbols=symbols, params=DEFAULT)
        compute_indicators(con, timeframe="1d", symbols=["IBM"], params=DEFAULT)
        assert table_oid(con) == oid and con.execute("SELECT count(*) FROM indicators WHERE timeframe = '1h'").fetchone() == (1,)
        assert stored_indicators(con, DEFAULT).equals(before, null_equal=True)
        # A user's index would be lost by a swap: such a table is refreshed in place.
        con.execute("DELETE FROM indicators WHERE timeframe = '1h'")
        con.execute("CREATE INDEX by_symbol ON indicators (symbol)")
        compute_indicators(con, timeframe="1d", symbols=symbols, params=DEFAULT)
        assert table_oid(con) == oid and stored_indicators(con, DEFAULT).equals(before, null_equal=True)


def compressions(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """The codecs of each `indicators` column's checkpointed segments."""
    con.execute("CHECKPOINT")
    rows = con.execute("SELECT column_name, list(DISTINCT compression) FROM pragma_storage_info('indicators') "
                       "WHERE segment_type <> 'VALIDITY' GROUP BY column_name").fetchall()
    return {column: set(codecs) for column, codecs in rows}


def test_indicator_columns_are_stored_uncompressed_also_after_a_swap(sample_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "copy.duckdb"
    path.write_bytes(sample_db.read_bytes())
    symbols = list(SAMPLE_SYMBOLS)
    with duckdb.connect(str(path)) as con:
        # A table made before this choice: its indicator columns compressed with DuckDB's default codec.
        con.execute("CREATE TABLE indicators (symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, "
                    "ts TIMESTAMPTZ NOT NULL, sma_7 DOUBLE)")
        con.execute("INSERT INTO indicators SELECT symbol, timeframe, ts, close FROM bars")
        assert compressions(con)["sma_7"] != {"Uncompressed"}
        compute_indicators(con, timeframe="1d", symbols=["IBM"], params=DEFAULT)  # in place: columns added
        codecs = compressions(con)
        assert all(codecs[c] == {"Uncompressed"} for c in DEFAULT.column_names())
        oid = table_oid(con)
        compute_indicators(con, timeframe="1d", symbols=symbols, params=DEFAULT)  # every row: swapped
        assert table_oid(con) != oid
        codecs = compressions(con)
        assert all(codecs[c] == {"Uncompressed"} for c in DEFAULT.column_names())  # sma_7, all NULL now: Constant
        assert codecs["symbol"] != {"Uncompressed"}  # the key columns keep DuckDB's choice
        assert_matches_talib(adjusted_bars(con, SAMPLE_SYMBOLS), stored_indicators(con, DEFAULT), DEFAULT)


KILLED_REFRESH = """
import os, sys, time
from pathlib import Path
import duckdb
sys.path.insert(0, {repo!r})
import jutsu_pipeline.storage.indicators as storage
from jutsu_pipeline.indicators import IndicatorParams, compute_indicators

def pause(*args):  # the parent kills this process here
    Path({marker!r}).write_text(str(os.getpid()))
    while True:
        time.sleep(0.5)

swapped = storage._swapped
if {point!r} == "in_transaction":  # the new table swapped in, nothing inserted or committed
    storage._swapped = lambda *args: swapped(*args) and pause()
con = duckdb.connect({database!r})
compute_indicators(con, timeframe="1d", symbols={symbols!r}, params=IndicatorParams())
pause()  # committed, its WAL not checkpointed: reopening replays the swap
"""


@pytest.mark.parametrize("point", ["in_transaction", "after_commit"])
def test_a_kill_during_a_swapping_refresh_leaves_the_old_rows_or_the_new(sample_db: Path, tmp_path: Path,
                                                                          point: str) -> None:
    database, marker = tmp_path / "kill.duckdb", tmp_path / "marker"
    database.write_bytes(sample_db.read_bytes())
    with duckdb.connect(str(database)) as con:
        compute_indicators(con, timeframe="1d", symbols=list(SAMPLE_SYMBOLS), params=DEFAULT)
        assert con.execute("FROM duckdb_variables()").fetchall() == []  # the read's bound variables are reset
        before = stored_indicators(con, DEFAULT)
        con.execute("UPDATE bars SET close = close * 2")
    script = KILLED_REFRESH.format(repo=str(Path(__file__).resolve().parents[1]), marker=str(marker),
                                   database=str(database), point=point, symbols=list(SAMPLE_SYMBOLS))
    kill_at_pause(script, marker)
    with duckdb.connect(str(database)) as con:
        after = stored_indicators(con, DEFAULT)
        if point == "in_transaction":
            assert after.equals(before, null_equal=True)
        else:
            assert_matches_talib(adjusted_bars(con, SAMPLE_SYMBOLS), after, DEFAULT)
            assert not after.equals(before, null_equal=True)
        assert compute_indicators(con, timeframe="1d", symbols=list(SAMPLE_SYMBOLS), params=DEFAULT) == after.height

def test_schema_migration_and_view(sample_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "copy.duckdb"
    path.write_bytes(sample_db.read_bytes())
    with duckdb.connect(str(path)) as con:
        assert ensure_indicator_schema(con, DEFAULT) == list(DEFAULT.column_names())
        assert ensure_indicator_schema(con, DEFAULT) == []
        compute_indicators(con, timeframe="1d", symbols=["GOOG"], params=DEFAULT)
        compute_indicators(con, timeframe="1d", symbols=["MSFT"], params=CUSTOM)  # adds CUSTOM's columns
        view = pl.from_arrow(con.sql("SELECT * FROM bars_with_indicators WHERE timeframe = '1d'").to_arrow_table())
        assert {"open", "adjustment_factor", "sma_20", "sma_7", "bb_upper_10_2_5"} <= set(view.columns)
        goog, msft = (view.filter(pl.col("symbol") == s).sort("ts") for s in ("GOOG", "MSFT"))
        assert goog["sma_20"].null_count() == 19 and goog["sma_7"].null_count() == goog.height
        assert msft["sma_7"].null_count() == 6 and msft["sma_20"].null_count() == msft.height
        assert view.filter(pl.col("symbol") == "AAPL")["sma_20"].null_count() == 3270  # not computed yet
        assert view.height == con.execute("SELECT count(*) FROM bars").fetchone()[0]


def test_docs_list_exactly_the_registry() -> None:
    """docs/indicators.md's table is the built-in registry (name, TA-Lib function, outputs, defaults)."""
    from jutsu_pipeline.indicators.registry import BUILTIN

    text = (Path(__file__).resolve().parents[1] / "docs" / "indicators.md").read_text()
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r[0].strip() for r in rows] == [i.name for i in BUILTIN]
    for row, indicator in zip(rows, BUILTIN):
        assert row[1].split()[0] == indicator.function
        assert [o.strip() for o in row[3].split(",")] == list(indicator.outputs)
        documented = row[4].strip()
        assert documented == (", ".join(f"{k} {p.default}" for k, p in indicator.params.items()) or "—")


# Incremental runs: TA-Lib over a warm-up window before the new bars, against TA-Lib over the whole
# history. Windowed indicators differ only by the rounding of TA-Lib's running sums, recursive ones by at
# most DECAY (1e-12) of their seed's weight: both stay within this, relative to max(1, |value|).
INCREMENTAL_TOLERANCE = 1e-11


def assert_close_to_talib(bars: pl.DataFrame, stored: pl.DataFrame, params: IndicatorParams) -> None:
    assert stored.select("symbol", "ts").equals(bars.select("symbol", "ts"))
    for (symbol,), group in bars.group_by("symbol", maintain_order=True):
        ours = stored.filter(pl.col("symbol") == symbol)
        for column, expected in talib_reference(group, params).items():
            got = ours.get_column(column).to_numpy().astype(np.float64)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{symbol} {column} NULLs")
            error = np.nanmax(np.abs(got - expected) / np.maximum(1.0, np.abs(expected)), initial=0.0)
            assert error <= INCREMENTAL_TOLERANCE, f"{symbol} {column}: {error:.2e} from full-history TA-Lib"


def hold_back(con: duckdb.DuckDBPyConnection, sessions: int) -> None:
    """Move each symbol's last `sessions` bars to table `held` (the closes still to come)."""
    con.execute("CREATE OR REPLACE TABLE held AS SELECT * FROM bars "
                "QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY ts DESC) <= $n", {"n": sessions})
    con.execute("DELETE FROM bars WHERE (symbol, ts) IN (SELECT (symbol, ts) FROM held)")


def assert_inputs_record_the_bars(con: duckdb.DuckDBPyConnection) -> None:
    """Each symbol's input record (folded in memory, extended by each close) is its bars' SQL aggregate,
    and the data version it gives is theirs."""
    recorded = con.execute("SELECT symbol, bars, first_ts, last_ts, content FROM indicator_inputs ORDER BY symbol").fetchall()
    assert recorded == con.execute(
        f"SELECT symbol, count(*), min(ts), max(ts), bit_xor({ROW_HASH}) FROM bars_adjusted GROUP BY symbol ORDER BY symbol"
    ).fetchall()
    symbols = [row[0] for row in recorded]
    assert input_versions(con, timeframe="1d", symbols=symbols) == bars_versions(con, timeframe="1d", symbols=symbols)


@pytest.mark.parametrize("params", [DEFAULT, CUSTOM], ids=["default", "custom"])
def test_incremental_close_equals_full_history_talib(sample_db: Path, tmp_path: Path, params: IndicatorParams) -> None:
    path = tmp_path / "copy.duckdb"
    path.write_bytes(sample_db.read_bytes())
    symbols = list(SAMPLE_SYMBOLS)
    with duckdb.connect(str(path)) as con:
        hold_back(con, 3)
        first = compute_indicators(con, timeframe="1d", symbols=symbols, params=params, incremental=True)
        assert first == con.execute("SELECT count(*) FROM bars").fetchone()[0]  # nothing stored: every bar
        assert_inputs_record_the_bars(con)
        assert compute_indicators(con, timeframe="1d", symbols=symbols, params=params, incremental=True) == 0
        before = stored_indicators(con, params)
        for day in range(3):  # three daily closes, one bar per symbol each
            con.execute("INSERT INTO bars SELECT * EXCLUDE (n) FROM (SELECT *, row_number() OVER "
                        "(PARTITION BY symbol ORDER BY ts) AS n FROM held) WHERE n = $day", {"day": day + 1})
            written = compute_indicators(con, timeframe="1d", symbols=symbols, params=params, incremental=True)
            assert written == len(symbols)  # only the new rows
            assert_inputs_record_the_bars(con)
        after = stored_indicators(con, params)
        assert after.join(before, on=["symbol", "ts"], how="semi").equals(before, null_equal=True)  # kept as stored
        assert_close_to_talib(adjusted_bars(con, SAMPLE_SYMBOLS), after, params)
        assert compute_indicators(con, timeframe="1d", symbols=symbols, params=params) == after.height  # full run
        assert_matches_talib(adjusted_bars(con, SAMPLE_SYMBOLS), stored_indicators(con, params), params)


def test_incremental_recomputes_a_changed_history_whole(sample_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "copy.duckdb"
    path.write_bytes(sample_db.read_bytes())
    symbols = list(SAMPLE_SYMBOLS)
    with duckdb.connect(str(path)) as con:
        count = dict(con.execute("SELECT symbol, count(*) FROM bars GROUP BY symbol").fetchall())
        compute_indicators(con, timeframe="1d", symbols=symbols, params=DEFAULT, incremental=True)
        # a revised bar inside IBM's history: IBM whole, nothing else
        con.execute("UPDATE bars SET close = close * 1.01 WHERE symbol = 'IBM' AND ts = '2010-06-01'")
        assert compute_indicators(con, timeframe="1d", symbols=symbols, params=DEFAULT, incremental=True) == count["IBM"]
        # a deleted bar inside MSFT's history
        con.execute("DELETE FROM bars WHERE symbol = 'MSFT' AND ts = '2012-03-01'")
        assert compute_indicators(con, timeframe="1d", symbols=symbols, params=DEFAULT, incremental=True) == count["MSFT"] - 1
        # a split re-adjusts GOOG's whole history in bars_adjusted
        con.execute("INSERT INTO corporate_actions VALUES ('GOOG', '2010-01-04', 'split', 2.0, NULL, 'USD', 'files', now())")
        assert compute_indicators(con, timeframe="1d", symbols=symbols, params=DEFAULT, incremental=True) == count["GOOG"]
        # other columns (a strategy's SMA added to the set): recomputed whole
        specs = [*DEFAULT.specs(), IndicatorSpec.of("sma", period=10)]
        assert compute_indicators(con, timeframe="1d", symbols=["AAPL"], params=specs, incremental=True) == count["AAPL"]
        assert compute_indicators(con, timeframe="1d", symbols=symbols, params=DEFAULT, incremental=True) == count["AAPL"]
        assert_inputs_record_the_bars(con)
        assert_close_to_talib(adjusted_bars(con, SAMPLE_SYMBOLS), stored_indicators(con, DEFAULT), DEFAULT)


def test_input_records_without_first_ts_are_migrated_and_recomputed_once(sample_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "copy.duckdb"
    path.write_bytes(sample_db.read_bytes())
    symbols = list(SAMPLE_SYMBOLS)
    with duckdb.connect(str(path)) as con:
        compute_indicators(con, timeframe="1d", symbols=symbols, params=DEFAULT)
        con.execute("ALTER TABLE indicator_inputs DROP COLUMN first_ts")  # a file from before the column
        assert compute_indicators(con, timeframe="1d", symbols=symbols, params=DEFAULT, incremental=True) == \
            con.execute("SELECT count(*) FROM bars").fetchone()[0]  # old records are not trusted: every bar
        assert_inputs_record_the_bars(con)
        assert compute_indicators(con, timeframe="1d", symbols=symbols, params=DEFAULT, incremental=True) == 0


def test_warmups_cover_the_lookback_and_the_decay() -> None:
    """Windowed: exactly the lookback; recursive: (1 - alpha)^(warm-up - lookback) <= DECAY."""
    specs = {s.name: s for s in DEFAULT.specs()}
    for name in ("sma", "bbands", "stoch"):
        assert specs[name].warmup_bars() == specs[name].lookback()
    assert specs["obv"].warmup_bars() == 1  # the stored value it continues from
    for name, alpha in (("ema", 2 / 21), ("rsi", 1 / 14), ("atr", 1 / 14)):
        extra = specs[name].warmup_bars() - specs[name].lookback()
        assert (1 - alpha) ** extra <= DECAY < (1 - alpha) ** (extra - 1)
    macd = specs["macd"].warmup_bars() - specs["macd"].lookback()
    assert (1 - 2 / 27) ** macd <= DECAY and (1 - 2 / 10) ** macd <= DECAY
    assert IndicatorSpec("sma", (("period", 20),)).indicator.warmup is not None


def test_the_talib_function_table_agrees_with_talib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registering an indicator checks its function against a table of one TA-Lib release (so that reading
    the configuration imports no TA-Lib): for that release it is TA-Lib's list; any other is asked."""
    from importlib.metadata import version

    from jutsu_pipeline.indicators import talib_functions
    from jutsu_pipeline.indicators.talib_functions import TALIB_FUNCTIONS, TALIB_VERSION, talib_has

    if version("ta-lib") == TALIB_VERSION:
        assert TALIB_FUNCTIONS == set(talib.get_functions())
    assert all(talib_has(name) for name in talib.get_functions()) and not talib_has("SMAA")
    monkeypatch.setattr(talib_functions, "TALIB_VERSION", "0.0")  # as if another release were installed
    assert talib_has("SMA") and not talib_has("SMAA")


def test_an_indicator_on_a_function_talib_lacks_is_refused_clearly() -> None:
    from jutsu_pipeline.indicators.registry import INDICATORS, Indicator, register

    with pytest.raises(ValueError, match=r"TA-Lib has no function 'SMAA' \(indicator 'smaa'\); use one of "):
        register(Indicator("smaa", "SMAA", ("close",), ("smaa",)))
    assert "smaa" not in INDICATORS
