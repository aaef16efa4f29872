"""Pandera (polars) schemas for canonical OHLCV frames, and validation that names partitions and rules.

Two schemas share the rule expressions of `rules.py`, restricted to the rules that are errors under
the market's validation profile (`quality.profile`; warnings are stored and reported by the asset checks):
* the *gate* checks those rules in a single combined check (cheap: pandera's cost is per check);
* the *detailed* schema has one named check per rule and runs only when the gate fails, to say
  which rule failed for which symbol and partition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import pandera.polars as pa
import polars as pl

from jutsu_pipeline.config import QualityConfig
from jutsu_pipeline.quality.expressions import blocking_rules
from jutsu_pipeline.quality.rules import (
    GRID_COLUMN,
    RULES,
    SESSION_COLUMN,
    VALUE_COLUMNS,
    WINDOW_COLUMN,
    relax_hint,
)

ROW_ID = "_row"
MAX_EXAMPLES = 3  # rows shown per rule and partition that failed it


def _key_columns() -> dict[str, pa.Column]:
    return {"symbol": pa.Column(pl.String), "ts": pa.Column(pl.Datetime("us", "UTC"))}


def _columns() -> dict[str, pa.Column]:
    number = pa.Column(pl.Float64, nullable=True)
    return {
        **_key_columns(),
        **{name: number for name in VALUE_COLUMNS},
        WINDOW_COLUMN: pa.Column(pl.String, nullable=True),
        SESSION_COLUMN: pa.Column(pl.Boolean),
        GRID_COLUMN: pa.Column(pl.Boolean),
    }


def _check(name: str, expr: pl.Expr) -> pa.Check:
    return pa.Check(lambda data, e=expr: data.lazyframe.select(e.alias(name)), name=name, error=name)


@lru_cache(maxsize=64)
def gate_schema(daily: bool, quality: QualityConfig = QualityConfig(), ordered: bool = False) -> pa.DataFrameSchema:  # noqa: B008
    """Every blocking rule of the profile in one check: what runs before each write (`ordered`: for rows
    contiguous and sorted per symbol, `expressions.ORDERED_KEY_RULES`).

    Value columns are already float64 (`to_canonical`), so only the key columns' types are checked here.
    """
    combined = pl.all_horizontal(blocking_rules(daily, quality, ordered).values())
    return pa.DataFrameSchema(_key_columns(), checks=[_check("ohlcv_rules", combined)], name="ohlcv_gate")


@lru_cache(maxsize=64)
def detailed_schema(daily: bool, quality: QualityConfig = QualityConfig(), ordered: bool = False) -> pa.DataFrameSchema:  # noqa: B008
    """One named check per blocking rule of the profile: attributes failures to rules."""
    checks = [_check(name, expr) for name, expr in blocking_rules(daily, quality, ordered).items()]
    return pa.DataFrameSchema(_columns(), checks=checks, name="ohlcv")

FailureKey = tuple[str, str | None]  # (symbol, partition date key or None when outside every window)


@dataclass
class RuleFailure:
    """One rule that failed for one symbol's partition, with a few offending rows."""

    rule: str
    rows: int
    examples: list[dict]

    def describe(self) -> str:
        text = f"rule {self.rule} ({RULES[self.rule].description if self.rule in RULES else self.rule}) failed on {self.rows} row(s)"
        if self.examples:
            text += ", e.g. " + "; ".join(_format_row(row) for row in self.examples)
        return text + relax_hint([self.rule])


@dataclass
class ValidationReport:
    """Failures grouped by (symbol, partition date key); an empty mapping means every row is valid."""

    located: pl.DataFrame  # the input with the partition key of each row attached (WINDOW_COLUMN)
    failures: dict[FailureKey, list[RuleFailure]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def _format_row(row: dict) -> str:
    shown = [f"{k}={row[k]}" for k in ("ts", "open", "high", "low", "close", "volume") if row.get(k) is not None]
    return "{" + ", ".join(shown) + "}"


def attach_partitions(frame: pl.DataFrame, windows: pl.DataFrame, sessions: Iterable[dt.date] | pl.Series | None,
                      step: dt.timedelta | None = None, ordered: bool | None = None) -> pl.DataFrame:
    """Add the partition key each bar falls in (null when outside every window), session membership and,
    for intraday bars of length `step`, whether the bar starts on the timeframe's grid. Rows keep their order.

    `windows` has columns symbol, date_key, start, end (UTC, disjoint per symbol, in time order per symbol);
    `sessions` may be a Date series (a run's, built once); `ordered`: `sorted_per_symbol(frame)` if known.
    """
    ts_type = frame.schema.get("ts")
    if not (isinstance(ts_type, pl.Datetime) and ts_type.time_zone == "UTC"):
        # Naive or non-timestamp rows cannot be placed; the column_types rule reports why.
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias(WINDOW_COLUMN), pl.lit(True).alias(SESSION_COLUMN),
                                  pl.lit(True).alias(GRID_COLUMN))
    if ts_type.time_unit != "us":
        frame = frame.with_columns(pl.col("ts").dt.cast_time_unit("us"))
    # The as-of join needs each symbol's rows in ts order, which a run's fetched frames are (each symbol's rows
    # contiguous and sorted): only other frames are sorted for it, and put back in their order after.
    resort = not (sorted_per_symbol(frame) if ordered is None else ordered)
    located = frame.with_row_index("_order").sort("ts") if resort else frame
    located = located.join_asof(windows.select("symbol", "date_key", "start", "end").sort("start"), left_on="ts",
                                right_on="start", by="symbol", strategy="backward", check_sortedness=False)
    if resort:
        located = located.sort("_order").drop("_order")
    if sessions is None:
        on_session = pl.lit(True)
    else:
        dates = sessions if isinstance(sessions, pl.Series) else pl.Series(sorted(sessions), dtype=pl.Date)
        on_session = pl.col("ts").dt.date().is_in(dates.implode())
    if step is None:
        on_grid = pl.lit(True)
    else:  # anchored to the session's open (the partition window's start): XNYS 1h bars at 09:30, 10:30, ...
        step_us = step // dt.timedelta(microseconds=1)
        inside = pl.col("start").is_not_null() & (pl.col("ts") < pl.col("end"))
        anchor = pl.when(inside).then(pl.col("start").dt.epoch("us")).otherwise(0)
        on_grid = (pl.col("ts").dt.epoch("us") - anchor) % step_us == 0
    window = pl.when(pl.col("ts") < pl.col("end")).then(pl.col("date_key"))
    return located.with_columns(window.alias(WINDOW_COLUMN), on_session.alias(SESSION_COLUMN),
                                on_grid.alias(GRID_COLUMN)).drop("date_key", "start", "end")


def sorted_per_symbol(frame: pl.DataFrame) -> bool:
    """Each symbol's rows contiguous and in ts order, no null ts (one pass, no sort)."""
    symbol, ts = pl.col("symbol"), pl.col("ts")
    starts = symbol.ne_missing(symbol.shift())
    ((ordered, runs, symbols, nulls),) = frame.select(
        (starts | (ts >= ts.shift())).all().alias("ordered"), starts.sum().alias("runs"),
        symbol.n_unique().alias("symbols"), ts.null_count().alias("nulls")).rows()
    return bool(ordered) and runs == symbols and not nulls


def validate_bars(
    frame: pl.DataFrame,
    *,
    windows: pl.DataFrame,
    sessions: Iterable[dt.date] | None,
    daily: bool,
    quality: QualityConfig | None = None,
    step: dt.timedelta | None = None,
) -> ValidationReport:
    """Validate canonical bars (with a `symbol` column) of one run before they are written.

    Only the rules that are errors under `quality.profile` (default: standard) fail a partition.
    `step` is the bar length of intraday bars (for the `on_grid` rule).
    """
    quality = quality or QualityConfig()
    ordered = isinstance(frame.schema.get("ts"), pl.Datetime) and sorted_per_symbol(frame)
    located = attach_partitions(frame, windows, sessions, None if daily else step, ordered)
    try:
        gate_schema(daily, quality, ordered).validate(located, lazy=True)
        return ValidationReport(located)
    except pa.errors.SchemaErrors:
        pass
    numbered = located.with_row_index(ROW_ID)
    try:
        detailed_schema(daily, quality, ordered).validate(numbered, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return ValidationReport(located, _group_failures(numbered, errors.failure_cases))
    raise AssertionError("the gate and detailed OHLCV schemas disagree")  # pragma: no cover


def _group_failures(frame: pl.DataFrame, cases: pl.DataFrame) -> dict[FailureKey, list[RuleFailure]]:
    grouped: dict[FailureKey, list[RuleFailure]] = {}
    cases = cases.with_columns(pl.col("check").cast(pl.String), pl.col("index").cast(pl.Int64))
    for (check,), rule_cases in cases.group_by("check", maintain_order=True):
        rule = str(check) if str(check) in RULES else "column_types"
        rows = rule_cases["index"].drop_nulls()
        if rows.is_empty():  # a column-level failure (wrong dtype, missing column): every partition fails
            for symbol in frame["symbol"].unique().to_list() if "symbol" in frame.columns else ["?"]:
                grouped.setdefault((symbol, None), []).append(RuleFailure(rule, frame.height, [{"detail": str(check)}]))
            continue
        failing = frame.filter(pl.col(ROW_ID).is_in(rows.implode()))
        for (symbol, window), part in failing.group_by("symbol", WINDOW_COLUMN, maintain_order=True):
            examples = part.head(MAX_EXAMPLES).drop(ROW_ID).to_dicts()
            grouped.setdefault((symbol, window), []).append(RuleFailure(rule, part.height, examples))
    return grouped
