"""The `files` provider: a user's own CSV or Parquet files, one per symbol."""

from __future__ import annotations

from pathlib import Path

from jutsu_pipeline.providers.local_files import LocalFilesProvider
from jutsu_pipeline.providers.registry import BuildContext, ProviderOptions, ProviderSpec


class FilesOptions(ProviderOptions):
    path: Path  # the folder with <SYMBOL>.csv or .parquet files (relative: to the config file)


class FilesProvider(LocalFilesProvider):
    """`options: {path: <dir>}` holding `<SYMBOL>.csv|.parquet` (columns date or ts/timestamp, OHLCV)."""

    name = "files"


def _build(options: FilesOptions, context: BuildContext) -> FilesProvider:
    return FilesProvider(context.resolve(options.path), context.timezone)


SPEC = ProviderSpec("files", FilesOptions, _build, local=True, description="your CSV or Parquet files")
