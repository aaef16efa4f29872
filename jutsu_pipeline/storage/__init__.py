"""DuckDB storage: the bars table contract and its atomic partition replace."""
