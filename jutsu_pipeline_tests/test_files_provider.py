"""The `files` provider: a user's CSV/Parquet files round-trip exactly into DuckDB."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from jutsu_pipeline.config import load_config
from jutsu_pipeline.providers.base import FetchRequest, ProviderError, UnknownSymbolError
from jutsu_pipeline.providers.files import FilesProvider
from jutsu_pipeline.timeframes import Timeframe
from jutsu_pipeline_tests.conftest import query, write_config
from jutsu_pipeline_tests.helpers import partition_facts, run_bars, step_error

UTC = dt.timezone.utc
DAILY = pl.DataFrame({
    "Date": ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"],
    "OPEN": [187.15, 184.22, 182.15, 181.99, 182.085],
    "High": [188.44, 185.88, 183.0872, 182.76, 185.6],
    "low": [183.885, 183.43, 180.88, 180.17, 181.5],
    "Close": [185.64, 184.25, 181.91, 181.18, 185.56],
    "Volume": [82488674, 58414460, 71983570, 62379661, 59144470],
    "Adj Close": [184.938, 183.553, 181.222, 180.495, 184.859],
})


def _market(path: Path, timeframe: str = "1d", **extra) -> dict:
    return {"provider": "files", "options": {"path": str(path)}, "calendar": "XNYS", "timeframes": [timeframe],
            "start": "2024-01-02", "end": "2024-01-31", "symbols": ["SPX"],
            "partition_grain": {"1d": "month", timeframe: "month" if timeframe == "1d" else "session"}, **extra}


def test_csv_round_trips_exactly(tmp_path: Path, instance) -> None:
    (tmp_path / "csv").mkdir()
    DAILY.write_csv(tmp_path / "csv" / "SPX.csv")
    config = load_config(write_config(tmp_path, {"my_csvs": _market(tmp_path / "csv")}))
    result = run_bars(config, instance, key="2024-01-01|SPX", market="my_csvs")
    assert result.success and partition_facts(result)["2024-01-01|SPX"]["dagster/row_count"] == 5
    rows = query(config, "SELECT ts, open, high, low, close, volume, adj_close, source FROM bars ORDER BY ts")
    expected = [
        (dt.datetime.fromisoformat(d).replace(tzinfo=UTC), o, h, lo, c, float(v), a, "files")
        for d, o, h, lo, c, v, a in DAILY.iter_rows()
    ]
    assert [(r[0].astimezone(UTC), *r[1:]) for r in rows] == expected


def test_parquet_intraday_naive_times_are_read_in_the_market_timezone(tmp_path: Path) -> None:
    frame = pl.DataFrame({
        "timestamp": [dt.datetime(2024, 7, 1, 9, 30), dt.datetime(2024, 7, 1, 9, 35)],
        "open": [1.0, 2.0], "high": [2.0, 3.0], "low": [0.5, 1.5], "close": [1.5, 2.5], "volume": [10, 20],
    })
    frame.write_parquet(tmp_path / "SPY.parquet")
    provider = FilesProvider(tmp_path, "America/New_York")
    bars = provider.fetch(FetchRequest("SPY", Timeframe.M5, dt.datetime(2024, 7, 1, tzinfo=UTC),
                                       dt.datetime(2024, 7, 2, tzinfo=UTC)))
    assert bars["ts"].to_list() == [dt.datetime(2024, 7, 1, 13, 30, tzinfo=UTC), dt.datetime(2024, 7, 1, 13, 35, tzinfo=UTC)]
    assert bars["adj_close"].null_count() == 2


def test_missing_file_and_missing_columns_are_clear(tmp_path: Path) -> None:
    provider = FilesProvider(tmp_path, "America/New_York")
    request = FetchRequest("QQQ", Timeframe.D1, dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 2, 1, tzinfo=UTC))
    with pytest.raises(UnknownSymbolError, match="QQQ.parquet or QQQ.csv"):
        provider.fetch(request)
    DAILY.drop("Volume").write_csv(tmp_path / "QQQ.csv")
    with pytest.raises(Exception, match=r"lacks column\(s\) \['volume'\]"):
        provider.fetch(request)


def test_a_hole_inside_the_symbols_life_is_an_error_not_a_silent_gap(tmp_path: Path, instance) -> None:
    (tmp_path / "csv").mkdir()
    march = DAILY.with_columns(pl.Series("Date", ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08"]))
    pl.concat([DAILY, march]).write_csv(
        tmp_path / "csv" / "SPX.csv")
    config = load_config(write_config(tmp_path, {"my_csvs": _market(tmp_path / "csv", end="2024-03-31")}))
    result = run_bars(config, instance, start="2024-01-01|SPX", end="2024-03-01|SPX", market="my_csvs")
    assert not result.success
    assert "no bars in partition 2024-02-01|SPX although the calendar has 20 session(s)" in step_error(result)
    status = instance.get_materialized_partitions(dg.AssetKey(["my_csvs", "bars_1d"]))
    assert status == {"2024-01-01|SPX", "2024-03-01|SPX"}  # February stays missing, loudly


def test_a_quoted_header_after_a_byte_order_mark_is_read_with_the_given_types(tmp_path: Path) -> None:
    """The header is read apart (csv module) to give polars every column's type; a BOM or quotes change nothing."""
    body = DAILY.write_csv()
    header, rest = body.split("\n", 1)
    quoted = ",".join(f'"{name}"' for name in header.split(","))
    (tmp_path / "SPX.csv").write_bytes(b"\xef\xbb\xbf" + f"{quoted}\n{rest}".encode())
    provider = FilesProvider(tmp_path, "America/New_York", clock=lambda: dt.datetime(2024, 3, 1, tzinfo=UTC))
    frame = provider.fetch(FetchRequest("SPX", Timeframe.D1, dt.datetime(2024, 1, 1, tzinfo=UTC),
                                        dt.datetime(2024, 2, 1, tzinfo=UTC)))
    assert frame["ts"].dt.date().to_list() == [dt.date(2024, 1, d) for d in (2, 3, 4, 5, 8)]
    assert frame["open"].to_list() == DAILY["OPEN"].to_list() and frame["adj_close"].to_list() == DAILY["Adj Close"].to_list()
    assert frame["volume"].dtype == pl.Float64


def test_a_bad_csv_cell_is_named_by_line_column_and_value(tmp_path: Path) -> None:
    provider = FilesProvider(tmp_path, "America/New_York")
    request = FetchRequest("SPX", Timeframe.D1, dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 2, 1, tzinfo=UTC))
    DAILY.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("n/a")).otherwise(pl.col("Close").cast(pl.String))
                       .alias("Close")).write_csv(tmp_path / "SPX.csv")
    with pytest.raises(ProviderError) as error:
        provider.fetch(request)
    message = str(error.value)
    assert f"{tmp_path / 'SPX.csv'} line 5: column 'Close' has 'n/a', which is not a number" in message
    assert "infer_schema_length" not in message  # polars' advice about its reader is no use to a user


def test_a_bad_csv_date_is_named_by_line_and_value(tmp_path: Path) -> None:
    provider = FilesProvider(tmp_path, "America/New_York")
    request = FetchRequest("SPX", Timeframe.D1, dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 2, 1, tzinfo=UTC))
    DAILY.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("2024-01-4x")).otherwise(pl.col("Date"))
                       .alias("Date")).write_csv(tmp_path / "SPX.csv")
    with pytest.raises(ProviderError, match=r"SPX.csv line 4: time value '2024-01-4x' is not a date or timestamp"):
        provider.fetch(request)


def test_prefetched_reads_give_the_same_bars_and_the_same_errors_in_their_symbol_s_fetch(tmp_path: Path) -> None:
    """`prefetch` reads the files on reader threads; each fetch then returns what a plain read returns and
    raises its own symbol's error (not another's, and not at prefetch time)."""
    DAILY.write_csv(tmp_path / "SPX.csv")
    DAILY.head(3).write_parquet(tmp_path / "DIA.parquet")
    DAILY.drop("Volume").write_csv(tmp_path / "QQQ.csv")
    DAILY.with_columns(pl.lit("n/a").alias("Close")).write_csv(tmp_path / "IWM.csv")
    symbols = ["SPX", "QQQ", "NOPE", "IWM", "DIA"]
    clock = lambda: dt.datetime(2024, 3, 1, tzinfo=UTC)  # noqa: E731
    plain, prefetching = (FilesProvider(tmp_path, "America/New_York", clock=clock) for _ in range(2))
    prefetching.prefetch(symbols, Timeframe.D1)  # no error here: each belongs to its symbol's fetch

    def fetch(provider: FilesProvider, symbol: str) -> pl.DataFrame | str:
        try:
            return provider.fetch(FetchRequest(symbol, Timeframe.D1, dt.datetime(2024, 1, 1, tzinfo=UTC),
                                               dt.datetime(2024, 2, 1, tzinfo=UTC)))
        except ProviderError as error:
            return f"{type(error).__name__}: {error}"

    for symbol in reversed(symbols):  # in any order
        expected, got = fetch(plain, symbol), fetch(prefetching, symbol)
        assert type(got) is type(expected), symbol
        assert got.equals(expected) if isinstance(got, pl.DataFrame) else got == expected, symbol
    assert prefetching.stats.requests == plain.stats.requests == 4  # one read per found file, prefetched or not
    assert isinstance(fetch(prefetching, "SPX"), pl.DataFrame) and fetch(prefetching, "SPX").height == 5
    assert "'Close' has 'n/a'" in str(fetch(prefetching, "IWM")) and "UnknownSymbolError" in str(fetch(prefetching, "NOPE"))
    prefetching.close()
