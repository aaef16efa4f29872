"""The bars sync engine: plan fetches for a run's partitions, fetch, validate, replace in DuckDB."""
