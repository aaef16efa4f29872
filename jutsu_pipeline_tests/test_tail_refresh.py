"""Tail refresh: a stored window is fetched only from its last final bar (less the overlap), so a
provider revision inside the overlap is picked up and nothing before it is refetched or rewritten."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import duckdb

from jutsu_fake_exchange import FakeExchange
from jutsu_fake_exchange.testing import provider_options
from jutsu_pipeline.config import parse_config
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.providers import build_provider
from jutsu_pipeline.sync.engine import BarsSync
from jutsu_pipeline.timeframes import Timeframe

UTC = dt.timezone.utc
KEY = "2024-01-01|BTCUSDT"  # the yearly window (default grain of 1h), clipped to March by start/end


def _sync(fx: FakeExchange, db: Path, now: dt.datetime, *, tail: bool, overlap: int = 2):  # noqa: ANN202
    market = {"provider": "binance", "calendar": "24/7", "timeframes": ["1h"], "start": "2024-03-01",
              "end": "2024-03-31", "symbols": ["BTCUSDT"], "tail_overlap_bars": overlap, "partition_grain": {"1h": "year"},
              "options": provider_options(fx, "binance", page_limit=1000)}
    config = parse_config({"duckdb_path": str(db), "markets": {"crypto": market}})
    p = BarsPartitioning("crypto", Timeframe.H1, config.markets["crypto"])
    provider = build_provider("binance", market["options"], "UTC", Path)
    fx.clock.set(now)
    try:
        return BarsSync(p, provider, lambda: duckdb.connect(str(db)), logging.getLogger("test"), now=now,
                        tail=tail).run([KEY])
    finally:
        provider.close()


def _rows(db: Path) -> dict[dt.datetime, float]:
    with duckdb.connect(str(db)) as con:
        con.execute("SET TimeZone = 'UTC'")
        return {ts.astimezone(UTC): close for ts, close in con.execute("SELECT ts, close FROM bars ORDER BY ts").fetchall()}


def test_tail_fetches_only_after_the_last_final_bar_and_picks_up_a_revision(fx, tmp_path: Path) -> None:
    db = tmp_path / "jutsu.duckdb"
    first = _sync(fx, db, dt.datetime(2024, 3, 10, 12, 30, tzinfo=UTC), tail=False)
    assert not first.failed
    stored = _rows(db)
    last_final = dt.datetime(2024, 3, 10, 11, tzinfo=UTC)  # the 12:00 bar is still open at 12:30
    assert dt.datetime(2024, 3, 1, tzinfo=UTC) in stored and last_final in stored
    # The provider later revises the 10:00 bar (inside the 2-bar overlap) and the 05:00 bar (before it):
    # here the stored values differ from what the provider serves, which is the same thing.
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE bars SET close = low WHERE ts IN ('2024-03-10 10:00:00+00', '2024-03-10 05:00:00+00')")
    seen = len(fx.requests("binance"))

    refresh = _sync(fx, db, dt.datetime(2024, 3, 10, 15, 30, tzinfo=UTC), tail=True)
    assert not refresh.failed and refresh.provider_calls == 1
    starts = [int(r.params["startTime"]) for r in fx.requests("binance")[seen:]]
    assert starts == [int(dt.datetime(2024, 3, 10, 9, tzinfo=UTC).timestamp() * 1000)]  # 11:00 less 2 bars
    after = _rows(db)
    assert after[dt.datetime(2024, 3, 10, 10, tzinfo=UTC)] == stored[dt.datetime(2024, 3, 10, 10, tzinfo=UTC)]
    assert after[dt.datetime(2024, 3, 10, 5, tzinfo=UTC)] != stored[dt.datetime(2024, 3, 10, 5, tzinfo=UTC)]
    assert max(after) >= dt.datetime(2024, 3, 10, 14, tzinfo=UTC)
    hours = int((max(after) - min(after)).total_seconds() // 3600) + 1
    assert len(after) == hours  # every hour once: nothing lost or doubled at the seam
    # The window's recorded facts (its materialisation metadata) are the whole window's, not the tail's.
    assert refresh.written[KEY] < len(after)
    assert refresh.stored[KEY] == (len(after), min(after), max(after))


def test_a_window_without_stored_bars_is_fetched_whole_even_in_tail_mode(fx, tmp_path: Path) -> None:
    db = tmp_path / "jutsu.duckdb"
    outcome = _sync(fx, db, dt.datetime(2024, 3, 5, 0, 30, tzinfo=UTC), tail=True)
    starts = [int(r.params["startTime"]) for r in fx.requests("binance")]
    assert starts[0] == int(dt.datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)
    assert outcome.bars_written == 4 * 24  # March 1st to 4th, every hour


def _progress_lines(tmp_path: Path, clock) -> list[int]:  # noqa: ANN001 - a () -> float
    """symbols_done of each `fetched` progress line of a 40-symbol files sync under `clock`."""
    import polars as pl

    from jutsu_pipeline.sync.engine import PROGRESS_EXTRA

    symbols = [f"S{i:02d}" for i in range(40)]
    (tmp_path / "bars").mkdir(parents=True)
    for symbol in symbols:
        pl.DataFrame({"date": [dt.date(2024, 1, 2)], "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0],
                      "volume": [1.0]}).write_parquet(tmp_path / "bars" / f"{symbol}.parquet")
    market = {"provider": "files", "options": {"path": str(tmp_path / "bars")}, "calendar": "XNYS", "timeframes": ["1d"],
              "start": "2024-01-02", "end": "2024-01-02", "symbols": symbols, "partition_grain": {"1d": "year"}}
    config = parse_config({"duckdb_path": str(tmp_path / "jutsu.duckdb"), "markets": {"m": market}})
    p = BarsPartitioning("m", Timeframe.D1, config.markets["m"])
    records: list[logging.LogRecord] = []
    logger = logging.getLogger(f"test.progress.{id(clock)}")
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    provider = build_provider("files", market["options"], "America/New_York", Path)
    outcome = BarsSync(p, provider, lambda: duckdb.connect(str(tmp_path / "jutsu.duckdb")), logger,
                       now=dt.datetime(2024, 1, 10, tzinfo=UTC), clock=clock).run([f"2024-01-01|{s}" for s in symbols])
    assert len(outcome.written) == 40
    return [getattr(r, PROGRESS_EXTRA)["symbols_done"] for r in records
            if getattr(r, PROGRESS_EXTRA, {}).get("phase") == "fetched"]


def test_progress_lines_are_spaced_in_time_and_bounded_in_number(tmp_path: Path) -> None:
    """A fast run logs its last symbol only (each line is an event-log row); a slow one every 2nd symbol
    of 40 (PROGRESS_LINES = 20), never more."""
    assert _progress_lines(tmp_path / "fast", lambda: 0.0) == [40]
    ticks = iter(range(0, 10_000, 10))  # ten seconds pass between any two looks at the clock
    assert _progress_lines(tmp_path / "slow", lambda: float(next(ticks))) == list(range(2, 41, 2))
