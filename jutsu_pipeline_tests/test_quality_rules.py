"""Pre-write validation under the three profiles: real sample bars with real defects, real calendars."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import polars as pl
import pytest

from jutsu_pipeline.config import ConfigError, Profile, QualityConfig, parse_config
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.providers.base import FetchRequest
from jutsu_pipeline.providers.sample import SampleProvider
from jutsu_pipeline.quality.expressions import ORDERED_KEY_RULES, ROW_RULES, blocking_rules
from jutsu_pipeline.quality.rules import RULES
from jutsu_pipeline.quality.schema import sorted_per_symbol, validate_bars
from jutsu_pipeline.timeframes import Timeframe
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET

UTC = dt.timezone.utc
PROFILES = list(Profile)
BLOCKS = {  # which class of rule blocks the write under each profile
    "structural": {Profile.STRICT, Profile.STANDARD, Profile.LENIENT},
    "invariant": {Profile.STRICT, Profile.STANDARD},
    "suspicious": {Profile.STRICT},
}


def _partitioning(profile: Profile, timeframe: str = "1d", **market) -> BarsPartitioning:
    config = parse_config({"markets": {"us_stocks": {**SAMPLE_MARKET, "timeframes": [timeframe],
                                                     "quality": {"profile": str(profile)}, **market}}})
    return BarsPartitioning("us_stocks", Timeframe(timeframe), config.markets["us_stocks"])


def _ibm_june_july_2012() -> pl.DataFrame:
    request = FetchRequest("IBM", Timeframe.D1, dt.datetime(2012, 6, 1, tzinfo=UTC), dt.datetime(2012, 8, 1, tzinfo=UTC))
    return SampleProvider().fetch(request).with_columns(pl.lit("IBM").alias("symbol"))


def _validate(frame: pl.DataFrame, p: BarsPartitioning, date_keys: list[str]) -> dict[str, set[str]]:
    """Failing rules per partition key under the partitioning's profile."""
    windows = pl.DataFrame(
        [("IBM", key, *p.window(key)) for key in date_keys],
        schema={"symbol": pl.String, "date_key": pl.String, "start": pl.Datetime("us", "UTC"),
                "end": pl.Datetime("us", "UTC")}, orient="row",
    )
    sessions = p.calendar.sessions(dt.date(2012, 5, 1), dt.date(2012, 12, 31))
    report = validate_bars(frame, windows=windows, sessions=sessions, daily=not p.timeframe.is_intraday,
                           quality=p.config.quality)
    return {f"{key}|{symbol}": {f.rule for f in fails} for (symbol, key), fails in report.failures.items()}


def _on(day: str, column: str, value: pl.Expr | float) -> Callable[[pl.DataFrame], pl.DataFrame]:
    ts = dt.datetime.fromisoformat(day).replace(tzinfo=UTC)
    value = value if isinstance(value, pl.Expr) else pl.lit(value)
    return lambda f: f.with_columns(pl.when(pl.col("ts") == ts).then(value).otherwise(pl.col(column)).alias(column))


def _halve_from(day: str, columns: tuple[str, ...]) -> Callable[[pl.DataFrame], pl.DataFrame]:
    ts = dt.datetime.fromisoformat(day).replace(tzinfo=UTC)
    return lambda f: f.with_columns(
        pl.when(pl.col("ts") >= ts).then(pl.col(c) / 2).otherwise(pl.col(c)).alias(c) for c in columns)


def _sunday_bar(f: pl.DataFrame) -> pl.DataFrame:
    sunday = f.head(1).with_columns(pl.lit(dt.datetime(2012, 6, 3, tzinfo=UTC)).dt.cast_time_unit("us").alias("ts"))
    return pl.concat([f.head(1), sunday, f.slice(1)])


def _flat(f: pl.DataFrame) -> pl.DataFrame:
    """2012-06-12 repeats the previous close as open, high, low and close."""
    previous = f.filter(pl.col("ts") == dt.datetime(2012, 6, 11, tzinfo=UTC))["close"].item()
    for column in ("open", "high", "low", "close"):
        f = _on("2012-06-12", column, previous)(f)
    return f


OHLC = ("open", "high", "low", "close")
CASES: dict[str, tuple[Callable[[pl.DataFrame], pl.DataFrame], str]] = {  # defect -> (make it, rule it breaks)
    "high below low": (_on("2012-06-05", "high", pl.col("low") - 1), "high_ge_low"),
    "negative volume": (_on("2012-06-05", "volume", -1.0), "volume_non_negative"),
    "NaN close": (_on("2012-06-05", "close", float("nan")), "ohlcv_not_null"),
    "duplicate timestamp": (lambda f: pl.concat([f.head(5), f.slice(4)]), "ts_unique"),
    "out-of-order rows": (lambda f: pl.concat([f.slice(5, 1), f.head(5), f.slice(6)]), "ts_increasing"),
    "naive timestamps": (lambda f: f.with_columns(pl.col("ts").dt.replace_time_zone(None)), "column_types"),
    "bar on a Sunday": (_sunday_bar, "on_session"),
    "2:1 jump, adjustment factor unchanged": (_halve_from("2012-06-15", (*OHLC, "adj_close")), "price_jump"),
    "zero volume": (_on("2012-06-05", "volume", 0.0), "zero_volume"),
    "flat stale bar": (_flat, "constant_price"),
}


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("case", list(CASES))
def test_each_defect_blocks_exactly_under_the_profiles_of_its_class(case: str, profile: Profile) -> None:
    corrupt, rule = CASES[case]
    frame = corrupt(_ibm_june_july_2012())
    failures = _validate(frame, _partitioning(profile), ["2012-06-01", "2012-07-01"])
    blocked = profile in BLOCKS[RULES[rule].rule_class]
    failed_rules = set().union(*failures.values()) if failures else set()
    assert (rule in failed_rules) is blocked, failures
    if blocked and rule != "column_types":  # a column-level failure cannot be placed in a partition
        assert "2012-06-01|IBM" in failures and "2012-07-01|IBM" not in failures
    if not blocked:
        assert failures == {}


@pytest.mark.parametrize("profile", PROFILES)
def test_a_split_with_a_matching_adjustment_factor_change_is_never_blocked(profile: Profile) -> None:
    # Prices halve but adj_close does not: adj_close/close doubles, exactly explaining the jump.
    frame = _halve_from("2012-06-15", OHLC)(_ibm_june_july_2012())
    assert _validate(frame, _partitioning(profile), ["2012-06-01", "2012-07-01"]) == {}


def _five_minute_bars(day: dt.date, first: dt.time, last: dt.time) -> pl.DataFrame:
    start, end = dt.datetime.combine(day, first, UTC), dt.datetime.combine(day, last, UTC)
    ts = pl.datetime_range(start, end, "5m", eager=True, time_zone="UTC").dt.cast_time_unit("us")
    return pl.DataFrame({"ts": ts, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 100.0,
                         "adj_close": None, "symbol": "IBM"}, schema_overrides={"adj_close": pl.Float64})


@pytest.mark.parametrize("profile", PROFILES)
def test_intraday_early_close_2012_11_23_is_honoured_and_later_bars_are_structural(profile: Profile) -> None:
    p = _partitioning(profile, "5m")
    # XNYS closed at 13:00 EST (18:00 UTC) on the day after Thanksgiving: 42 bars of 5 minutes.
    early = _five_minute_bars(dt.date(2012, 11, 23), dt.time(14, 30), dt.time(17, 55))
    assert early.height == 42 and _validate(early, p, ["2012-11-23"]) == {}
    full_day = _five_minute_bars(dt.date(2012, 11, 23), dt.time(14, 30), dt.time(20, 55))
    # The 36 bars from 13:00 EST on lie outside the session's window: never stored, whatever the profile.
    assert _validate(full_day, p, ["2012-11-23"]) == {"None|IBM": {"inside_partition"}}


def test_standard_profile_blocks_what_the_pre_profile_gate_blocked() -> None:
    """The default keeps the rules that always blocked; only the new suspicious rules are not errors."""
    assert blocking_rules(daily=True).keys() == {
        "ohlcv_not_null", "high_ge_low", "high_ge_open_close", "low_le_open_close", "low_positive",
        "volume_non_negative", "adj_close_positive", "ts_unique", "ts_increasing", "inside_partition", "on_session",
        "daily_at_midnight"}
    assert blocking_rules(True, QualityConfig(profile=Profile.LENIENT)).keys() == {
        "ohlcv_not_null", "ts_unique", "ts_increasing", "inside_partition", "daily_at_midnight"}


@pytest.mark.parametrize(("quality", "words"), [
    ({"profile": "paranoid"}, "markets.us_stocks.quality.profile"),
    ({"max_open_gap": -1}, "markets.us_stocks.quality.max_open_gap"),
    ({"gap": 0.3}, "markets.us_stocks.quality.gap"),
])
def test_bad_quality_keys_are_named(quality: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        parse_config({"markets": {"us_stocks": {**SAMPLE_MARKET, "quality": quality}}})


def test_quality_defaults_to_the_standard_profile() -> None:
    market = parse_config({"markets": {"us_stocks": SAMPLE_MARKET}}).markets["us_stocks"]
    assert market.quality == QualityConfig() and market.quality.profile is Profile.STANDARD
    assert market.quality.max_open_gap == 0.25


def test_the_ordered_key_rules_give_the_windowed_rules_verdicts_on_rows_sorted_per_symbol() -> None:
    """ORDERED_KEY_RULES (neighbours compared) flag exactly the rows ROW_RULES' per-symbol windows flag, on
    rows contiguous and sorted per symbol: duplicates at a symbol's start, middle and end, a run of three,
    equal timestamps across a symbol boundary, one-row symbols."""
    day = [dt.datetime(2024, 1, d, tzinfo=UTC) for d in range(1, 8)]
    rows = [("A", day[0]), ("A", day[0]), ("A", day[1]), ("A", day[2]), ("A", day[2]), ("A", day[2]), ("A", day[3]),
            ("B", day[3]), ("C", day[1]), ("C", day[4]), ("C", day[5]), ("C", day[5]), ("D", day[6])]
    frame = pl.DataFrame(rows, schema={"symbol": pl.String, "ts": pl.Datetime("us", "UTC")}, orient="row")
    assert sorted_per_symbol(frame) and not sorted_per_symbol(frame.reverse())
    for name, ordered in ORDERED_KEY_RULES.items():
        windowed = ROW_RULES[name]
        assert frame.select(ordered.alias("x"))["x"].to_list() == frame.select(windowed.alias("x"))["x"].to_list(), name
    assert frame.select(ORDERED_KEY_RULES["ts_unique"].alias("x"))["x"].to_list().count(False) == 7
