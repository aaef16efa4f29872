"""The whole-table checks load or scan only the symbols `sql.TABLE_SUSPECTS` (`ROW_RULE_SUSPECTS` for
ohlcv_schema) names: one bad row among many clean symbols in a real DuckDB file must give the same report as
judging every symbol's rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from jutsu_pipeline.actions.model import actions_frame
from jutsu_pipeline.config import parse_config
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.quality import stored
from jutsu_pipeline.quality.grid import calendar_grid
from jutsu_pipeline.quality.report import CheckReport
from jutsu_pipeline.storage.actions import record_actions
from jutsu_pipeline.storage.ddl import ensure_schema
from jutsu_pipeline.timeframes import Timeframe

SYMBOLS = [f"S{i:03d}" for i in range(40)]
BAD = "S017"
DAY = "TIMESTAMPTZ '2021-06-15 00:00:00+00'"
ROW = f"symbol = '{BAD}' AND ts = {DAY}"
NULLABLE = [  # a `bars` table made by another tool: no NOT NULL constraints, no primary key
    "DROP VIEW IF EXISTS bars_adjusted", "DROP VIEW IF EXISTS coverage",
    "CREATE TABLE legacy AS SELECT * FROM bars", "DROP TABLE bars", "ALTER TABLE legacy RENAME TO bars",
]
PREVIOUS = f"(SELECT close FROM bars WHERE symbol = '{BAD}' AND ts < {DAY} ORDER BY ts DESC LIMIT 1)"
MOVED = "TIMESTAMPTZ '2020-01-01 00:00:00+00'"  # the ingested_at of a later ingestion
THREE_DAYS = f"symbol = '{BAD}' AND ts::DATE IN ('2021-06-15', '2021-06-16', '2021-06-17')"


def _split(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"UPDATE bars SET open = open / 2, high = high / 2, low = low / 2, close = close / 2, "
                f"adj_close = adj_close / 2 WHERE symbol = '{BAD}' AND ts >= {DAY}")
    record_actions(con, source="files", symbols=[BAD], actions=actions_frame(
        [{"symbol": BAD, "ex_date": dt.date(2021, 6, 15), "kind": "split", "ratio": 2.0}]))


# defect -> (what writes it, the check that must report it)
DEFECTS: dict[str, tuple[list[str] | Callable[[duckdb.DuckDBPyConnection], None], str]] = {
    "NaN close": ([f"UPDATE bars SET close = 'NaN'::DOUBLE WHERE {ROW}"], "ohlcv_schema"),
    "null volume": ([*NULLABLE, f"UPDATE bars SET volume = NULL WHERE {ROW}"], "ohlcv_schema"),
    "non-positive low": ([f"UPDATE bars SET low = 0 WHERE {ROW}"], "ohlcv_schema"),
    "negative close": ([f"UPDATE bars SET close = -1, low = -1 WHERE {ROW}"], "ohlcv_schema"),
    "negative volume": ([f"UPDATE bars SET volume = -1 WHERE {ROW}"], "ohlcv_schema"),
    "zero adj_close": ([f"UPDATE bars SET adj_close = 0 WHERE {ROW}"], "ohlcv_schema"),
    "high below low": ([f"UPDATE bars SET high = low - 0.01 WHERE {ROW}"], "ohlcv_schema"),
    "open above high": ([f"UPDATE bars SET open = high * 1.001 WHERE {ROW}"], "ohlcv_schema"),
    "close below low": ([f"UPDATE bars SET close = low * 0.999 WHERE {ROW}"], "ohlcv_schema"),
    "daily bar off midnight": ([f"UPDATE bars SET ts = ts + INTERVAL 1 HOUR WHERE {ROW}"], "ohlcv_schema"),
    "price jump": ([f"UPDATE bars SET open = open * 1.3, high = high * 1.3 WHERE {ROW}"], "price_anomalies"),
    "price drop": ([f"UPDATE bars SET open = open * 0.7, low = low * 0.7 WHERE {ROW}"], "price_anomalies"),
    "jump on a stored split": (_split, "price_anomalies"),
    "zero volume": ([f"UPDATE bars SET volume = 0 WHERE {ROW}"], "price_anomalies"),
    "stale flat bar": ([  # open = high = low = close = the previous close
        f"UPDATE bars SET open = {PREVIOUS}, high = {PREVIOUS}, low = {PREVIOUS}, close = {PREVIOUS} WHERE {ROW}"],
        "price_anomalies"),
    "duplicate bar stored last": ([*NULLABLE, f"INSERT INTO bars SELECT * FROM bars WHERE {ROW}"], "no_duplicates"),
    "duplicate bar in place": ([*NULLABLE, f"UPDATE bars SET ts = {DAY} WHERE symbol = '{BAD}' AND ts = {DAY} + "
                                "INTERVAL 1 DAY"], "no_duplicates"),  # its run's ts stop increasing
    "out-of-order ingestion": ([  # one ingestion that stored 2021-06-16 before 2021-06-15
        f"CREATE TEMP TABLE two AS SELECT * FROM bars WHERE {THREE_DAYS} AND ts::DATE < '2021-06-17'",
        f"DELETE FROM bars WHERE {THREE_DAYS} AND ts::DATE < '2021-06-17'",
        f"INSERT INTO bars SELECT * REPLACE ({MOVED} AS ingested_at) FROM two ORDER BY ts DESC",
    ], "no_duplicates"),
    "out-of-order last ingestion": ([  # each ingestion's rows contiguous in ts: its neighbours are compared
        f"CREATE TEMP TABLE tail AS SELECT * FROM bars WHERE symbol = '{BAD}' AND ts::DATE >= '2022-12-29'",
        f"DELETE FROM bars WHERE symbol = '{BAD}' AND ts::DATE >= '2022-12-29'",
        f"INSERT INTO bars SELECT * REPLACE ({MOVED} AS ingested_at) FROM tail ORDER BY ts DESC",
    ], "no_duplicates"),
    "out of order around another ingestion's bar": ([  # 06-17 before 06-15, 06-16 of another ingestion between
        f"CREATE TEMP TABLE three AS SELECT * FROM bars WHERE {THREE_DAYS}",
        f"DELETE FROM bars WHERE {THREE_DAYS}",
        f"INSERT INTO bars SELECT * REPLACE ({MOVED} AS ingested_at) FROM three WHERE ts::DATE <> '2021-06-16' "
        "ORDER BY ts DESC",
        "INSERT INTO bars SELECT * FROM three WHERE ts::DATE = '2021-06-16'",
    ], "no_duplicates"),
}
EVALUATE = {
    "ohlcv_schema": stored.check_schema,
    "price_anomalies": stored.check_anomalies,
    "no_duplicates": stored.check_duplicates,
}


def _partitioning() -> BarsPartitioning:
    market = {"provider": "sample", "calendar": "XNYS", "timeframes": ["1d"], "start": "2020-01-02",
              "end": "2022-12-30", "symbols": SYMBOLS}
    return BarsPartitioning("m", Timeframe("1d"), parse_config({"markets": {"m": market}}).markets["m"])


@pytest.fixture(scope="module")
def clean_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 symbols x 3 years of clean daily random walks (small open gaps, volume > 0), one ingestion."""
    path = tmp_path_factory.mktemp("prefilter") / "bars.duckdb"
    grid = calendar_grid(_partitioning())
    rng = np.random.default_rng(3)
    frames = []
    for symbol in SYMBOLS:
        n = grid.height
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = np.concatenate([[50.0], close[:-1]]) * (1 + rng.normal(0, 0.002, n))
        frames.append(grid.select("ts").with_columns(
            pl.lit(symbol).alias("symbol"), pl.Series("open", open_), pl.Series("close", close),
            pl.Series("high", np.maximum(open_, close) * 1.01), pl.Series("low", np.minimum(open_, close) * 0.99),
            pl.Series("volume", rng.integers(1_000, 100_000, n).astype(float))))
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        ensure_schema(con)
        con.register("staged", pl.concat(frames).sort("symbol", "ts").to_arrow())
        con.execute("INSERT INTO bars SELECT symbol, '1d', ts, open, high, low, close, volume, close, 'test', "
                    "TIMESTAMPTZ '2019-01-01 00:00:00+00', false FROM staged")
    return path


def _same(a: CheckReport, b: CheckReport) -> None:
    assert (a.rows_checked, a.symbols_checked, a.extra) == (b.rows_checked, b.symbols_checked, b.extra)
    assert a.per_symbol.sort("symbol", "rule").equals(b.per_symbol.sort("symbol", "rule"))
    assert (a.samples is None) == (b.samples is None)
    assert a.samples is None or b.samples is None or a.samples.equals(b.samples)


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_one_bad_row_among_clean_symbols_is_reported_as_when_every_symbol_is_judged(
        defect: str, clean_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write, check = DEFECTS[defect]
    path = tmp_path / "bars.duckdb"
    path.write_bytes(clean_file.read_bytes())
    p = _partitioning()
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        for statement in [write] if callable(write) else write:
            statement(con) if callable(statement) else con.execute(statement)
        suspects = {name: set(stored.table_suspects(con, p, name)) for name in EVALUATE}
        reports = {name: evaluate(con, p) for name, evaluate in EVALUATE.items()}
        monkeypatch.setattr(stored, "table_suspects", lambda con, p, check: list(p.symbols))  # judge every symbol
        for name, evaluate in EVALUATE.items():
            _same(reports[name], evaluate(con, p))
    assert suspects[check] == {BAD}, suspects  # the pre-filter names the bad symbol, and only it
    if defect == "jump on a stored split":  # explained: passes, and the jump is labelled with the action
        assert reports[check].passed and reports[check].extra["corporate_actions"] == 1
    else:
        assert not reports[check].passed and set(reports[check].per_symbol["symbol"]) == {BAD}


def test_clean_symbols_are_counted_without_being_loaded(clean_file: Path) -> None:
    p = _partitioning()
    with duckdb.connect(str(clean_file), read_only=True) as con, stored.shared_reads():
        con.execute("SET TimeZone = 'UTC'")
        assert all(not stored.table_suspects(con, p, name) for name in EVALUATE)
        reports = [evaluate(con, p) for evaluate in EVALUATE.values()]
    rows = len(SYMBOLS) * calendar_grid(p).height
    assert all(r.passed and (r.rows_checked, r.symbols_checked) == (rows, len(SYMBOLS)) for r in reports)
    assert reports[1].extra == {"corporate_actions": 0, "max_open_gap": p.config.quality.max_open_gap}
