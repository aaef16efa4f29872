"""Every exchange calendar a market may name builds its sessions with the pinned pandas."""

from __future__ import annotations

import datetime as dt

import exchange_calendars as xc
import pytest

from jutsu_pipeline.calendars import calendar_for
from jutsu_pipeline.config import parse_config

CODES = sorted(xc.get_calendar_names(include_aliases=False))


@pytest.mark.slow  # ~0.4 s per calendar: 70 of them
@pytest.mark.parametrize("code", CODES)
def test_every_exchange_calendar_builds(code: str) -> None:
    first = xc.get_calendar(code).first_session.date() if code == "XSAU" else dt.date(2023, 1, 2)  # XSAU: 2021 on
    calendar = calendar_for(code, max(first, dt.date(2023, 1, 2)), dt.date(2023, 12, 29))
    sessions = calendar.sessions(dt.date(2023, 1, 2), dt.date(2023, 12, 29))
    assert 200 <= len(sessions) <= 366, (code, len(sessions))


def test_an_athens_market_loads_and_knows_orthodox_easter() -> None:
    """The rule that raised on pandas 3: Athens closes on Orthodox Good Friday and Easter Monday."""
    market = parse_config({"markets": {"gr": {"provider": "sample", "calendar": "ASEX", "timeframes": ["1d"],
                                              "start": "2023-01-02", "end": "2023-12-29", "symbols": ["OPAP"]}}})
    calendar = calendar_for(market.markets["gr"].calendar, dt.date(2023, 1, 2), dt.date(2023, 12, 29))
    assert [calendar.is_session(dt.date(2023, 4, d)) for d in (13, 14, 17, 18)] == [True, False, False, True]
    assert not calendar.is_session(dt.date(2023, 12, 25))


def test_a_calendar_built_once_is_read_from_the_disk_cache_by_later_processes(tmp_path, monkeypatch) -> None:
    """A run worker reads the calendar an earlier process built (no holiday rules computed again); a corrupt
    cache file is rebuilt; an empty JUTSU_CACHE_DIR keeps nothing on disk."""
    from jutsu_pipeline.calendars import CACHE_ENV, _exchange_calendar

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    built: list[str] = []
    real = xc.get_calendar
    monkeypatch.setattr(xc, "get_calendar", lambda code, **kw: built.append(code) or real(code, **kw))
    span = (dt.date(2020, 1, 2), dt.date(2020, 12, 31))

    def sessions_in_a_new_process() -> tuple[list[dt.date], object]:
        _exchange_calendar.cache_clear()  # what a new process starts with
        calendar = calendar_for("XNYS", *span)
        return calendar.sessions(*span), calendar.session_bounds(dt.date(2020, 11, 27))  # an early close

    try:
        first = sessions_in_a_new_process()
        assert built == ["XNYS"] and len(first[0]) == 253
        assert sessions_in_a_new_process() == first and built == ["XNYS"]  # read back, not built
        [cached] = (tmp_path / "calendars").glob("XNYS_*.pickle")
        cached.write_bytes(b"not a pickle")
        assert sessions_in_a_new_process() == first and built == ["XNYS", "XNYS"]  # rebuilt and rewritten
        assert sessions_in_a_new_process() == first and built == ["XNYS", "XNYS"]
        monkeypatch.setenv(CACHE_ENV, "")
        _exchange_calendar.cache_clear()
        _exchange_calendar("XNYS", *span)
        assert built[-1] == "XNYS" and len(list((tmp_path / "calendars").glob("*.pickle"))) == 1
    finally:
        _exchange_calendar.cache_clear()


def test_definitions_loaded_again_do_not_import_exchange_calendars(tmp_path) -> None:
    """The bars' freshness policy needs the calendar's recent session gaps: the first process computes them,
    later ones (each run worker, the code server) read them, and the close schedule's times, from the cache
    and get the same policy. (pandas still loads: DuckDB imports it to bind the storage layer's parameters.)"""
    import json
    import os
    import subprocess
    import sys

    from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, write_config

    config = write_config(tmp_path, {"us_stocks": SAMPLE_MARKET})
    probe = ("import json, sys\nfrom jutsu_pipeline.config import load_config\nfrom jutsu_pipeline.definitions import "
             "build_definitions\nimport dagster as dg\ndefs = build_definitions(load_config(sys.argv[1]))\n"
             "[spec] = defs.resolve_assets_def(dg.AssetKey(['us_stocks', 'bars_1d'])).specs\n"
             "windows = [w.to_timedelta().days for w in (spec.freshness_policy.warn_window, spec.freshness_policy.fail_window)]\n"
             "print(json.dumps([windows, sorted({'exchange_calendars'} & set(sys.modules))]))")
    env = {**os.environ, "JUTSU_CACHE_DIR": str(tmp_path / "cache")}

    def load() -> list:
        done = subprocess.run([sys.executable, "-c", probe, str(config)], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    first, again = load(), load()
    assert first[1] == ["exchange_calendars"]  # computed once
    assert again == [first[0], []]
    assert first[0][0] == 3 and first[0][1] >= 4  # warn after a weekend, fail after the longest closure
