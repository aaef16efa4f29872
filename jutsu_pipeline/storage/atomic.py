"""Whole-file replacement by rename (no DuckDB here: reading a configuration imports this)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: str | bytes, *, private: bool = False) -> None:
    """Replace `path` by one rename, so a reader never sees half a file. `private` keeps mkstemp's owner-only
    0600 (tokens); otherwise 0644, as a page or cache others may read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        if not private:
            os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
