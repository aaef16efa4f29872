"""The shape of corporate actions as providers, files and inference hand them to storage."""

from __future__ import annotations

import polars as pl

SPLIT = "split"
DIVIDEND = "dividend"
KINDS = (SPLIT, DIVIDEND)

from jutsu_pipeline.storage.actions import ACTION_SCHEMA, KEY_COLUMNS  # noqa: E402, F401 - re-exported after the kinds


def empty_actions() -> pl.DataFrame:
    return pl.DataFrame(schema=ACTION_SCHEMA)


def actions_frame(rows: list[dict]) -> pl.DataFrame:
    """Rows (dicts with the ACTION_SCHEMA keys; missing ones NULL) as a typed frame, sorted."""
    if not rows:
        return empty_actions()
    full = [{name: row.get(name) for name in ACTION_SCHEMA} for row in rows]
    return pl.DataFrame(full, schema=ACTION_SCHEMA, orient="row").sort("symbol", "ex_date", "kind")
