"""Data quality: the OHLCV pandera schema shared by pre-write validation and asset checks."""
