"""Opening the DuckDB file safely: no extension downloads at run time, and only real DuckDB files."""

from __future__ import annotations

from pathlib import Path

import duckdb

# Every connection refuses to install or load extensions on its own: an unexpected file type (SQLite,
# Parquet, a URL) would otherwise make DuckDB download an extension in the middle of a run.
SAFE_CONFIG: dict[str, str | bool] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
_MAGIC = b"DUCK"  # a DuckDB file's main header carries this at byte offset 8


class NotADuckDBFileError(RuntimeError):
    """`storage.path` (or the old `duckdb_path`) names a file that exists but is not a DuckDB database."""


def check_database_file(path: str | Path) -> None:
    """Raise NotADuckDBFileError if `path` exists and is not a DuckDB database (absent: fine, it is created)."""
    if str(path) in ("", ":memory:") or str(path).startswith(":memory:"):
        return
    file = Path(path)
    if not file.exists():
        return
    if file.is_dir():
        raise NotADuckDBFileError(f"storage.path {file} is a directory, not a DuckDB database file; "
                                  "point storage.path (or duckdb_path) in jutsu.yaml at a file (it is created on first sync)")
    with file.open("rb") as handle:
        head = handle.read(16)
    if head[8:12] != _MAGIC:
        kind = ("the file is empty" if not head else "it is a SQLite database" if head.startswith(b"SQLite format 3")
                else "it is a Parquet file" if head.startswith(b"PAR1") else "its header is not DuckDB's")
        raise NotADuckDBFileError(
            f"storage.path {file} is not a DuckDB database ({kind}); nothing was read or written. "
            "Point storage.path (or duckdb_path) in jutsu.yaml at a DuckDB file (a new path is created on first sync), "
            "or move this file away"
        )


def connect(database: str | Path, *, read_only: bool = False,
            config: dict[str, str | bool] | None = None) -> duckdb.DuckDBPyConnection:
    """duckdb.connect with extension autoload/autoinstall off, after checking the file is DuckDB's."""
    check_database_file(database)
    return duckdb.connect(str(database), read_only=read_only, config={**(config or {}), **SAFE_CONFIG})

