"""Configuration: the shipped file loads; every bad key is named in the error."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from jutsu_pipeline.config import CONFIG_ENV_VAR, ConfigError, load_config, parse_config
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, write_config


def test_shipped_config_is_the_offline_demo() -> None:
    config = load_config(Path(__file__).parents[1] / "jutsu.yaml")
    market = config.markets["us_stocks"]
    assert market.provider == "sample" and market.calendar == "XNYS"
    assert market.symbols == ("AAPL", "FB", "GOOG", "IBM", "MSFT")
    assert config.database == Path(__file__).parents[1] / "data" / "jutsu.duckdb"


def _error(markets: dict, **top) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_config({"markets": markets, **top})
    return str(raised.value)


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"provider": "bloomberg"}, "markets.m.provider", "unknown provider 'bloomberg'"),
        ({"calendar": "XXXX"}, "markets.m.calendar", "unknown calendar 'XXXX'"),
        ({"timeframes": ["1d", "2h"]}, "markets.m.timeframes.1", "'1d', '1h', '15m', '5m' or '1m'"),
        ({"symbols": ["AAPL", "bad symbol"]}, "markets.m.symbols", "'bad symbol' does not match"),
        ({"symbols": ["A" * 21]}, "markets.m.symbols", "does not match"),
        ({"symbols": ["AAPL", "AAPL"]}, "markets.m.symbols", "listed twice"),
        ({"end": "1999-01-01"}, "markets.m", "is before start"),
        ({"start": "not a date"}, "markets.m.start", "valid date"),
        ({"colour": "blue"}, "markets.m.colour", "unknown key; valid keys of markets.m: provider, calendar,"),
        ({"calender": "XNYS"}, "markets.m.calender", "unknown key (did you mean 'calendar'?)"),
    ],
)
def test_bad_market_keys_are_named(change: dict, key: str, words: str) -> None:
    message = _error({"m": {**SAMPLE_MARKET, **change}})
    assert f"{key}:" in message and words in message


def test_symbol_in_two_markets() -> None:
    message = _error({"a": SAMPLE_MARKET, "b": {**SAMPLE_MARKET, "symbols": ["MSFT", "ORCL"]}})
    assert "symbol MSFT is in two markets: a and b" in message


def test_allowed_symbol_shapes_and_24_7() -> None:
    config = parse_config({"markets": {"crypto": {**SAMPLE_MARKET, "calendar": "24/7",
                                                   "symbols": ["BTC/USDT", "BRK.B", "ES-1_X"]}}})
    assert config.markets["crypto"].always_open


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, {"us_stocks": {**SAMPLE_MARKET, "provider": "files", "options": {"path": "csv"}}},
                        duckdb_path="db/bars.duckdb")
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    config = load_config()
    assert config.database == tmp_path / "db" / "bars.duckdb"
    assert config.resolve(config.markets["us_stocks"].options.path) == tmp_path / "csv"


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("markets: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


@pytest.mark.parametrize(("provider", "options", "message"), [
    ("files", {"pth": "csv"}, r"markets\.m\.options\.pth: unknown key \(did you mean 'path'\?\); valid keys of "
                              r"markets\.m\.options: path\n  markets\.m\.options\.path: Field required$"),
    ("files", {}, r"markets\.m\.options: option 'path': Field required"),
    ("binance", {"page_limt": 10}, r"markets\.m\.options\.page_limt: unknown key \(did you mean 'page_limit'\?\); "
                                   r"valid keys of markets\.m\.options: base_url, http, market, page_limit, symbols$"),
    ("binance", {"market": "coin"}, r"option 'market': Input should be 'spot' or 'usdm_futures'"),
    ("binance", {"http": {"request_per_second": 1}}, r"unknown http option\(s\) \['request_per_second'\]"),
    ("alpaca", {"feed": "nasdaq"}, r"option 'feed'"),
])
def test_provider_options_are_checked_when_the_config_loads(provider: str, options: dict, message: str) -> None:
    market = {**SAMPLE_MARKET, "provider": provider, "calendar": "24/7", "options": options}
    with pytest.raises(ConfigError, match=message):
        parse_config({"markets": {"m": market}})


def test_absent_options_are_checked_too() -> None:
    """A `files` market without an `options:` block at all fails when the config loads, not in a run."""
    market = {key: value for key, value in SAMPLE_MARKET.items() if key != "options"}
    with pytest.raises(ConfigError, match=r"markets\.m: option 'path': Field required \(options of provider files: path\)"):
        parse_config({"markets": {"m": {**market, "provider": "files"}}})
    assert parse_config({"markets": {"m": {**market, "provider": "sample"}}}).markets["m"].options.path is None


def test_provider_options_are_typed() -> None:
    market = {**SAMPLE_MARKET, "provider": "binance", "calendar": "24/7",
              "options": {"market": "usdm_futures", "page_limit": "1500"}}
    options = parse_config({"markets": {"m": market}}).markets["m"].options
    assert (options.market, options.page_limit) == ("usdm_futures", 1500)


@pytest.mark.parametrize(("indicators", "words"), [
    ({"sma_periodd": 5}, "indicators.sma_periodd: unknown key (did you mean 'sma_period'?); valid keys of "
                         "markets.m.indicators: sma_period, ema_period, rsi_period,"),
    ({"macd_fast": 30}, "macd_fast (30) must be below macd_slow (26)"),
    ({"rsi_period": 1}, "rsi_period must be >= 2"),
])
def test_bad_indicator_keys_are_named(indicators: dict, words: str) -> None:
    """Checked against the registry when the configuration loads (TA-Lib itself is not imported then)."""
    message = _error({"m": {**SAMPLE_MARKET, "indicators": indicators}})
    assert "markets.m.indicators:" in message and words in message


def test_the_calendar_table_agrees_with_exchange_calendars(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calendar codes and timezones come from a table of one exchange_calendars release, so that loading a
    configuration needs no pandas: for that release it is the library's list; for any other the library
    is asked."""
    import exchange_calendars as xc

    from jutsu_pipeline import calendars
    from jutsu_pipeline.calendars import SessionCalendar, known_calendar

    codes = set(xc.get_calendar_names(include_aliases=True))
    if xc.__version__ == calendars._TABLE_VERSION:
        assert set(calendars._TIMEZONES) == codes
        for code, zone in calendars._TIMEZONES.items():
            # the calendar class's own timezone (reading it builds no calendar)
            assert zone == str(calendars._class_attribute(code, "tz", lambda code=code: xc.get_calendar(code).tz)), code
    assert all(known_calendar(code) for code in codes) and not known_calendar("XXXX")
    monkeypatch.setattr(calendars, "_TABLE_VERSION", "0.0")  # as if another release were installed
    assert known_calendar("XNYS") and not known_calendar("XXXX")
    assert str(SessionCalendar("XTKS", dt.date(2024, 1, 4), dt.date(2024, 2, 1)).timezone) == "Asia/Tokyo"


def test_a_mistyped_timeframe_is_one_line_naming_the_value() -> None:
    message = _error({"us_stocks": {**SAMPLE_MARKET, "timeframes": ["1D"]}})
    assert "markets.us_stocks.timeframes.0: Input should be '1d', '1h', '15m', '5m' or '1m', not '1D'" in message
    assert "at least 1 item" not in message  # the list's length follows from its bad item: said once


STRATEGY = {"name": "s", "type": "sma_cross", "params": {"fast": 5, "slow": 20}}


@pytest.mark.parametrize(("markets", "top", "line"), [
    ({"m": SAMPLE_MARKET}, {"reprots_dir": "r"}, "reprots_dir: unknown key (did you mean 'reports_dir'?); valid top-level "
                                                  "keys: plugins, storage, reports_dir, report_bars, dagster_home, markets"),
    ({"m": {**SAMPLE_MARKET, "calender": "XNYS"}}, {}, "markets.m.calender: unknown key (did you mean 'calendar'?); "
                                                       "valid keys of markets.m: provider, calendar, timeframes, derive,"),
    ({"m": {**SAMPLE_MARKET, "provider": "files", "options": {"path": "x", "formt": "csv"}}}, {},
     "markets.m.options.formt: unknown key; valid keys of markets.m.options: path"),
    ({"m": {**SAMPLE_MARKET, "quality": {"max_open_gapp": 0.5}}}, {},
     "markets.m.quality.max_open_gapp: unknown key (did you mean 'max_open_gap'?); valid keys of markets.m.quality: "
     "profile, max_open_gap, min_factor_change"),
    ({"m": {**SAMPLE_MARKET, "strategies": [{**STRATEGY, "comission_bps": 5}]}}, {},
     "markets.m.strategies.0.comission_bps: unknown key (did you mean 'commission_bps'?); valid keys of "
     "markets.m.strategies.0: name, type, params, sizing, fractional, commission_bps, initial_cash"),
    ({"m": {**SAMPLE_MARKET, "strategies": [{**STRATEGY, "params": {"fast": 5, "slow": 20, "slwo": 9}}]}}, {},
     "markets.m.strategies.0.params.slwo: unknown key (did you mean 'slow'?); valid keys of "
     "markets.m.strategies.0.params: fast, slow"),
    ({"m": SAMPLE_MARKET}, {"storage": {"kind": "duckdb", "pth": "x"}},
     "storage.pth: unknown key (did you mean 'path'?); valid keys of storage: kind, path"),
])
def test_an_unknown_key_names_its_path_the_valid_keys_and_the_closest(markets: dict, top: dict, line: str) -> None:
    lines = _error(markets, **top).splitlines()
    assert lines[0] == "configuration is invalid:" and len(lines) == 2, lines  # nothing else is wrong: nothing else said
    assert lines[1].startswith(f"  {line}"), lines


def test_a_mapping_with_an_unknown_key_still_reports_its_other_problems_once() -> None:
    params = {"fast": 1, "slwo": 9}
    message = _error({"m": {**SAMPLE_MARKET, "strategies": [{**STRATEGY, "params": params}]}})
    assert message.splitlines()[1:] == [
        "  markets.m.strategies.0.params.slwo: unknown key (did you mean 'slow'?); valid keys of "
        "markets.m.strategies.0.params: fast, slow",
        "  markets.m.strategies.0.params.fast: Input should be greater than or equal to 2",
        "  markets.m.strategies.0.params.slow: Field required",
    ]
