"""Storage: one interface over a DuckDB file or a DuckLake catalog; the tables, views and atomic replaces."""
