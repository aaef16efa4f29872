"""The asset checks' logic: evaluate one asset's stored bars (market symbols × timeframe) as a whole.

Each function reads the table with the SQL of `sql.py` (set logic stays in DuckDB) or loads the asset's
rows once and applies the rule expressions of `rules.py` (the ones the pre-write gate uses), and returns
a `CheckReport` with per-symbol counts. They work on any connection and are what the benchmark times.
The checks themselves are declared in `builtin_checks.py` (imported here, so importing this module still
registers them).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar, cast

import duckdb
import polars as pl

from jutsu_pipeline.calendars import session_table
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.quality import builtin_checks, sql  # builtin_checks also registers the checks
from jutsu_pipeline.quality.checks import Changed
from jutsu_pipeline.quality.expressions import DAILY_RULES, STORED_ROW_RULES, open_gap, previous, suspicious_rules
from jutsu_pipeline.quality.grid import calendar_grid, materialized_frame
from jutsu_pipeline.quality.report import MAX_SAMPLES, CheckReport, Markdown, empty_per_symbol, markdown_table
from jutsu_pipeline.quality.rules import VALUE_COLUMNS
from jutsu_pipeline.storage.actions import read_actions
from jutsu_pipeline.storage.ddl import BARS_KEY, has_primary_key, relation_exists
from jutsu_pipeline.storage.scope import (
    CHANGED_RELATION,
    JUDGED,
    read_bars,
    read_changed_bars,
    registered,
    scope_params,
)

UTC = dt.timezone.utc
MAX_CORPORATE_ACTIONS = 25
T = TypeVar("T")
_SHARED: ContextVar[dict[Hashable, object] | None] = ContextVar("jutsu_shared_reads", default=None)


@contextmanager
def shared_reads() -> Iterator[None]:
    """Checks evaluated together on one read-only connection (one check step) read each identical scope once:
    the row count and the changed rows every check asks for were each a scan of the whole `bars` table."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shared(key: Hashable, read: Callable[[], T]) -> T:
    cache = _SHARED.get()
    if cache is None:
        return read()
    if key not in cache:
        cache[key] = read()
    return cast(T, cache[key])


def _scope_key(kind: str, con: duckdb.DuckDBPyConnection, p: BarsPartitioning, changed: Changed | None) -> Hashable:
    since = None if changed is None else tuple(sorted(changed.since.items()))
    return kind, id(con), p.timeframe.value, tuple(p.symbols), since


def _params(p: BarsPartitioning) -> dict:
    return scope_params(p.timeframe.value, p.symbols)


def _ts_format(p: BarsPartitioning) -> str:
    return "%Y-%m-%d %H:%M" if p.timeframe.is_intraday else "%Y-%m-%d"


def load_bars(con: duckdb.DuckDBPyConnection, p: BarsPartitioning, symbols: Iterable[str] | None = None) -> pl.DataFrame:
    """The asset's stored rows (of `symbols` only, when given), sorted by symbol and ts."""
    symbols = p.symbols if symbols is None else symbols
    return cast(pl.DataFrame, pl.from_arrow(read_bars(con, p.timeframe.value, symbols)))


def table_suspects(con: duckdb.DuckDBPyConnection, p: BarsPartitioning, check: str) -> list[str]:
    """The symbols of the whole table where `check` may find a failing row (`sql.ROW_RULE_SUSPECTS` for
    ohlcv_schema, else `sql.TABLE_SUSPECTS`; each read once per check step): it loads or scans only theirs, the
    others pass with their rows counted in SQL."""
    if check == "ohlcv_schema":
        params = {**_params(p), "daily": not p.timeframe.is_intraday}
        return _shared(("row_rules", id(con), p.timeframe.value, tuple(p.symbols)),
                       lambda: [symbol for (symbol,) in con.execute(sql.ROW_RULE_SUSPECTS, params).fetchall()])
    gap = p.config.quality.max_open_gap
    frame = _shared(("suspects", id(con), p.timeframe.value, tuple(p.symbols), gap),
                    lambda: con.execute(sql.TABLE_SUSPECTS, {**_params(p), "max_open_gap": gap}).pl())
    return frame.filter(pl.col(check))["symbol"].to_list()


def _scope(p: BarsPartitioning, changed: Changed | None) -> dict:
    """What a statement of `quality.sql` keyed by `changed is not None` binds."""
    return _params(p) if changed is None else {"timeframe": p.timeframe.value}


def _row_count(con: duckdb.DuckDBPyConnection, p: BarsPartitioning, changed: Changed | None = None) -> tuple[int, int]:
    def count() -> tuple[int, int]:
        ((rows, symbols),) = con.execute(sql.ROW_COUNT[changed is not None], _scope(p, changed)).fetchall()
        return int(rows), int(symbols)

    return _shared(_scope_key("row_count", con, p, changed), count)


@contextmanager
def changed_scope(con: duckdb.DuckDBPyConnection, p: BarsPartitioning, changed: Changed | None) -> Iterator[None]:
    """Register `changed` (limited to the asset's symbols) as the relation the statements keyed `True` join."""
    if changed is None:
        yield
        return
    frame = changed.frame().filter(pl.col("symbol").is_in(list(p.symbols)))
    with registered(con, **{CHANGED_RELATION: frame.to_arrow()}):
        yield


def load_changed_bars(con: duckdb.DuckDBPyConnection, p: BarsPartitioning, changed: Changed | None) -> pl.DataFrame:
    """`load_bars`, or (given `changed`) its changed rows plus a context row per symbol, `_judged` marking which
    rows are judged."""
    def read() -> pl.DataFrame:
        if changed is None:
            return load_bars(con, p)
        with changed_scope(con, p, changed):
            return cast(pl.DataFrame, pl.from_arrow(read_changed_bars(con, p.timeframe.value)))

    return _shared(_scope_key("bars", con, p, changed), read)


def _judged_only(flags: dict[str, pl.Expr], frame: pl.DataFrame) -> dict[str, pl.Expr]:
    """Rules that hold on context rows (they were judged when they changed)."""
    if JUDGED not in frame.columns:
        return flags
    return {name: expr | ~pl.col(JUDGED) for name, expr in flags.items()}


def _judged_height(frame: pl.DataFrame) -> tuple[int, int]:
    judged = frame.filter(pl.col(JUDGED)) if JUDGED in frame.columns else frame
    return judged.height, judged["symbol"].n_unique()


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
    samples = marked.head(MAX_SAMPLES).with_columns(rules, pl.col("ts").dt.strftime(ts_format))
    return per_symbol.sort("symbol", "rule"), samples.drop(*bad, JUDGED, strict=False)  # not the _judged flag


def _column_type_problems(frame: pl.DataFrame) -> list[str]:
    import pandera.polars as pa  # here: the definitions register this check without importing pandera

    columns = {"symbol": pa.Column(pl.String), "ts": pa.Column(pl.Datetime("us", "UTC")),
               **{name: pa.Column(pl.Float64, nullable=True) for name in VALUE_COLUMNS}}
    try:
        pa.DataFrameSchema(columns, name="ohlcv_stored").validate(frame.head(0), lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        return [f"{column}: {check}" for column, check in cases.select("column", "check").iter_rows()]
    return []


@_timed
def check_schema(con: duckdb.DuckDBPyConnection, p: BarsPartitioning, changed: Changed | None = None) -> CheckReport:
    """ohlcv_schema: the row rules of the pre-write schema, counted per symbol over all stored bars (given
    `changed`: over its rows). A whole-table SQL scan finds the symbols with a suspect row; only their rows
    (and the changed ones) are loaded and judged by the polars rules, the others pass as counted in SQL."""
    rules = tuple(r for r in builtin_checks.SCHEMA.rules if r != "daily_at_midnight" or not p.timeframe.is_intraday)
    suspects = table_suspects(con, p, "ohlcv_schema")
    frame = load_bars(con, p, suspects) if changed is None else load_changed_bars(con, p, changed.with_symbols(suspects))
    problems = _column_type_problems(frame)  # the table's column types: the same for every symbol's rows
    if problems and changed is None:  # every row is mis-typed: counted per symbol below
        frame = load_changed_bars(con, p, None)
    report = CheckReport("ohlcv_schema", rules, *(_row_count(con, p) if changed is None else _judged_height(frame)))
    flags = {**STORED_ROW_RULES, **({} if p.timeframe.is_intraday else DAILY_RULES)}
    if problems and frame.height:
        detail = "; ".join(problems)
        typed = frame.group_by("symbol").agg(pl.len().cast(pl.Int64).alias("count")).with_columns(
            pl.lit("column_types").alias("rule"), pl.lit(detail).alias("examples"))
        report.per_symbol = typed.select("symbol", "rule", "count", "examples")
        report.samples = pl.DataFrame({"column_types": problems})
        return report  # values of the wrong type are not judged further
    report.per_symbol, report.samples = flag_rows(frame, _judged_only(flags, frame), _ts_format(p))
    return report


@_timed
def check_anomalies(con: duckdb.DuckDBPyConnection, p: BarsPartitioning, changed: Changed | None = None) -> CheckReport:
    """price_anomalies: jumps not explained by a stored corporate action, zero volume, flat stale bars."""
    quality = p.config.quality
    if changed is None:  # the whole table: only symbols where SQL finds a suspect bar are loaded
        bars, counted = load_bars(con, p, table_suspects(con, p, "price_anomalies")), _row_count(con, p)
    else:
        bars, counted = load_changed_bars(con, p, changed), None
    frame = with_actions(bars, load_actions(con, p))
    report = CheckReport("price_anomalies", builtin_checks.ANOMALIES.rules, *(counted or _judged_height(frame)))
    if frame.is_empty() and not report.rows_checked:
        return report
    rules = _judged_only(suspicious_rules(quality, explained=pl.col("action").is_not_null()), frame)
    context = [previous("close").alias("previous_close"), open_gap().alias("gap")]
    report.per_symbol, samples = flag_rows(frame, rules, _ts_format(p), context)
    if samples is not None:
        report.samples = samples.select("symbol", "ts", "previous_close", "open", "close", "volume", "gap", "rules")
    actions = corporate_actions(frame, p)
    report.extra = {
        "corporate_actions": actions.height,
        "max_open_gap": quality.max_open_gap,
    }
    if actions.height:
        report.extra["corporate_action_jumps"] = Markdown(markdown_table(actions.head(MAX_CORPORATE_ACTIONS)))
    return report


def load_actions(con: duckdb.DuckDBPyConnection, p: BarsPartitioning) -> pl.DataFrame:
    """symbol, ex_date, action (a readable label) of the stored actions in force for the asset's symbols."""
    columns = ("symbol", "ex_date", "kind", "ratio", "cash_amount", "source")
    present = relation_exists(con, "corporate_actions_current")
    rows = read_actions(con, list(p.symbols)).select(columns).iter_rows() if present else []
    labels = [(symbol, day, _action_label(kind, ratio, cash, source)) for symbol, day, kind, ratio, cash, source in rows]
    frame = pl.DataFrame(labels, schema={"symbol": pl.String, "ex_date": pl.Date, "action": pl.String}, orient="row")
    return frame.group_by("symbol", "ex_date").agg(pl.col("action").str.join("; "))


def _action_label(kind: str, ratio: float | None, cash: float | None, source: str) -> str:
    if kind == "split" and ratio is not None:
        text = f"{ratio:g}:1 split" if ratio >= 1 else f"1:{1 / ratio:g} reverse split"
    else:
        text = f"dividend {cash:g}"
    return f"{text} ({source})"


def with_actions(frame: pl.DataFrame, actions: pl.DataFrame) -> pl.DataFrame:
    """`frame` plus `action`: the stored action(s) whose ex-date this bar opens (a session's first bar)."""
    day = pl.col("ts").dt.date()
    opens_day = previous(day).is_null() | (previous(day) < day)
    keyed = frame.with_columns(pl.when(opens_day).then(day).alias("_ex_date"))
    joined = keyed.join(actions.rename({"ex_date": "_ex_date"}), on=["symbol", "_ex_date"], how="left",
                        maintain_order="left")
    return joined.drop("_ex_date")


def corporate_actions(frame: pl.DataFrame, p: BarsPartitioning) -> pl.DataFrame:
    """Jumps beyond the threshold on a stored action's ex-date: symbol, ts, gap, the action(s)."""
    quality = p.config.quality
    jumps = frame.with_columns(open_gap().alias("gap")).filter(
        pl.col("action").is_not_null() & (pl.col("gap").abs() > quality.max_open_gap)
        & (pl.col(JUDGED) if JUDGED in frame.columns else pl.lit(True)))
    return jumps.select("symbol", pl.col("ts").dt.strftime(_ts_format(p)), "gap",
                        pl.concat_str(pl.lit("corporate action: "), pl.col("action")).alias("label"))


# -- set logic in SQL ------------------------------------------------------------------------------


def _sql_per_symbol(con: duckdb.DuckDBPyConnection, statement: str, rule: str, params: dict) -> pl.DataFrame:
    """`rule`'s count and examples per symbol from `statement`; not run when `params` bind no symbol."""
    rows = con.execute(statement, params).fetchall() if params.get("symbols", True) else []
    return pl.DataFrame([(symbol, rule, int(count), ", ".join(examples)) for symbol, count, examples in rows],
                        schema=empty_per_symbol().schema, orient="row")


@_timed
def check_duplicates(con: duckdb.DuckDBPyConnection, p: BarsPartitioning, changed: Changed | None = None) -> CheckReport:
    """no_duplicates: primary-key uniqueness and increasing ts within each ingestion."""
    params, key = _scope(p, changed), changed is not None
    # The whole table: only the symbols whose rows may repeat a ts or be out of order are scanned (every row was
    # 0.6 s CPU over 2.5 M bars). A changed scope is scanned unless the primary key of a file made before
    # 2026-12-02 rules duplicates out (asked once per check step: the catalog does not change).
    unique = params if key else scope_params(p.timeframe.value, table_suspects(con, p, "unordered"))
    ordered = params if key else scope_params(p.timeframe.value, table_suspects(con, p, "no_duplicates"))
    enforced = key and _shared(("primary_key", id(con)), lambda: has_primary_key(con, "bars", BARS_KEY))
    with changed_scope(con, p, changed):
        report = CheckReport("no_duplicates", builtin_checks.DUPLICATES.rules, *_row_count(con, p, changed))
        report.per_symbol = pl.concat([
            empty_per_symbol() if enforced else _sql_per_symbol(con, sql.DUPLICATE_KEYS[key], "ts_unique", unique),
            _sql_per_symbol(con, sql.OUT_OF_ORDER[key], "ts_increasing", ordered),
        ])
    return report


@_timed
def check_calendar(con: duckdb.DuckDBPyConnection, p: BarsPartitioning, materialized: Iterable[str],
                   changed: Changed | None = None) -> CheckReport:
    """calendar_complete: missing grid timestamps in materialised partitions, and stored bars off the grid
    (given `changed`: from each changed symbol's `since` on)."""
    grid = calendar_grid(p)
    parts = materialized_frame(materialized)
    incremental = changed is not None  # the statements of sql.CALENDAR_* are keyed by it
    if changed is not None:
        parts = parts.filter(pl.col("symbol").is_in(list(changed.since)))
        first = min(changed.since.values(), default=None)
        grid = grid if first is None else grid.filter(pl.col("ts") >= first)
    with registered(con, grid=grid.to_arrow(), materialized=parts.to_arrow()), changed_scope(con, p, changed):
        report = CheckReport("calendar_complete", builtin_checks.CALENDAR.rules, *_row_count(con, p, changed))
        # Over the whole table, the examples of only the symbols whose counts fall short.
        missing = _scope(p, changed) if incremental else scope_params(p.timeframe.value, missing_candidates(con, p))
        report.per_symbol = pl.concat([
            _sql_per_symbol(con, sql.CALENDAR_MISSING[incremental], "calendar_missing", missing),
            _sql_per_symbol(con, sql.CALENDAR_UNEXPECTED[incremental], "calendar_unexpected", _scope(p, changed)),
        ])
    report.extra = {
        "partitions_checked": parts.height,
        "grid_timestamps": grid.height,
    }
    return report


def missing_candidates(con: duckdb.DuckDBPyConnection, p: BarsPartitioning) -> list[str]:
    """The symbols CALENDAR_MISSING[False] may find bars missing in (registered `grid` and `materialized`):
    those whose counts fall short, and those whose rows may repeat a ts (a duplicate counts as a bar)."""
    short = [symbol for (symbol,) in con.execute(sql.MISSING_CANDIDATES, _params(p)).fetchall()]
    return sorted({*short, *table_suspects(con, p, "unordered")})


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
    report = CheckReport("fresh", builtin_checks.FRESH.rules, *_row_count(con, p))
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
