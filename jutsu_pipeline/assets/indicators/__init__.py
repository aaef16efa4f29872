"""Technical indicators per symbol, recomputed from the symbol's bars in DuckDB."""
