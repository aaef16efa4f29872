"""jutsu-pipeline: OHLCV bars synced, validated and researched as Dagster assets in DuckDB."""
