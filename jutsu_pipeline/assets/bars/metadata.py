"""Run metadata of a bars materialisation (per run: partition status itself is the coverage record)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:  # the engine (polars, pandera) loads when a run syncs, not when the definitions build
    from jutsu_pipeline.sync.engine import SyncOutcome

MAX_TABLE_ROWS = 25
# A range run's metadata is copied into every partition's materialisation event: keep it small.
MAX_SYMBOL_NAMES = 25


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


def outcome_metadata(outcome: SyncOutcome, provider: str, seconds: float) -> dict[str, dg.MetadataValue]:
    """Numbers Dagster can plot plus readable tables of empty and failed partitions."""
    metadata: dict[str, dg.MetadataValue] = {
        "bars_written": dg.MetadataValue.int(outcome.bars_written),
        "bars_fetched": dg.MetadataValue.int(outcome.bars_fetched),
        "partitions_with_bars": dg.MetadataValue.int(len(outcome.written)),
        "partitions_valid_empty": dg.MetadataValue.int(len(outcome.empty)),
        "partitions_failed": dg.MetadataValue.int(len(outcome.failed)),
        "provider": dg.MetadataValue.text(provider),
        "provider_calls": dg.MetadataValue.int(outcome.provider_calls),
        "symbols": dg.MetadataValue.text(_names(outcome.symbols_done)),
        "seconds": dg.MetadataValue.float(round(seconds, 3)),
    }
    if outcome.first_ts is not None and outcome.last_ts is not None:
        metadata["first_ts"] = dg.MetadataValue.timestamp(outcome.first_ts)
        metadata["last_ts"] = dg.MetadataValue.timestamp(outcome.last_ts)
    if outcome.empty:
        metadata["valid_empty_partitions"] = dg.MetadataValue.md(_markdown_table(outcome.empty, ("partition", "why empty")))
    if outcome.failed:
        metadata["failed_partitions"] = dg.MetadataValue.md(_markdown_table(outcome.failed, ("partition", "error")))
    return metadata
