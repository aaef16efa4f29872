"""A self-contained HTML page per market: coverage, price with indicators, leaderboard curves (the page's
names load on first use: the definitions need only `report_path`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from jutsu_pipeline.lazy import lazy_names

if TYPE_CHECKING:
    from jutsu_pipeline.config import JutsuConfig

__all__ = ["ReportSummary", "build_report", "report_path", "write_report"]


def report_path(config: JutsuConfig, market: str) -> Path:
    """`<reports_dir>/<market>/report.html`."""
    return config.resolve(config.reports_dir) / market / "report.html"


__getattr__ = lazy_names(__name__, dict.fromkeys(("ReportSummary", "build_report", "write_report"), "page"))
