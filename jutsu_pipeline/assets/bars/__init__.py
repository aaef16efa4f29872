"""Partitioned OHLCV bars assets, one per market × timeframe."""
