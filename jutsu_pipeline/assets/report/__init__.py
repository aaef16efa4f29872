"""`<market>/report`: the market's self-contained HTML page under `reports_dir`."""

from jutsu_pipeline.assets.report.assets import build_report_asset, report_asset_key

__all__ = ["build_report_asset", "report_asset_key"]
