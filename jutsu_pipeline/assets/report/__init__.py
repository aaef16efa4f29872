"""`<market>/report`: the market's self-contained HTML page under `reports_dir`."""
