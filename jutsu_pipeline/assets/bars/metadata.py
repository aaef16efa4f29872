"""What a bars run records: each partition's own facts on its materialisation, the run's totals once.

Dagster copies whatever metadata the asset returns into each partition's event (10,500 for a first sync of
500 symbols × 20 years), so a partition gets only its own facts (rows, first and last bar, why it is empty);
the planner's keys are run tags (`planner_tags`), the totals go to the run's log and `jutsu sync`'s summary,
or to the step failure's metadata.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:  # the engine (polars, pandera) loads when a run syncs, not when the definitions build
    from jutsu_pipeline.sync.engine import SyncOutcome

MAX_TABLE_ROWS = 25
MAX_SYMBOL_NAMES = 25
ROW_COUNT = "dagster/row_count"  # the partition's stored bars
EMPTY_BECAUSE = "empty_because"  # why a valid-empty partition has no bars


def _names(symbols: list[str]) -> str:
    if not symbols:
        return "(none)"
    shown = ", ".join(symbols[:MAX_SYMBOL_NAMES])
    return shown if len(symbols) <= MAX_SYMBOL_NAMES else f"{shown} … and {len(symbols) - MAX_SYMBOL_NAMES} more"


def _markdown_table(rows: dict[str, str], header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| `{key}` | {value.replace('|', '/')} |" for key, value in list(rows.items())[:MAX_TABLE_ROWS]]
    if len(rows) > MAX_TABLE_ROWS:
        lines.append(f"| … | {len(rows) - MAX_TABLE_ROWS} more |")
    return "\n".join(lines)


def stored_facts(stats: tuple[int, dt.datetime, dt.datetime] | None) -> dict[str, dg.MetadataValue]:
    """A window's stored bars (`dagster/row_count`) with its first and last bar; none stored: a count of 0."""
    if stats is None:
        return {ROW_COUNT: dg.MetadataValue.int(0)}
    rows, first, last = stats
    return {ROW_COUNT: dg.MetadataValue.int(rows), "first_ts": dg.MetadataValue.timestamp(first),
            "last_ts": dg.MetadataValue.timestamp(last)}


def partition_metadata(outcome: SyncOutcome) -> dict[str, dict[str, dg.MetadataValue]]:
    """partition key -> its own facts: stored bars (`dagster/row_count`) with the first and last bar, or
    the reason it is valid with no bars. Failed partitions are absent (they are not materialised). Equal facts
    share their immutable values (a first sync's 10,500 windows hold a few dozen distinct ones)."""
    facts: dict[tuple[int, dt.datetime, dt.datetime], dict[str, dg.MetadataValue]] = {}
    per = {key: dict(facts.get(s) or facts.setdefault(s, stored_facts(s))) for key, s in outcome.stored.items()}
    zero = dg.MetadataValue.int(0)
    for key, reason in outcome.empty.items():
        per[key] = {ROW_COUNT: zero, EMPTY_BECAUSE: dg.MetadataValue.text(reason)}
    return per


def run_totals(outcome: SyncOutcome, provider: str, seconds: float, requests: int,
               duplicates_dropped: int = 0) -> dict[str, Any]:
    """The run's totals (plain values): its summary line, `jutsu sync`'s summary, a failure's metadata."""
    totals: dict[str, Any] = {
        "partitions_with_bars": len(outcome.written),
        "partitions_valid_empty": len(outcome.empty),
        "partitions_failed": len(outcome.failed),
        "bars_written": outcome.bars_written,
        "bars_fetched": outcome.bars_fetched,
        "provider": provider,
        "provider_calls": outcome.provider_calls,
        "provider_requests": requests,  # HTTP pages, file reads
        "seconds": round(seconds, 3),
    }
    if duplicates_dropped:  # identical repeats (page overlaps), not conflicts
        totals["duplicates_dropped"] = duplicates_dropped
    return totals


def summary_line(asset: str, totals: Mapping[str, Any], tail: bool) -> str:
    """One line for the run's log: what the run did in total."""
    line = (f"{asset}: {totals['partitions_with_bars']} partition(s) with {totals['bars_written']:,} bars written "
            f"({totals['bars_fetched']:,} fetched), {totals['partitions_valid_empty']} valid-empty, "
            f"{totals['partitions_failed']} failed; {totals['provider_calls']} provider call(s), "
            f"{totals['provider_requests']} request(s) to {totals['provider']}")
    if totals.get("duplicates_dropped"):
        line += f", {totals['duplicates_dropped']} identical duplicate bar(s) dropped"
    return line + f"; {'tail refresh' if tail else 'whole windows'}; {totals['seconds']:.1f} s"


def failure_metadata(outcome: SyncOutcome, totals: Mapping[str, Any]) -> dict[str, Any]:
    """The step failure's metadata (once per run): the totals and readable tables of failed and empty partitions
    (plain strings and numbers: dg.Failure makes them text, int and float metadata)."""
    metadata: dict[str, Any] = {**totals, "symbols": _names(outcome.symbols_done)}
    if outcome.empty:
        metadata["valid_empty_partitions"] = dg.MetadataValue.md(_markdown_table(outcome.empty, ("partition", "why empty")))
    metadata["failed_partitions"] = dg.MetadataValue.md(_markdown_table(outcome.failed, ("partition", "error")))
    return metadata
