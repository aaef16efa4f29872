"""The checks' changed-scope read: each changed symbol's rows from its `since` on plus its previous bar as
context, found near `since` first and over the symbol's whole history only when there is none nearby."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest

from jutsu_pipeline.quality.checks import Changed
from jutsu_pipeline.storage.ddl import ensure_schema
from jutsu_pipeline.storage.scope import CHANGED_RELATION, CONTEXT_LOOKBACK, EARLIEST, JUDGED, read_changed_bars

UTC = dt.timezone.utc
SINCE = dt.datetime(2024, 1, 1, tzinfo=UTC)


def _days(first: dt.date, last: dt.date, skip: tuple[dt.date, dt.date] | None = None) -> list[dt.datetime]:
    days, day = [], first
    while day <= last:
        if skip is None or not skip[0] <= day <= skip[1]:
            days.append(dt.datetime.combine(day, dt.time(), UTC))
        day += dt.timedelta(days=1)
    return days


def _store(con: duckdb.DuckDBPyConnection, rows: dict[str, list[dt.datetime]], timeframe: str = "1d") -> None:
    frame = pl.DataFrame([(s, timeframe, ts, float(i + 1)) for s, days in rows.items() for i, ts in enumerate(days)],
                         schema={"symbol": pl.String, "timeframe": pl.String, "ts": pl.Datetime("us", "UTC"),
                                 "close": pl.Float64}, orient="row")
    con.register("new_rows", frame.to_arrow())
    con.execute("INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume, source, ingested_at) "
                "SELECT symbol, timeframe, ts, close, close, close, close, 1, 'test', now() FROM new_rows")
    con.unregister("new_rows")


@pytest.mark.parametrize("failing", [False, True], ids=["near lookup", "a symbol judged whole"])
def test_changed_rows_come_with_their_previous_bar_however_far_back(tmp_path: Path, failing: bool) -> None:
    history = _days(dt.date(2022, 1, 1), dt.date(2024, 3, 31))
    rows = {
        "NEAR": history,  # previous bar the day before `since`
        "GAP": _days(dt.date(2022, 1, 1), dt.date(2024, 3, 31), skip=(dt.date(2023, 6, 1), dt.date(2023, 12, 31))),
        "LISTED": _days(dt.date(2024, 2, 1), dt.date(2024, 3, 31)),  # nothing before `since`: no context
        "FAILING": history,  # judged over its whole history
        "LATER": history,  # a later `since`: its own previous bar, not the earliest symbol's
        "UNCHANGED": history,  # not in the scope: none of its rows
    }
    with duckdb.connect(str(tmp_path / "t.duckdb")) as con:
        ensure_schema(con)
        _store(con, rows)
        _store(con, {"NEAR": history}, timeframe="1h")  # another timeframe's rows are not read
        later = dt.datetime(2024, 3, 1, tzinfo=UTC)
        changed = Changed({"NEAR": SINCE, "GAP": SINCE, "LISTED": SINCE, "LATER": later})
        changed = changed.with_symbols(["FAILING"] if failing else [])
        con.register(CHANGED_RELATION, changed.frame().to_arrow())
        got = pl.from_arrow(read_changed_bars(con, "1d", columns=("close",)))
    assert isinstance(got, pl.DataFrame)
    # The reference: every row from each symbol's last bar before `since` on, judged from `since` on.
    expected = []
    for symbol, since in changed.since.items():
        days = rows[symbol]
        before = [ts for ts in days if ts < since]
        first = before[-1] if before else since
        expected += [(symbol, ts, float(i + 1), ts >= since) for i, ts in enumerate(days) if ts >= first]
    reference = pl.DataFrame(expected, schema=got.schema, orient="row").sort("symbol", "ts")
    assert got.to_dicts() == reference.to_dicts()
    context = {r["symbol"]: r["ts"].date() for r in got.filter(~pl.col(JUDGED)).to_dicts()}
    assert context == {"NEAR": dt.date(2023, 12, 31), "GAP": dt.date(2023, 5, 31), "LATER": dt.date(2024, 2, 29)}
    assert dt.date(2023, 12, 31) - dt.date(2023, 5, 31) > CONTEXT_LOOKBACK  # GAP's is beyond the near lookup
    assert got.filter(pl.col("symbol") == "FAILING").height == (len(history) if failing else 0)
    assert EARLIEST < history[0]
