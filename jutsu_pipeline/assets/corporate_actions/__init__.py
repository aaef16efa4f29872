"""The `<market>/corporate_actions` asset: splits and dividends per symbol, applied at read time."""
