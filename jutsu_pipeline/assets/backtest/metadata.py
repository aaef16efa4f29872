"""Metadata of backtest materialisations: result tables and embedded charts."""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl


def _number(value: object) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def results_table(performance: pl.DataFrame) -> str:
    """Markdown: one row per strategy × symbol with its headline statistics."""
    lines = ["| strategy | symbol | return % | Sharpe | max DD % | trades | win % |", "|---|---|---|---|---|---|---|"]
    for row in performance.sort("strategy", "symbol").iter_rows(named=True):
        cells = [row["strategy"], row["symbol"], _number(row.get("return_pct")), _number(row.get("sharpe_ratio")),
                 _number(row.get("max_drawdown_pct")), _number(row.get("n_trades")), _number(row.get("win_rate_pct"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def embedded_images(paths: list[tuple[str, Path]]) -> str:
    """Markdown showing PNGs inline (data URIs), so the UI displays them without a file server."""
    parts = [f"**{title}**\n\n![{title}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"
             for title, path in paths if path.is_file()]
    return "\n\n".join(parts) or "(no charts yet)"
