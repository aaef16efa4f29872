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
