"""The built-in asset checks of every bars asset, declared by name, rules and description; each evaluates
with its function in `stored.py`, imported when a check runs (polars and pandera load then, not when the
definitions are built)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from jutsu_pipeline.quality.checks import Check, register
from jutsu_pipeline.quality.rules import STORED_ROW_RULE_NAMES


def _stored() -> Any:  # noqa: ANN401 - the module jutsu_pipeline.quality.stored
    return import_module("jutsu_pipeline.quality.stored")


SCHEMA = register(Check(
    "ohlcv_schema", ("column_types", *STORED_ROW_RULE_NAMES, "daily_at_midnight"),
    "Stored bars satisfy the OHLCV schema: column types, no nulls/NaN, high/low invariants, positive prices, "
    "non-negative volume (counts per rule, sample rows).",
    lambda i: _stored().check_schema(i.con, i.partitioning, i.changed), incremental=True))
DUPLICATES = register(Check(
    "no_duplicates", ("ts_unique", "ts_increasing"),
    "No two stored bars share (symbol, timeframe, ts), and each ingestion stored its rows in increasing ts order.",
    lambda i: _stored().check_duplicates(i.con, i.partitioning, i.changed), incremental=True))
CALENDAR = register(Check(
    "calendar_complete", ("calendar_missing", "calendar_unexpected"),
    "For every materialised partition, the stored bars match the calendar's sessions exactly (within each "
    "symbol's stored life); missing and unexpected timestamps per symbol.",
    lambda i: _stored().check_calendar(i.con, i.partitioning, i.materialized(), changed=i.changed), incremental=True))
ANOMALIES = register(Check(
    "price_anomalies", ("price_jump", "zero_volume", "constant_price"),
    "Open-vs-previous-close jumps not explained by a stored corporate action, zero-volume bars, flat stale "
    "bars; jumps on an action's ex-date are labelled with the action.",
    lambda i: _stored().check_anomalies(i.con, i.partitioning, i.changed), incremental=True))
FRESH = register(Check(
    "fresh", ("stale",), "Each symbol's latest stored bar is no older than the last closed session.",
    lambda i: _stored().check_fresh(i.con, i.partitioning, i.now), never_blocking=True,
    applies=lambda market: market.end is None))  # a market with an end never gets new bars
