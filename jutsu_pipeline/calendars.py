"""Trading sessions from real exchange calendars (exchange_calendars), or every day for 24/7 markets.

The one calendar facade: everything that needs sessions, opens, closes or trading weekdays asks a
`SessionCalendar`; the exchange_calendars objects are built (and cached) only here. pandas, polars and
exchange_calendars load when sessions are first asked for: reading the configuration needs none of them."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import os
import pickle
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from jutsu_pipeline.lazy import installed_version
from jutsu_pipeline.storage.atomic import write_atomically

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

UTC = dt.timezone.utc
ALWAYS_OPEN = "24/7"  # the calendar code of markets that trade every day (crypto)
# exchange_calendars only covers ~20 years unless given a start; ask for what the market needs.
_LOOKAHEAD_DAYS = 366


@dataclass(frozen=True)
class SessionCalendar:
    """The sessions of one calendar code between `first` and `last` (inclusive dates)."""

    code: str
    first: dt.date
    last: dt.date

    @property
    def always_open(self) -> bool:
        return self.code == ALWAYS_OPEN

    @property
    def timezone(self) -> ZoneInfo:
        if self.always_open:
            return ZoneInfo("UTC")
        if installed_version("exchange_calendars") == _TABLE_VERSION and self.code in _TIMEZONES:
            return ZoneInfo(_TIMEZONES[self.code])
        return ZoneInfo(str(_class_attribute(self.code, "tz", lambda: self._exchange().tz)))

    def _exchange(self):  # noqa: ANN202 - exchange_calendars.ExchangeCalendar
        return _exchange_calendar(self.code, self.first, self.last)

    def recent(self, days: int) -> SessionCalendar:
        """The same calendar over its last `days` days only (cheaper to build than decades of holidays)."""
        return SessionCalendar(self.code, max(self.first, self.last - dt.timedelta(days=days)), self.last)

    def gaps(self, count: int) -> list[int]:
        """Days between consecutive sessions among the calendar's last `count` (for the freshness policy)."""
        def compute() -> list[int]:
            sessions = self.sessions()[-count:]
            return [(b - a).days for a, b in zip(sessions, sessions[1:])]

        return _cached_json(f"gaps_{self.code}_{self.first}_{self.last}_{count}", compute)

    def sessions(self, start: dt.date | None = None, end: dt.date | None = None) -> list[dt.date]:
        """Session dates in [start, end] (inclusive), bounded by the calendar's range."""
        lo = max(start or self.first, self.first)
        hi = min(end or self.last, self.last)
        if lo > hi:
            return []
        if self.always_open:
            return [lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)]
        return [ts.date() for ts in self._session_index(lo, hi)]

    def _session_index(self, lo: dt.date, hi: dt.date) -> pd.DatetimeIndex:
        """Sessions in [lo, hi] (slicing, so bounds that are not sessions themselves are fine)."""
        import pandas as pd

        sessions = self._exchange().sessions
        return sessions[(sessions >= pd.Timestamp(lo)) & (sessions <= pd.Timestamp(hi))]

    def closed_weekdays(self) -> list[dt.date]:
        """Weekdays that are not sessions (holidays and ad-hoc closures such as 9/11)."""
        if self.always_open:
            return []
        import pandas as pd

        weekdays = pd.bdate_range(self.first, self.last)
        return [ts.date() for ts in weekdays.difference(self._session_index(self.first, self.last))]

    def is_session(self, day: dt.date) -> bool:
        if self.always_open:
            return self.first <= day <= self.last
        return len(self._session_index(day, day)) == 1

    def next_session(self, day: dt.date) -> dt.date:
        """The first session strictly after `day`."""
        if self.always_open:
            return day + dt.timedelta(days=1)
        later = self._session_index(day + dt.timedelta(days=1), self.last)
        if not len(later):
            raise ValueError(f"{self.code} has no session after {day} up to {self.last}")
        return later[0].date()

    def session_bounds(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """[open, close) of a session in UTC; early closes honoured; a whole UTC day for 24/7."""
        if self.always_open:
            start = dt.datetime.combine(day, dt.time(), UTC)
            return start, start + dt.timedelta(days=1)
        import pandas as pd

        exchange = self._exchange()
        session = pd.Timestamp(day)
        return (
            exchange.session_open(session).to_pydatetime(),
            exchange.session_close(session).to_pydatetime(),
        )

    def regular_open(self) -> dt.time:
        """The regular open in force now, in the exchange's timezone; 24/7: midnight."""
        return dt.time() if self.always_open else dt.time.fromisoformat(self._regular()["open"])

    def regular_close(self) -> dt.time:
        """The regular close in force now, in the exchange's timezone (early closes ignored); 24/7: midnight."""
        return dt.time() if self.always_open else dt.time.fromisoformat(self._regular()["close"])

    def trading_weekdays(self) -> list[int]:
        """Weekdays with regular sessions, Monday = 0."""
        return list(range(7)) if self.always_open else list(self._regular()["weekdays"])

    def _regular(self) -> dict[str, Any]:
        """The regular open and close in force now and the trading weekdays (the close schedule's)."""
        def compute() -> dict[str, Any]:
            weekmask = _class_attribute(self.code, "weekmask", lambda: self._exchange().weekmask)
            return {"open": _class_attribute(self.code, "open_times", lambda: self._exchange().open_times)[-1][1].isoformat(),
                    "close": _class_attribute(self.code, "close_times", lambda: self._exchange().close_times)[-1][1].isoformat(),
                    "weekdays": [i for i, flag in enumerate(weekmask) if flag == "1"]}

        return _cached_json(f"regular_{self.code}", compute)


def session_table(calendar: SessionCalendar, first: dt.date, last: dt.date) -> pl.DataFrame:
    """session (date), open, close (UTC) of every session in [first, last]; early closes honoured."""
    import pandas as pd
    import polars as pl

    sessions = calendar.sessions(first, last)
    if calendar.always_open or not sessions:
        opens = [dt.datetime.combine(day, dt.time(), UTC) for day in sessions]
        return pl.DataFrame({"session": sessions, "open": opens, "close": [o + dt.timedelta(days=1) for o in opens]},
                            schema={"session": pl.Date, "open": pl.Datetime("us", "UTC"),
                                    "close": pl.Datetime("us", "UTC")})
    exchange = calendar._exchange()  # noqa: SLF001 - same module
    index = pd.DatetimeIndex(sessions)
    return pl.DataFrame({
        "session": sessions,
        "open": _utc(exchange.opens.loc[index]),
        "close": _utc(exchange.closes.loc[index]),
    })


def _utc(times: pd.Series) -> pl.Series:
    import polars as pl

    series = pl.from_pandas(times.reset_index(drop=True))
    assert isinstance(series, pl.Series)  # a pandas Series converts to a Series
    assert isinstance(series.dtype, pl.Datetime)  # session opens/closes are timestamps
    if series.dtype.time_zone is None:
        series = series.dt.replace_time_zone("UTC")
    return series.dt.convert_time_zone("UTC").dt.cast_time_unit("us")


def _class_attribute(code: str, name: str, built: Callable[[], Any]) -> Any:
    """An attribute the exchange's calendar class declares itself (timezone, close times, weekmask),
    read without building the calendar (0.3-0.6 s of holiday rules for ten years, measured); `built()`
    when the class computes it per instance."""
    import exchange_calendars as xc
    from exchange_calendars.calendar_utils import _default_calendar_factories

    value = inspect.getattr_static(_default_calendar_factories[xc.resolve_alias(code)], name, None)
    if isinstance(value, property) and value.fget is not None \
            and value is inspect.getattr_static(xc.ExchangeCalendar, name, None):
        return value.fget(None)  # the base class's constant (e.g. weekmask "1111100")
    return built() if value is None or isinstance(value, property) else value


@lru_cache(maxsize=32)
def _exchange_calendar(code: str, first: dt.date, last: dt.date):  # noqa: ANN202
    """The exchange's calendar over [first, last], from the disk cache when an earlier process built it: building
    it computes every holiday rule over the range (0.3-0.9 s for 25 years), in every run worker; unpickling it
    takes ~0.07 s. Keyed by the library versions, so an upgrade (new holidays, ad-hoc closures) builds anew."""
    import exchange_calendars as xc
    import pandas as pd

    folder = _cache_folder()
    name = f"{code.replace('/', '-')}_{first}_{last}_xc{xc.__version__}_pd{pd.__version__}_py{sys.version_info[0]}{sys.version_info[1]}"
    path = folder / f"{name}.pickle" if folder else None
    if path is not None and path.exists():
        try:
            with path.open("rb") as cached:
                calendar = pickle.load(cached)  # noqa: S301 - our own cache file, written below
            if isinstance(calendar, xc.ExchangeCalendar):
                os.utime(path)  # in use: kept by the pruning below
                return calendar
        except Exception:  # noqa: BLE001, S110 - a corrupt or foreign cache file is rebuilt, never fatal
            pass
    calendar = xc.get_calendar(code, start=pd.Timestamp(first), end=pd.Timestamp(last))
    if path is not None:
        _write_cache(path, pickle.dumps(calendar, protocol=pickle.HIGHEST_PROTOCOL))
    return calendar


CACHE_ENV = "JUTSU_CACHE_DIR"  # where built calendars are kept; empty: no disk cache
_CACHE_DAYS = 30  # a cached calendar unused this long is deleted (open-ended markets' ranges move daily)


def _cache_folder() -> Path | None:
    configured = os.environ.get(CACHE_ENV)
    if configured == "":
        return None
    base = Path(configured) if configured else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jutsu-pipeline"
    return base / "calendars"


def _cached_json(name: str, compute: Callable[[], Any]) -> Any:
    """`compute()`'s value, kept on disk as JSON per exchange_calendars version: what loading the definitions asks
    of a calendar (the freshness policy's session gaps, the close schedule's times) then needs neither
    exchange_calendars nor pandas, 0.5-5 s of imports by the machine's load in every process."""
    folder = _cache_folder()
    path = folder / f"{name.replace('/', '-')}_xc{installed_version('exchange_calendars')}.json" if folder else None
    try:
        if path is not None:
            return json.loads(path.read_text())
    except (OSError, ValueError):  # not cached yet, or unreadable: computed anew
        pass
    value = compute()
    if path is not None:
        _write_cache(path, json.dumps(value).encode())
    return value


def _write_cache(path: Path, payload: bytes) -> None:
    """Atomically (a reader never sees half a file); an unwritable cache only costs the next process a build."""
    try:
        write_atomically(path, payload)
        cutoff = time.time() - _CACHE_DAYS * 86400
        for old in [*path.parent.glob("*.pickle"), *path.parent.glob("*.json")]:
            if old.stat().st_mtime < cutoff:
                old.unlink(missing_ok=True)
    except OSError:
        pass


def calendar_for(code: str, start: dt.date, end: dt.date | None) -> SessionCalendar:
    """A calendar covering [start, end], or up to a year ahead of today when `end` is open."""
    today = dt.datetime.now(UTC).date()
    last = end if end is not None else today + dt.timedelta(days=_LOOKAHEAD_DAYS)
    # Round the range outward so that months and neighbouring sessions are always covered.
    first = start.replace(day=1) - dt.timedelta(days=7)
    last = max(last, today) + dt.timedelta(days=14) if end is None else last + dt.timedelta(days=40)
    return SessionCalendar(code, first, last)


# exchange_calendars 4.13.2's codes and aliases (`get_calendar_names(include_aliases=True)`) with each
# calendar's timezone: validating a configuration and planning a sync check a calendar and cut its
# partitions without importing the library (and pandas). Another installed version is asked directly;
# test_config.py pins this table to the library.
_TABLE_VERSION = "4.13.2"
_TIMEZONES = {
    "24/5": "UTC", "24/7": "UTC", "AIXK": "Asia/Almaty", "ARCX": "America/New_York", "ASEX": "Europe/Athens",
    "ASX": "Australia/Sydney", "BATS": "America/New_York", "BMF": "America/Sao_Paulo", "BSE": "Asia/Kolkata",
    "BVB": "Europe/Bucharest", "BVMF": "America/Sao_Paulo", "CBOT": "America/Chicago", "CFE": "America/Chicago",
    "CME": "America/Chicago", "CMES": "America/Chicago", "COMEX": "America/Chicago", "FWB": "Europe/Berlin",
    "HKEX": "Asia/Hong_Kong", "ICE": "America/New_York", "ICEUS": "America/New_York", "IEPA":
    "America/New_York", "JKT": "Asia/Jakarta", "JPX": "Asia/Tokyo", "LSE": "Europe/London", "LUXSE":
    "Europe/Luxembourg", "NASDAQ": "America/New_York", "NYFE": "America/New_York", "NYMEX": "America/Chicago",
    "NYSE": "America/New_York", "OOTC": "America/New_York", "OSE": "Europe/Oslo", "SIX": "Europe/Zurich", "SSE":
    "Asia/Shanghai", "TASE": "Asia/Tel_Aviv", "TSX": "America/Toronto", "XAMS": "Europe/Amsterdam", "XASE":
    "America/New_York", "XASX": "Australia/Sydney", "XBDA": "Atlantic/Bermuda", "XBEL": "Europe/Belgrade",
    "XBKK": "Asia/Bangkok", "XBOG": "America/New_York", "XBOM": "Asia/Kolkata", "XBRA": "Europe/Bratislava",
    "XBRU": "Europe/Brussels", "XBSE": "Europe/Bucharest", "XBUD": "Europe/Budapest", "XBUE":
    "America/Argentina/Buenos_Aires", "XCBF": "America/Chicago", "XCSE": "Europe/Copenhagen", "XCYS":
    "Asia/Nicosia", "XDUB": "Europe/Dublin", "XDUS": "Europe/Brussels", "XEEE": "Europe/Berlin", "XETR":
    "Europe/Berlin", "XEUR": "Europe/Berlin", "XFRA": "Europe/Berlin", "XHAM": "Europe/Brussels", "XHEL":
    "Europe/Helsinki", "XHKG": "Asia/Hong_Kong", "XICE": "Atlantic/Reykjavik", "XIDX": "Asia/Jakarta", "XIST":
    "Europe/Istanbul", "XJSE": "Africa/Johannesburg", "XKAR": "Asia/Karachi", "XKLS": "Asia/Kuala_Lumpur",
    "XKRX": "Asia/Seoul", "XLIM": "America/Lima", "XLIS": "Europe/Lisbon", "XLIT": "Europe/Vilnius", "XLJU":
    "Europe/Ljubljana", "XLON": "Europe/London", "XLUX": "Europe/Luxembourg", "XMAD": "Europe/Madrid", "XMEX":
    "America/Mexico_City", "XMIL": "Europe/Rome", "XMOS": "Europe/Moscow", "XNAS": "America/New_York", "XNYS":
    "America/New_York", "XNZE": "Pacific/Auckland", "XOSL": "Europe/Oslo", "XPAR": "Europe/Paris", "XPHS":
    "Asia/Manila", "XPRA": "Europe/Prague", "XRIS": "Europe/Riga", "XSAU": "Asia/Riyadh", "XSES":
    "Asia/Singapore", "XSGO": "America/Santiago", "XSHG": "Asia/Shanghai", "XSTO": "Europe/Stockholm", "XSTU":
    "Europe/Berlin", "XSWX": "Europe/Zurich", "XTAE": "Asia/Tel_Aviv", "XTAI": "Asia/Taipei", "XTAL":
    "Europe/Tallinn", "XTKS": "Asia/Tokyo", "XTSE": "America/Toronto", "XTSX": "America/Toronto", "XWAR":
    "Europe/Warsaw", "XWBO": "Europe/Vienna", "XZAG": "Europe/Zagreb", "us_futures": "America/New_York"
}


def known_calendar(code: str) -> bool:
    """`code` is 24/7 or an exchange_calendars code (aliases included)."""
    if code == ALWAYS_OPEN:
        return True
    if installed_version("exchange_calendars") == _TABLE_VERSION:
        return code in _TIMEZONES
    import exchange_calendars as xc

    return code in xc.get_calendar_names(include_aliases=True)
