"""The `files` provider: a user's own CSV or Parquet files, one per symbol."""

from __future__ import annotations

from pathlib import Path

from jutsu_pipeline.providers.local_files import LocalFilesProvider


class FilesProvider(LocalFilesProvider):
    """`options: {path: <dir>}` holding `<SYMBOL>.csv|.parquet` (columns date or ts/timestamp, OHLCV)."""

    name = "files"


def build(options: dict, timezone: str, resolve, secrets=None) -> FilesProvider:  # noqa: ANN001 - resolve: Path -> Path
    if "path" not in options:
        raise ValueError("the files provider needs options.path: the folder with <SYMBOL>.csv or .parquet files")
    return FilesProvider(Path(resolve(options["path"])), timezone)
