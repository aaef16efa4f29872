"""The `files` provider: a user's own CSV or Parquet files, one per symbol (`options: {path: <dir>}` holding
`<SYMBOL>.csv|.parquet` with columns date or ts/timestamp and OHLCV): `LocalFilesProvider` itself."""

from jutsu_pipeline.providers.local_files import LocalFilesProvider as FilesProvider

__all__ = ["FilesProvider"]
