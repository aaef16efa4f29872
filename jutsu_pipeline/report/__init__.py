"""A self-contained HTML page per market: coverage, price with indicators, leaderboard curves."""

from jutsu_pipeline.report.page import ReportSummary, build_report, report_path, write_report

__all__ = ["ReportSummary", "build_report", "report_path", "write_report"]
