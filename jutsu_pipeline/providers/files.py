"""The `files` provider: a user's own CSV or Parquet files, one per symbol."""

from __future__ import annotations

from jutsu_pipeline.providers.local_files import LocalFilesProvider


class FilesProvider(LocalFilesProvider):
    """`options: {path: <dir>}` holding `<SYMBOL>.csv|.parquet` (columns date or ts/timestamp, OHLCV)."""

    name = "files"

