"""The checks' evaluation of the stored table: defects written straight into real DuckDB files, three profiles."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import dagster as dg
import duckdb
import polars as pl
import pytest

from jutsu_pipeline.actions.model import actions_frame
from jutsu_pipeline.assets.bars.checks import build_bars_checks, check_result
from jutsu_pipeline.config import JutsuConfig, Profile, load_config, parse_config
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.quality.checks import checks_for, get
from jutsu_pipeline.quality.expressions import DAILY_RULES, STORED_ROW_RULES
from jutsu_pipeline.quality.grid import calendar_grid, materialized_frame
from jutsu_pipeline.quality.report import CheckReport
from jutsu_pipeline.quality.sql import CALENDAR_MISSING, ROW_RULE_SUSPECTS
from jutsu_pipeline.quality.stored import (
    check_anomalies,
    check_calendar,
    check_duplicates,
    check_fresh,
    check_schema,
    flag_rows,
    missing_candidates,
)
from jutsu_pipeline.storage.actions import record_actions
from jutsu_pipeline.storage.ddl import BARS_KEY as PRIMARY_KEY
from jutsu_pipeline.storage.ddl import ensure_schema, has_primary_key
from jutsu_pipeline.storage.scope import read_bars, scope_params
from jutsu_pipeline.timeframes import Timeframe
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, keyed_bars_ddl, write_config
from jutsu_pipeline_tests.helpers import run_bars

UTC = dt.timezone.utc
BARS_KEY = dg.AssetKey(["us_stocks", "bars_1d"])


def _partitioning(market: dict, profile: Profile, timeframe: str = "1d") -> BarsPartitioning:
    config = parse_config({"markets": {"us_stocks": {**market, "timeframes": [timeframe],
                                                     "quality": {"profile": str(profile)}}}})
    return BarsPartitioning("us_stocks", Timeframe(timeframe), config.markets["us_stocks"])


@contextmanager
def _connect(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


@pytest.fixture(scope="module")
def stored_2012(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, frozenset[str]]:
    """IBM, AAPL, FB of 2012 synced by the real asset in one range run; the DuckDB file and materialised keys."""
    folder = tmp_path_factory.mktemp("stored")
    market = {**SAMPLE_MARKET, "symbols": ["AAPL", "FB", "IBM"]}
    config: JutsuConfig = load_config(write_config(folder, {"us_stocks": market}))
    instance = dg.DagsterInstance.ephemeral()
    try:
        assert run_bars(config, instance, start="2012-01-01|AAPL", end="2012-12-01|IBM").success
        keys = frozenset(instance.get_materialized_partitions(BARS_KEY))
    finally:
        instance.dispose()
    return config.database, keys


CHECKS = {
    "ohlcv_schema": lambda con, p, keys: check_schema(con, p),
    "no_duplicates": lambda con, p, keys: check_duplicates(con, p),
    "calendar_complete": lambda con, p, keys: check_calendar(con, p, keys),
    "price_anomalies": lambda con, p, keys: check_anomalies(con, p),
}
LEGACY_TABLE = [  # a `bars` table made by another tool: no primary key
    "DROP VIEW IF EXISTS bars_adjusted", "DROP VIEW IF EXISTS coverage",
    "CREATE TABLE legacy AS SELECT * FROM bars", "DROP TABLE bars", "ALTER TABLE legacy RENAME TO bars",
]
KEYED_TABLE = [  # `bars` of a file made before 2026-12-02: the primary key (symbol, timeframe, ts)
    "DROP VIEW IF EXISTS bars_adjusted", "DROP VIEW IF EXISTS coverage",
    keyed_bars_ddl().replace("IF NOT EXISTS bars", "keyed"), "INSERT INTO keyed SELECT * FROM bars",
    "DROP TABLE bars", "ALTER TABLE keyed RENAME TO bars",
]
IBM = "symbol = 'IBM' AND ts = TIMESTAMPTZ '2012-06-05 00:00:00+00'"
DEFECTS: dict[str, tuple[list[str], str, str]] = {  # defect -> (SQL that writes it, check, rule)
    "high below low": ([f"UPDATE bars SET high = low - 1 WHERE {IBM}"], "ohlcv_schema", "high_ge_low"),
    "negative volume": ([f"UPDATE bars SET volume = -1 WHERE {IBM}"], "ohlcv_schema", "volume_non_negative"),
    "NaN close": ([f"UPDATE bars SET close = 'NaN'::DOUBLE WHERE {IBM}"], "ohlcv_schema", "ohlcv_not_null"),
    "naive timestamps": ([*LEGACY_TABLE, "ALTER TABLE bars ALTER ts TYPE TIMESTAMP"], "ohlcv_schema", "column_types"),
    "duplicate timestamps": ([*LEGACY_TABLE, f"INSERT INTO bars SELECT * FROM bars WHERE {IBM}"],
                             "no_duplicates", "ts_unique"),
    "out-of-order rows": ([  # one ingestion that stored 2012-06-06 before 2012-06-05
        "CREATE TEMP TABLE two AS SELECT * FROM bars WHERE symbol = 'IBM' AND ts::DATE IN ('2012-06-05', '2012-06-06')",
        "DELETE FROM bars WHERE symbol = 'IBM' AND ts::DATE IN ('2012-06-05', '2012-06-06')",
        "INSERT INTO bars SELECT * REPLACE (TIMESTAMPTZ '2020-01-01 00:00:00+00' AS ingested_at) FROM two ORDER BY ts DESC",
    ], "no_duplicates", "ts_increasing"),
    "bar on a Sunday": ([f"INSERT INTO bars SELECT * REPLACE (TIMESTAMPTZ '2012-06-03 00:00:00+00' AS ts) FROM bars "
                         f"WHERE {IBM}"], "calendar_complete", "calendar_unexpected"),
    "missing session mid-month": (["DELETE FROM bars WHERE symbol = 'IBM' AND ts = TIMESTAMPTZ '2012-06-13 00:00:00+00'"],
                                  "calendar_complete", "calendar_missing"),
    "2:1 jump, adjustment factor unchanged": ([
        "UPDATE bars SET open = open / 2, high = high / 2, low = low / 2, close = close / 2, adj_close = adj_close / 2 "
        "WHERE symbol = 'IBM' AND ts >= TIMESTAMPTZ '2012-06-15 00:00:00+00'"], "price_anomalies", "price_jump"),
    "zero volume": ([f"UPDATE bars SET volume = 0 WHERE {IBM}"], "price_anomalies", "zero_volume"),
}
EXPECTED = {  # rule -> profile -> AssetCheckSeverity of the failing check
    "ohlcv_not_null": "EEE", "column_types": "EEE", "ts_unique": "EEE", "ts_increasing": "EEE",
    "high_ge_low": "EEW", "volume_non_negative": "EEW",
    "calendar_unexpected": "EWW", "calendar_missing": "EWW", "price_jump": "EWW", "zero_volume": "EWW",
}
PROFILES = (Profile.STRICT, Profile.STANDARD, Profile.LENIENT)


def _evaluate(path: Path, keys: frozenset[str], check: str, profile: Profile) -> tuple[CheckReport, dg.AssetCheckResult]:
    p = _partitioning({**SAMPLE_MARKET, "symbols": ["AAPL", "FB", "IBM"]}, profile)
    with _connect(path) as con:
        report = CHECKS[check](con, p, keys)
    return report, check_result(report, profile)


def test_the_synced_sample_passes_every_check(stored_2012) -> None:
    path, keys = stored_2012
    for check in CHECKS:
        report, result = _evaluate(path, keys, check, Profile.STRICT)
        assert result.passed, (check, report.per_symbol)
        assert report.rows_checked == 250 * 2 + 155 and report.symbols_checked == 3  # FB listed 2012-05-18


def test_the_duplicate_scan_is_left_out_only_where_the_primary_key_enforces_uniqueness(stored_2012, tmp_path) -> None:
    path, keys = stored_2012
    copy = tmp_path / "bars.duckdb"
    shutil.copy(path, copy)
    with _connect(copy) as con:
        assert not has_primary_key(con, "bars", PRIMARY_KEY)  # a new file: scanned (the defect test finds duplicates)
        for statement in KEYED_TABLE:
            con.execute(statement)
        assert has_primary_key(con, "bars", PRIMARY_KEY)
        assert not has_primary_key(con, "bars", ("symbol", "ts")) and not has_primary_key(con, "nothing", PRIMARY_KEY)
        with pytest.raises(duckdb.ConstraintException):  # what makes the scan redundant there
            con.execute(f"INSERT INTO bars SELECT * FROM bars WHERE {IBM}")
        for statement in LEGACY_TABLE:
            con.execute(statement)
        assert not has_primary_key(con, "bars", PRIMARY_KEY)


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_each_stored_defect_fails_its_check_with_the_profile_s_severity(defect: str, stored_2012, tmp_path) -> None:
    path, keys = stored_2012
    statements, check, rule = DEFECTS[defect]
    copy = tmp_path / "bars.duckdb"
    shutil.copy(path, copy)
    with _connect(copy) as con:
        for statement in statements:
            con.execute(statement)
    for profile, expected in zip(PROFILES, EXPECTED[rule], strict=True):
        report, result = _evaluate(copy, keys, check, profile)
        assert not result.passed and report.counts[rule] >= 1
        # A column of the wrong type concerns every symbol; the other defects only IBM.
        assert set(report.per_symbol["symbol"]) == ({"AAPL", "FB", "IBM"} if rule == "column_types" else {"IBM"})
        assert result.severity == (dg.AssetCheckSeverity.ERROR if expected == "E" else dg.AssetCheckSeverity.WARN)
        assert get(check).is_blocking(profile) or expected == "W"
        metadata = result.metadata
        assert metadata["rows_checked"].value == report.rows_checked > 0
        assert metadata["failures"].value == report.failures and metadata[f"rule_{rule}"].value == report.counts[rule]
        assert "| IBM |" in metadata["worst_offenders"].value and metadata["per_symbol"].value["IBM"][rule] >= 1


def test_blocking_flags_per_profile() -> None:
    assert [get("calendar_complete").is_blocking(p) for p in PROFILES] == [True, False, False]
    assert [get("price_anomalies").is_blocking(p) for p in PROFILES] == [True, False, False]
    assert all(get("ohlcv_schema").is_blocking(p) and get("no_duplicates").is_blocking(p) for p in PROFILES)
    assert not any(get("fresh").is_blocking(p) for p in PROFILES)


def test_a_jump_is_labelled_when_a_stored_action_explains_it_and_flagged_otherwise(stored_2012, tmp_path) -> None:
    path, keys = stored_2012
    copy = tmp_path / "bars.duckdb"
    shutil.copy(path, copy)
    with _connect(copy) as con:
        con.execute("UPDATE bars SET open = open / 2, high = high / 2, low = low / 2, close = close / 2 "
                    "WHERE symbol = 'IBM' AND ts >= TIMESTAMPTZ '2012-06-15 00:00:00+00'")
    report, result = _evaluate(copy, keys, "price_anomalies", Profile.STRICT)
    assert not result.passed and report.counts["price_jump"] == 1  # nothing in corporate_actions explains it
    with _connect(copy) as con:
        record_actions(con, source="files", symbols=["IBM"], actions=actions_frame(
            [{"symbol": "IBM", "ex_date": dt.date(2012, 6, 15), "kind": "split", "ratio": 2.0}]))
    report, result = _evaluate(copy, keys, "price_anomalies", Profile.STRICT)
    assert result.passed and result.metadata["corporate_actions"].value == 1
    assert "| IBM | 2012-06-15 |" in result.metadata["corporate_action_jumps"].value
    assert "corporate action: 2:1 split (files)" in result.metadata["corporate_action_jumps"].value


# -- intraday calendar: XNYS 5-minute bars around Thanksgiving 2012 ---------------------------------

INTRADAY = {**SAMPLE_MARKET, "start": "2012-11-19", "end": "2012-11-26", "symbols": ["IBM"]}
INSERT_SESSION = """
INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume, adj_close, source, ingested_at)
SELECT 'IBM', '5m', t, 10, 11, 9, 10.5, 100, NULL, 'test', now()
FROM generate_series($first, $last, INTERVAL 5 MINUTE) AS s(t)
"""


def _intraday_file(path: Path) -> Path:
    with _connect(path) as con:
        ensure_schema(con)
        for day in (19, 20, 21, 26):  # regular sessions 09:30-16:00 EST = 14:30-21:00 UTC; 22nd: holiday
            con.execute(INSERT_SESSION, {"first": dt.datetime(2012, 11, day, 14, 30, tzinfo=UTC),
                                         "last": dt.datetime(2012, 11, day, 20, 55, tzinfo=UTC)})
        con.execute(INSERT_SESSION, {"first": dt.datetime(2012, 11, 23, 14, 30, tzinfo=UTC),  # closes 13:00 EST
                                     "last": dt.datetime(2012, 11, 23, 17, 55, tzinfo=UTC)})
    return path


INTRADAY_KEYS = frozenset(f"2012-11-{day}|IBM" for day in (19, 20, 21, 23, 26))


@pytest.mark.parametrize("profile", PROFILES)
def test_intraday_early_close_is_complete_and_later_or_missing_bars_are_reported(profile: Profile, tmp_path) -> None:
    p = _partitioning(INTRADAY, profile, "5m")
    path = _intraday_file(tmp_path / "bars.duckdb")
    with _connect(path) as con:
        report = check_calendar(con, p, INTRADAY_KEYS)
        assert report.passed and report.rows_checked == 4 * 78 + 42
        con.execute("INSERT INTO bars VALUES ('IBM', '5m', TIMESTAMPTZ '2012-11-23 18:00:00+00', 10, 11, 9, 10.5, "
                    "100, NULL, 'test', now(), false)")
        con.execute("DELETE FROM bars WHERE ts = TIMESTAMPTZ '2012-11-20 16:00:00+00'")
        report = check_calendar(con, p, INTRADAY_KEYS)
    assert report.counts == {"calendar_missing": 1, "calendar_unexpected": 1}
    assert report.offenders().row(0) == ("IBM", 2, "calendar_missing: 1, calendar_unexpected: 1",
                                         "2012-11-20 16:00; 2012-11-23 18:00")
    expected = dg.AssetCheckSeverity.ERROR if profile is Profile.STRICT else dg.AssetCheckSeverity.WARN
    assert check_result(report, profile).severity == expected


# -- freshness: open-ended markets only ----------------------------------------------------------------

OPEN_ENDED = {**SAMPLE_MARKET, "start": "2024-06-03", "symbols": ["AAPL", "GOOG", "MSFT"]}
OPEN_ENDED.pop("end")
NOW = dt.datetime(2024, 7, 10, 15, 0, tzinfo=UTC)  # Wednesday, in session; the last closed session is 2024-07-09


@pytest.mark.parametrize(("timeframe", "fresh_last", "stale_last"), [
    ("1d", dt.datetime(2024, 7, 9, tzinfo=UTC), dt.datetime(2024, 7, 8, tzinfo=UTC)),
    ("5m", dt.datetime(2024, 7, 9, 19, 55, tzinfo=UTC), dt.datetime(2024, 7, 9, 19, 50, tzinfo=UTC)),
])
def test_fresh_flags_symbols_behind_the_last_closed_session(timeframe, fresh_last, stale_last, tmp_path) -> None:
    p = _partitioning(OPEN_ENDED, Profile.STRICT, timeframe)
    with _connect(tmp_path / "bars.duckdb") as con:
        ensure_schema(con)
        for symbol, ts in (("AAPL", fresh_last), ("MSFT", stale_last)):
            con.execute("INSERT INTO bars VALUES ($1, $2, $3, 10, 11, 9, 10.5, 100, NULL, 'test', now(), false)",
                        [symbol, timeframe, ts])
        report = check_fresh(con, p, now=NOW)
    assert report.counts == {"stale": 2}
    assert sorted(report.per_symbol["symbol"]) == ["GOOG", "MSFT"]  # GOOG has no bar at all
    assert report.extra["last_closed_session"] == "2024-07-09"


def test_fresh_exists_only_for_markets_without_an_end(tmp_path) -> None:
    config = load_config(write_config(tmp_path, {"us_stocks": SAMPLE_MARKET, "live": OPEN_ENDED | {"symbols": ["SPY"]}}))
    names = {market: [c.name for c in checks_for(config.markets[market])] for market in ("us_stocks", "live")}
    assert "fresh" not in names["us_stocks"] and "fresh" in names["live"]
    p = BarsPartitioning("live", Timeframe.D1, config.markets["live"])
    checks = build_bars_checks(config, p)
    keys = {key.name for check in checks for key in check.check_keys}
    assert keys == {"ohlcv_schema", "no_duplicates", "calendar_complete", "price_anomalies", "fresh"}


ROW_DEFECTS: dict[str, tuple[str, bool]] = {  # bad row written into IBM -> (SQL, whether a daily check flags it)
    "none": ("SELECT 1", False),
    "high below low": (f"UPDATE bars SET high = low - 1 WHERE {IBM}", True),
    "open above high": (f"UPDATE bars SET open = high + 1 WHERE {IBM}", True),
    "close below low": (f"UPDATE bars SET close = low - 1 WHERE {IBM}", True),
    "zero low": (f"UPDATE bars SET low = 0, open = 0 WHERE {IBM}", True),
    "negative volume": (f"UPDATE bars SET volume = -1 WHERE {IBM}", True),
    "null open": (f"UPDATE bars SET open = NULL WHERE {IBM}", True),
    "NaN high": (f"UPDATE bars SET high = 'NaN'::DOUBLE WHERE {IBM}", True),
    "NaN volume": (f"UPDATE bars SET volume = 'NaN'::DOUBLE WHERE {IBM}", True),
    "zero adj_close": (f"UPDATE bars SET adj_close = 0 WHERE {IBM}", True),
    "null adj_close": (f"UPDATE bars SET adj_close = NULL WHERE {IBM}", False),
    "NaN adj_close": (f"UPDATE bars SET adj_close = 'NaN'::DOUBLE WHERE {IBM}", False),  # NaN > 0 in both
    "daily bar off midnight": (f"UPDATE bars SET ts = ts + INTERVAL 1 HOUR WHERE {IBM}", True),
}


@pytest.mark.parametrize("daily", [True, False], ids=["daily", "intraday"])
def test_the_row_rule_suspects_sql_agrees_with_the_polars_rules(daily: bool, stored_2012, tmp_path) -> None:
    """ROW_RULE_SUSPECTS (an SQL scan) finds exactly the symbols the polars row rules flag on the same bars."""
    path = shutil.copy(stored_2012[0], tmp_path / "bars.duckdb")
    symbols = ["AAPL", "FB", "IBM"]
    flags = {**STORED_ROW_RULES, **(DAILY_RULES if daily else {})}
    with _connect(path) as con:
        for statement in LEGACY_TABLE:  # no NOT NULL constraints: a null price can be stored
            con.execute(statement)
        for defect, (statement, flagged) in ROW_DEFECTS.items():
            con.execute("BEGIN")
            con.execute(statement)
            params = {**scope_params("1d", symbols), "daily": daily}
            suspects = {s for (s,) in con.execute(ROW_RULE_SUSPECTS, params).fetchall()}
            frame = cast(pl.DataFrame, pl.from_arrow(read_bars(con, "1d", symbols)))
            per_symbol, _ = flag_rows(frame, flags, "%Y-%m-%d")
            con.execute("ROLLBACK")
            expected = {"IBM"} if flagged and (daily or defect != "daily bar off midnight") else set()
            assert suspects == set(per_symbol.get_column("symbol")) == expected, defect


GAPS = {  # a gap in the stored bars -> the symbols with calendar_missing (deleted or duplicated IBM bars)
    "none": ("DELETE FROM bars WHERE false", set()),
    "one mid-month session": ("DELETE FROM bars WHERE symbol = 'IBM' AND ts = TIMESTAMPTZ '2012-06-13 00:00:00+00'", {"IBM"}),
    "a whole month": ("DELETE FROM bars WHERE symbol = 'IBM' AND ts::DATE BETWEEN '2012-07-01' AND '2012-07-31'", {"IBM"}),
    "the life's first and last bars (no gap)": (
        "DELETE FROM bars WHERE symbol = 'IBM' AND ts::DATE IN ('2012-01-03', '2012-12-31')", set()),
    "a gap next to the first bar of a shortened life": (
        "DELETE FROM bars WHERE symbol = 'FB' AND (ts::DATE < '2012-06-01' OR ts::DATE = '2012-06-05')", {"FB"}),
    "a duplicate standing in for a missing bar": (
        "UPDATE bars SET ts = TIMESTAMPTZ '2012-06-12 00:00:00+00' WHERE symbol = 'IBM' AND ts::DATE = '2012-06-13'",
        {"IBM"}),
}


@pytest.mark.parametrize("primary_key", [True, False], ids=["primary key", "no key"])
def test_the_missing_candidates_counts_agree_with_the_missing_bars_anti_join(primary_key: bool, stored_2012,
                                                                             tmp_path) -> None:
    """`missing_candidates` (counts, and any symbol whose rows may repeat a ts) names exactly the symbols
    CALENDAR_MISSING's anti join finds bars missing in, and the whole-table check reports the same as the anti
    join over every symbol."""
    path, keys = stored_2012
    p = _partitioning({**SAMPLE_MARKET, "symbols": ["AAPL", "FB", "IBM"]}, Profile.STANDARD)
    copy = shutil.copy(path, tmp_path / "bars.duckdb")
    params = scope_params("1d", p.symbols)
    with _connect(copy) as con:
        for statement in KEYED_TABLE if primary_key else LEGACY_TABLE:
            con.execute(statement)
        grid, materialized = calendar_grid(p).to_arrow(), materialized_frame(keys).to_arrow()
        for gap, (statement, expected) in GAPS.items():
            if "duplicate" in gap and primary_key:
                continue  # the key forbids it
            con.execute("BEGIN")
            con.execute(statement)
            con.register("grid", grid)
            con.register("materialized", materialized)
            candidates = set(missing_candidates(con, p))
            anti_join = {s: n for s, n, _ in con.execute(CALENDAR_MISSING[False], params).fetchall()}
            con.unregister("grid")
            con.unregister("materialized")
            report = check_calendar(con, p, keys)
            con.execute("ROLLBACK")
            assert candidates == set(anti_join) == expected, gap
            assert {s: n for s, rule, n, _ in report.per_symbol.iter_rows() if rule == "calendar_missing"} == anti_join
