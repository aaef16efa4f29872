"""The `<market>/corporate_actions` asset: splits and dividends per symbol, applied at read time."""

from jutsu_pipeline.assets.corporate_actions.assets import build_corporate_actions_asset, corporate_actions_asset_key

__all__ = ["build_corporate_actions_asset", "corporate_actions_asset_key"]
