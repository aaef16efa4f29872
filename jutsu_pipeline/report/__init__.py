"""A self-contained HTML page per market: coverage, price with indicators, leaderboard curves (`page`, which
loads polars and numpy; the definitions need only `report_path`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jutsu_pipeline.config import JutsuConfig


def report_path(config: JutsuConfig, market: str) -> Path:
    """`<reports_dir>/<market>/report.html`."""
    return config.resolve(config.reports_dir) / market / "report.html"
