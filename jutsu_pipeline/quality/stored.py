"""The asset checks' logic: evaluate one asset's stored bars (market symbols × timeframe) as a whole.

Each function reads the table with the SQL of `sql.py` (set logic stays in DuckDB) or loads the asset's
rows once and applies the rule expressions of `rules.py` (the ones the pre-write gate uses), and returns
a `CheckReport` with per-symbol counts. They work on any connection and are what the benchmark times.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable

import duckdb
import pandera.polars as pa
import polars as pl

from jutsu_pipeline.calendars import session_table
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.quality import sql
from jutsu_pipeline.quality.checks import Check, CheckInputs, register
from jutsu_pipeline.quality.grid import calendar_grid, materialized_frame
from jutsu_pipeline.quality.report import MAX_SAMPLES, CheckReport, Markdown, empty_per_symbol, markdown_table
from jutsu_pipeline.quality.rules import (
    DAILY_RULES,
    STORED_ROW_RULES,
    VALUE_COLUMNS,
    adjusted_gap,
    corporate_action,
    factor_change,
    open_gap,
    previous,
    suspicious_rules,
)
from jutsu_pipeline.storage.scope import read_bars, scope_params

UTC = dt.timezone.utc
MAX_CORPORATE_ACTIONS = 25

_SCHEMA_RULES = ("column_types", *STORED_ROW_RULES, "daily_at_midnight")


def _params(p: BarsPartitioning) -> dict:
    return scope_params(p.timeframe.value, p.symbols)


def _ts_format(p: BarsPartitioning) -> str:
    return "%Y-%m-%d %H:%M" if p.timeframe.is_intraday else "%Y-%m-%d"


def has_bars_table(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(sql.TABLE_COLUMNS).fetchall())


def load_bars(con: duckdb.DuckDBPyConnection, p: BarsPartitioning) -> pl.DataFrame:
    """The asset's stored rows, sorted by symbol and ts."""
    return pl.from_arrow(read_bars(con, p.timeframe.value, p.symbols))


def _row_count(con: duckdb.DuckDBPyConnection, p: BarsPartitioning) -> tuple[int, int]:
    ((rows, symbols),) = con.execute(sql.ROW_COUNT, _params(p)).fetchall()
    return int(rows), int(symbols)


def _timed(check: Callable[..., CheckReport]) -> Callable[..., CheckReport]:
    def run(*args, **kwargs) -> CheckReport:  # noqa: ANN002, ANN003
        started = time.perf_counter()
        report = check(*args, **kwargs)
        report.seconds = time.perf_counter() - started
        return report

    run.__doc__, run.__name__ = check.__doc__, check.__name__
    return run


# -- row rules over the loaded frame ---------------------------------------------------------------


def flag_rows(frame: pl.DataFrame, flags: dict[str, pl.Expr], ts_format: str,
              sample_columns: Iterable[str | pl.Expr] = ()) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Rows violating each rule (expr False; null = not a definite violation): per-symbol counts, samples."""
    bad = {f"_bad_{name}": (~expr).fill_null(False) for name, expr in flags.items()}
    marked = frame.with_columns(*sample_columns, **bad).filter(pl.any_horizontal(list(bad)))
    if marked.is_empty():
        return empty_per_symbol(), None
    long = (
        marked.select("symbol", "ts", *bad)
        .unpivot(index=["symbol", "ts"], variable_name="rule", value_name="bad")
        .filter("bad")
        .with_columns(pl.col("rule").str.strip_prefix("_bad_"))
    )
    per_symbol = long.group_by("symbol", "rule").agg(
        pl.len().cast(pl.Int64).alias("count"),
        pl.col("ts").sort().head(3).dt.strftime(ts_format).str.join(", ").alias("examples"),
    )
    rules = pl.concat_str([pl.when(pl.col(c)).then(pl.lit(c.removeprefix("_bad_"))) for c in bad], separator=",",
                          ignore_nulls=True).alias("rules")
    samples = marked.head(MAX_SAMPLES).with_columns(rules, pl.col("ts").dt.strftime(ts_format)).drop(*bad)
    return per_symbol.sort("symbol", "rule"), samples


def _column_type_problems(frame: pl.DataFrame) -> list[str]:
    columns = {"symbol": pa.Column(pl.String), "ts": pa.Column(pl.Datetime("us", "UTC")),
               **{name: pa.Column(pl.Float64, nullable=True) for name in VALUE_COLUMNS}}
    try:
        pa.DataFrameSchema(columns, name="ohlcv_stored").validate(frame.head(0), lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        return [f"{column}: {check}" for column, check in cases.select("column", "check").iter_rows()]
    return []


@_timed
def check_schema(con: duckdb.DuckDBPyConnection, p: BarsPartitioning) -> CheckReport:
    """ohlcv_schema: the row rules of the pre-write schema, counted per symbol over all stored bars."""
    rules = tuple(r for r in _SCHEMA_RULES if r != "daily_at_midnight" or not p.timeframe.is_intraday)
    frame = load_bars(con, p)
    report = CheckReport("ohlcv_schema", rules, frame.height, frame["symbol"].n_unique())
    flags = {**STORED_ROW_RULES, **({} if p.timeframe.is_intraday else DAILY_RULES)}
    problems = _column_type_problems(frame)
    if problems and frame.height:
        detail = "; ".join(problems)
        typed = frame.group_by("symbol").agg(pl.len().cast(pl.Int64).alias("count")).with_columns(
            pl.lit("column_types").alias("rule"), pl.lit(detail).alias("examples"))
        report.per_symbol = typed.select("symbol", "rule", "count", "examples")
        report.samples = pl.DataFrame({"column_types": problems})
        return report  # values of the wrong type are not judged further
    report.per_symbol, report.samples = flag_rows(frame, flags, _ts_format(p))
    return report


@_timed
def check_anomalies(con: duckdb.DuckDBPyConnection, p: BarsPartitioning) -> CheckReport:
    """price_anomalies: unexplained jumps, zero volume, flat stale bars; labels probable corporate actions."""
    quality = p.config.quality
    frame = load_bars(con, p)
    report = CheckReport("price_anomalies", ANOMALIES.rules, frame.height, frame["symbol"].n_unique())
    if frame.is_empty():
        return report
    context = [previous("close").alias("previous_close"), open_gap().alias("gap")]
    report.per_symbol, samples = flag_rows(frame, suspicious_rules(quality), _ts_format(p), context)
    if samples is not None:
        report.samples = samples.select("symbol", "ts", "previous_close", "open", "close", "volume", "gap", "rules")
    actions = corporate_actions(frame, p)
    report.extra = {
        "corporate_actions": actions.height,
        "max_open_gap": quality.max_open_gap,
    }
    if actions.height:
        report.extra["probable_corporate_actions"] = Markdown(markdown_table(actions.head(MAX_CORPORATE_ACTIONS)))
    return report


def corporate_actions(frame: pl.DataFrame, p: BarsPartitioning) -> pl.DataFrame:
    """Jumps beyond the threshold explained by a change of adj_close/close: symbol, ts, gap, factor ratio, label."""
    quality = p.config.quality
    jumps = frame.with_columns(
        open_gap().alias("gap"),
        (factor_change() + 1).alias("factor_ratio"),
        adjusted_gap().alias("adjusted_gap"),
        corporate_action(quality).alias("_corporate"),
    ).filter(pl.col("_corporate") & (pl.col("gap").abs() > quality.max_open_gap))
    labels = [_label(ratio) for ratio in jumps["factor_ratio"].to_list()]
    return jumps.select(
        "symbol", pl.col("ts").dt.strftime(_ts_format(p)), "gap", "factor_ratio", "adjusted_gap",
    ).with_columns(pl.Series("label", labels, dtype=pl.String))


def _label(ratio: float) -> str:
    """A readable name for a change of the adjustment factor by `ratio`."""
    if ratio >= 1.25:
        shares = round(ratio)
        return f"probable corporate action: {shares}:1 split" if abs(ratio - shares) < 0.05 * shares \
            else f"probable corporate action: {ratio:.2f}:1 split"
    if ratio <= 0.8:
        shares = round(1 / ratio)
        return f"probable corporate action: 1:{shares} reverse split"
    return f"probable corporate action: adjustment {ratio - 1:+.1%} (dividend or spin-off)"


# -- set logic in SQL ------------------------------------------------------------------------------


def _sql_per_symbol(con: duckdb.DuckDBPyConnection, statement: str, rule: str, params: dict) -> pl.DataFrame:
    rows = con.execute(statement, params).fetchall()
    return pl.DataFrame(
        [(symbol, rule, int(count), ", ".join(examples)) for symbol, count, examples in rows],
        schema={"symbol": pl.String, "rule": pl.String, "count": pl.Int64, "examples": pl.String}, orient="row",
    )


@_timed
def check_duplicates(con: duckdb.DuckDBPyConnection, p: BarsPartitioning) -> CheckReport:
    """no_duplicates: primary-key uniqueness and increasing ts within each ingestion."""
    params = _params(p)
    report = CheckReport("no_duplicates", DUPLICATES.rules, *_row_count(con, p))
    report.per_symbol = pl.concat([
        _sql_per_symbol(con, sql.DUPLICATE_KEYS, "ts_unique", params),
        _sql_per_symbol(con, sql.OUT_OF_ORDER, "ts_increasing", params),
    ])
    return report


@_timed
def check_calendar(con: duckdb.DuckDBPyConnection, p: BarsPartitioning, materialized: Iterable[str],
                   today: dt.date | None = None) -> CheckReport:
    """calendar_complete: missing grid timestamps in materialised partitions, and stored bars off the grid."""
    params = _params(p)
    report = CheckReport("calendar_complete", CALENDAR.rules, *_row_count(con, p))
    grid = calendar_grid(p, today)
    parts = materialized_frame(materialized)
    con.register("grid", grid.to_arrow())
    con.register("materialized", parts.to_arrow())
    try:
        report.per_symbol = pl.concat([
            _sql_per_symbol(con, sql.CALENDAR_MISSING, "calendar_missing", params),
            _sql_per_symbol(con, sql.CALENDAR_UNEXPECTED, "calendar_unexpected", params),
        ])
    finally:
        con.unregister("grid")
        con.unregister("materialized")
    report.extra = {
        "partitions_checked": parts.height,
        "grid_timestamps": grid.height,
    }
    return report


def last_closed_bar(p: BarsPartitioning, now: dt.datetime) -> tuple[dt.date, dt.datetime]:
    """The last session closed at `now`, and the start of its last bar (daily: the session at 00:00 UTC)."""
    sessions = session_table(p.calendar, now.date() - dt.timedelta(days=20), now.date())
    closed = sessions.filter(pl.col("close") <= now)
    session, close = closed["session"][-1], closed["close"][-1]
    if not p.timeframe.is_intraday:
        return session, dt.datetime.combine(session, dt.time(), UTC)
    step = p.timeframe.duration
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    return session, epoch + ((close - epoch - dt.timedelta(microseconds=1)) // step) * step


@_timed
def check_fresh(con: duckdb.DuckDBPyConnection, p: BarsPartitioning, now: dt.datetime | None = None) -> CheckReport:
    """fresh: each symbol's latest bar is at least the last closed session's last bar."""
    now = now or dt.datetime.now(UTC)
    session, expected = last_closed_bar(p, now)
    latest = con.execute(sql.LATEST_BARS, _params(p)).fetchall()
    report = CheckReport("fresh", FRESH.rules, *_row_count(con, p))
    fmt = _ts_format(p)
    stale = [
        (symbol, "stale", 1, f"last bar {last.strftime(fmt) if last else 'none'}, expected {expected.strftime(fmt)}")
        for symbol, last in latest if last is None or last < expected
    ]
    report.per_symbol = pl.DataFrame(stale, schema=report.per_symbol.schema, orient="row")
    report.extra = {"last_closed_session": session.isoformat()}
    lasts = [last for _, last in latest if last is not None]
    if lasts:
        report.extra["oldest_last_bar"] = min(lasts)
    return report


# -- the built-in checks ---------------------------------------------------------------------------

SCHEMA = register(Check(
    "ohlcv_schema", _SCHEMA_RULES,
    "Stored bars satisfy the OHLCV schema: column types, no nulls/NaN, high/low invariants, positive prices, "
    "non-negative volume (counts per rule, sample rows).",
    lambda i: check_schema(i.con, i.partitioning)))
DUPLICATES = register(Check(
    "no_duplicates", ("ts_unique", "ts_increasing"),
    "No two stored bars share (symbol, timeframe, ts), and each ingestion stored its rows in increasing ts order.",
    lambda i: check_duplicates(i.con, i.partitioning)))
CALENDAR = register(Check(
    "calendar_complete", ("calendar_missing", "calendar_unexpected"),
    "For every materialised partition, the stored bars match the calendar's sessions exactly (within each "
    "symbol's stored life); missing and unexpected timestamps per symbol.",
    lambda i: check_calendar(i.con, i.partitioning, i.materialized())))
ANOMALIES = register(Check(
    "price_anomalies", ("price_jump", "zero_volume", "constant_price"),
    "Unexplained open-vs-previous-close jumps, zero-volume bars, flat stale bars; jumps that coincide with a "
    "change of adj_close/close are labelled probable corporate actions.",
    lambda i: check_anomalies(i.con, i.partitioning)))
FRESH = register(Check(
    "fresh", ("stale",), "Each symbol's latest stored bar is no older than the last closed session.",
    lambda i: check_fresh(i.con, i.partitioning, i.now), never_blocking=True,
    applies=lambda market: market.end is None))  # a market with an end never gets new bars
