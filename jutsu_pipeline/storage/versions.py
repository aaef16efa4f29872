"""Content versions of stored bars: equal bars <=> equal version (what downstream assets report to Dagster)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from jutsu_pipeline.storage.scope import ROW_HASH

if TYPE_CHECKING:  # loaded by the runs that fold versions, not by the definitions (combined_version)
    import numpy as np
    import pyarrow as pa

# Order-independent content hash of a group of bars (bit_xor of row hashes), plus the count and time range.
CONTENT_HASH = f"md5(concat_ws('|', count(*), min(ts), max(ts), bit_xor({ROW_HASH})))"
# The same version from its parts, where a reader aggregated them from the rows it read: n = count(*),
# first_ts/last_ts = min/max(ts) (TIMESTAMPTZ), content = bit_xor of the rows' `scope.ROW_HASH` (UBIGINT).
VERSION_OF_PARTS = "md5(concat_ws('|', n, first_ts, last_ts, content))"


def combined_version(versions: Mapping[str, str], *extra: str) -> str:
    """One version for a set of symbols (and anything else the result depends on, e.g. parameters)."""
    return hashlib.sha256("\n".join([*(f"{k}={v}" for k, v in sorted(versions.items())), *extra]).encode()).hexdigest()[:32]


def version_parts(symbols: pa.Array, lengths: np.ndarray, ts: pa.Array, row_hash: np.ndarray) -> pa.Table:
    """The parts of VERSION_OF_PARTS folded in memory: per run of `lengths[k]` consecutive rows (non-empty,
    one symbol's bars in ts order, `symbols[k]`), symbol, n, first_ts, last_ts and content (bit_xor of the
    rows' `row_hash`, DuckDB's `scope.ROW_HASH`)."""
    import numpy as np
    import pyarrow as pa

    starts = np.cumsum(lengths) - lengths
    return pa.table({
        "symbol": symbols, "n": np.asarray(lengths, np.int64), "first_ts": ts.take(starts),
        "last_ts": ts.take(starts + lengths - 1),
        "content": np.bitwise_xor.reduceat(row_hash, starts) if starts.size else np.empty(0, np.uint64),
    })
