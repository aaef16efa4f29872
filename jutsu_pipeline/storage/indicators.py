"""The `indicators` table, its `bars_with_indicators` view, and the replacement of a set of symbols' rows.

Symbols and timeframes are always bound parameters. The only formatted identifiers are indicator column
names, checked against `scope.IDENTIFIER`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from jutsu_pipeline.storage.backend import is_lake
from jutsu_pipeline.storage.ddl import column_names, ensure_schema, relation_exists, relations, run_ddl
from jutsu_pipeline.storage.scope import (
    EARLIEST,
    IDENTIFIER,
    IN_SCOPE_STORAGE_ORDER,
    OHLCV,
    ROW_HASH,
    SYMBOL_NO,
    fetch_arrow,
    fetch_numpy_parallel,
    registered,
    scope_filter,
    scope_params,
)
from jutsu_pipeline.storage.transactions import retry_conflicts
from jutsu_pipeline.storage.versions import VERSION_OF_PARTS

if TYPE_CHECKING:
    import numpy as np

# Derived data, rebuilt whole per symbol: (symbol, timeframe, ts) is unique by construction (it comes
# from `bars`' primary key and indicator_frame rejects duplicates), so no index is kept: an ART index
# made a full refresh ~5x slower.
CREATE_INDICATORS = """
CREATE TABLE IF NOT EXISTS indicators (
    symbol    VARCHAR     NOT NULL,
    timeframe VARCHAR     NOT NULL,
    ts        TIMESTAMPTZ NOT NULL  -- the bar's ts in bars / bars_adjusted
)
"""

# What each symbol's rows were computed from, replaced with them: an incremental run trusts the stored
# rows only while the bars up to `last_ts` still hash to `content`, and computes the bars after it. With
# `first_ts` they are the parts of the bars' data version (`versions.VERSION_OF_PARTS`).
CREATE_INDICATOR_INPUTS = """
CREATE TABLE IF NOT EXISTS indicator_inputs (
    symbol    VARCHAR     NOT NULL,
    timeframe VARCHAR     NOT NULL,
    columns   VARCHAR     NOT NULL,  -- the indicator columns the rows hold, comma-separated
    bars      BIGINT      NOT NULL,  -- how many bars they were computed from
    last_ts   TIMESTAMPTZ NOT NULL,  -- the last of those bars
    content   UBIGINT     NOT NULL,  -- bit_xor(hash(ts, open, high, low, close, volume)) of those bars
    first_ts  TIMESTAMPTZ            -- the first of those bars (NULL in records older than it: not resumed)
)
"""
ADD_FIRST_TS = "ALTER TABLE indicator_inputs ADD COLUMN first_ts TIMESTAMPTZ"
INSERT_BATCH_ROWS = 122_880  # DuckDB's row group size
OWN_RELATIONS = ("bars_adjusted", "indicators", "indicator_inputs", "bars_with_indicators")

# Symbols whose stored rows still describe their bars: same columns, and the bars up to last_ts are the
# ones hashed then (same count and content); with the ts of the `warmup`-th bar back from last_ts (the
# first bar if there are fewer: top-N, not a window over the whole history). `{relation}`: bars or
# bars_adjusted.
INTACT = f"""
SELECT b.symbol, any_value(s.last_ts) AS last_ts, any_value(s.bars) AS bars, any_value(s.content) AS content,
       any_value(s.first_ts) AS first_ts, count(*) FILTER (WHERE b.ts > s.last_ts) AS new_bars,
       list_min(max(b.ts, {{warmup:d}}) FILTER (WHERE b.ts <= s.last_ts)) AS warmup_from
FROM {{relation}} AS b
JOIN (SELECT * FROM indicator_inputs WHERE {scope_filter()} AND columns = $columns) AS s USING (symbol, timeframe)
GROUP BY b.symbol
HAVING count(*) FILTER (WHERE b.ts <= s.last_ts) = any_value(s.bars)
   AND bit_xor({ROW_HASH}) FILTER (WHERE b.ts <= s.last_ts) = any_value(s.content)
   AND min(b.ts) = any_value(s.first_ts)
"""

# The bars an indicator run reads: the columns TA-Lib takes and the content hash, keyed by symbol_no (as
# `read_bars(positions=True)`); SINCE (each symbol's from its `since` on) only when some symbol has one: per row
# it cost a full refresh ~15 ms CPU of a ~130 ms read. No join, no ORDER BY: storage order, sorted by the caller
# only when not already by symbol and ts; `$earliest` lets the scan skip older row groups.
READ_INPUTS = f"""
SELECT * FROM (SELECT {SYMBOL_NO} AS symbol_no, ts{{columns}}, {ROW_HASH} AS row_hash FROM {{relation}}
               WHERE {IN_SCOPE_STORAGE_ORDER} AND ts >= $earliest)
{{since}}"""
SINCE = "WHERE ts >= list_extract($since::TIMESTAMPTZ[], symbol_no + 1)"

# Stored values of cumulative columns at each symbol's last_ts (what an incremental run continues from).
STORED_AT = """
SELECT symbol{columns} FROM indicators
JOIN (SELECT unnest($symbols::VARCHAR[]) AS symbol, unnest($last_ts::TIMESTAMPTZ[]) AS ts) USING (symbol, ts)
WHERE timeframe = $timeframe
"""

# Rows after each symbol's `after` ts (EARLIEST: every row), then the symbols' input records.
DELETE_AFTER = """
DELETE FROM indicators AS i
USING (SELECT unnest($symbols::VARCHAR[]) AS symbol, unnest($after::TIMESTAMPTZ[]) AS after) AS d
WHERE i.timeframe = $timeframe AND i.symbol = d.symbol AND i.ts > d.after
"""
DELETE_INPUTS = f"DELETE FROM indicator_inputs WHERE {scope_filter()}"
INSERT_INPUTS = """
INSERT INTO indicator_inputs
SELECT symbol, $timeframe, $columns, n, last_ts, content, first_ts FROM staged_inputs
"""

INPUT_VERSIONS = f"""
SELECT symbol, {VERSION_OF_PARTS}
FROM (SELECT symbol, bars AS n, first_ts, last_ts, content FROM indicator_inputs WHERE {scope_filter()})
"""

ADD_COLUMN = 'ALTER TABLE indicators ADD COLUMN "{column}" DOUBLE{storage}'
# Indicator columns are stored uncompressed in a DuckDB file: TA-Lib's outputs are full-precision doubles
# that DuckDB's best codec (ALPRD) shrinks by only ~16 % (119 -> 142 MiB for 1.26 M rows x 13 columns,
# measured 2026-12-02), while choosing and applying it was ~15 % of a full refresh's INSERT. DuckDB keeps
# the choice in its catalog but not in `duckdb_tables().sql`, so the swap below restates it.
UNCOMPRESSED = " USING COMPRESSION uncompressed"
DOUBLE_COLUMN = re.compile(r"( DOUBLE)(?=[,)])")

# Adjusted bars with every indicator column present in the table (NULL where not computed).
CREATE_BARS_WITH_INDICATORS = """
CREATE OR REPLACE VIEW bars_with_indicators AS
SELECT b.*, i.* EXCLUDE (symbol, timeframe, ts)
FROM bars_adjusted AS b
LEFT JOIN indicators AS i USING (symbol, timeframe, ts)
"""

# Every row of these symbols at this timeframe: their full history is recomputed and re-inserted.
DELETE_SYMBOLS = f"DELETE FROM indicators WHERE {scope_filter()}"
# A full recomputation of every row the table holds swaps in a new, empty table instead: no DELETE and no
# deleted row groups for the checkpoint (~0.1 s of a 1.5 s refresh of 1.26 M rows). Only a table that `sql`
# recreates whole (no index or comment to lose); views bind it by name.
SWAPPABLE = """
SELECT sql FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = current_schema()
  AND table_name = 'indicators' AND index_count = 0 AND comment IS NULL AND starts_with(sql, 'CREATE TABLE indicators(')
  AND NOT EXISTS (FROM indicators WHERE timeframe <> $timeframe OR NOT list_contains($symbols::VARCHAR[], symbol))
"""
SWAP = ("DROP TABLE indicators", "ALTER TABLE indicators_new RENAME TO indicators")

# Columns matched by name: indicator columns of other parameter sets stay NULL for these rows.
INSERT_STAGED = """
INSERT INTO indicators BY NAME
SELECT $timeframe AS timeframe, * FROM staged_indicators
"""


def ensure_indicator_table(con: duckdb.DuckDBPyConnection, columns: Iterable[str]) -> list[str]:
    """Create `indicators` and its view; add the DOUBLE `columns` it lacks, keeping the others (markets
    and strategies may need different periods). Returns the columns added; no DDL when none is missing."""
    wanted = list(columns)
    bad = [c for c in wanted if not IDENTIFIER.match(c)]  # formatted into DDL
    if bad:
        raise ValueError(f"invalid indicator column name(s) {bad}")
    if (len(relations(con, OWN_RELATIONS)) == len(OWN_RELATIONS) and set(wanted) <= set(column_names(con, "indicators"))
            and "first_ts" in column_names(con, "indicator_inputs")):
        return []  # the common case: nothing to create, no DDL
    ensure_schema(con)
    run_ddl(con, (CREATE_INDICATORS, CREATE_INDICATOR_INPUTS))

    def migrate() -> list[str]:
        existing = set(column_names(con, "indicators"))  # add only the missing ones: no catalog churn
        added = [c for c in wanted if c not in existing]
        storage = "" if added and is_lake(con) else UNCOMPRESSED
        for column in added:
            con.execute(ADD_COLUMN.format(column=column, storage=storage))
        if "first_ts" not in column_names(con, "indicator_inputs"):
            con.execute(ADD_FIRST_TS)
        if added or not relation_exists(con, "bars_with_indicators"):  # the view binds its columns when created
            con.execute(CREATE_BARS_WITH_INDICATORS)
        return added

    return retry_conflicts(migrate, "create indicators")


@dataclass(frozen=True)
class Resume:
    """Where a symbol's stored rows end: its bars `first_ts`..`last_ts` (`bars` of them, hashing to `content`)
    are unchanged since they were computed, and `new_bars` bars follow; the warm-up reads from `warmup_from`."""

    last_ts: dt.datetime
    bars: int
    content: int
    first_ts: dt.datetime
    new_bars: int
    warmup_from: dt.datetime


def intact_symbols(con: duckdb.DuckDBPyConnection, *, timeframe: str, symbols: Sequence[str], relation: str,
                   columns: Sequence[str], warmup: int) -> dict[str, Resume]:
    """The symbols whose stored rows hold `columns` computed from their current bars up to the last one
    computed (`relation`: `bars` or `bars_adjusted`, as `scope.bars_relation` resolves it), each with the
    ts of the `warmup`-th bar back from that one."""
    rows = con.execute(INTACT.format(relation=relation, warmup=int(warmup)),
                       {**scope_params(timeframe, symbols), "columns": ",".join(columns)}).fetchall()
    return {row[0]: Resume(*row[1:]) for row in rows}


def input_versions(con: duckdb.DuckDBPyConnection, *, timeframe: str, symbols: Sequence[str]) -> dict[str, str]:
    """The data version of the bars each symbol's stored rows were computed from (`versions.CONTENT_HASH` of
    those bars), from its input record; symbols without rows are absent."""
    return dict(con.execute(INPUT_VERSIONS, scope_params(timeframe, symbols)).fetchall())


def read_inputs(con: duckdb.DuckDBPyConnection, *, timeframe: str, symbols: Sequence[str], relation: str,
                columns: Sequence[str], since: Mapping[str, dt.datetime]) -> dict[str, np.ndarray]:
    """symbol_no (position in `symbols`), ts, `columns` and row_hash of the symbols' bars in `relation` (as
    `scope.bars_relation` resolved it), each symbol's from its `since` on (absent: all), in storage order, as
    numpy columns (`scope.fetch_numpy_parallel`)."""
    if relation not in ("bars", "bars_adjusted") or not all(c in OHLCV for c in columns):
        raise ValueError(f"indicators read columns of {OHLCV} from bars or bars_adjusted, not {relation} {columns}")
    selected = "".join(f', "{c}"' for c in columns)
    starts = [since.get(s, EARLIEST) for s in symbols]
    bound = {"since": starts} if since else {}
    return fetch_numpy_parallel(con, READ_INPUTS.format(relation=relation, columns=selected, since=SINCE if since else ""), {
        **scope_params(timeframe, symbols), **bound, "earliest": min(starts, default=EARLIEST)})


def stored_at(con: duckdb.DuckDBPyConnection, *, timeframe: str, last_ts: Mapping[str, dt.datetime],
              columns: Sequence[str]) -> pa.Table:
    """symbol and `columns` of each symbol's stored row at its `last_ts`."""
    symbols = list(last_ts)
    selected = "".join(f', "{c}"' for c in columns if IDENTIFIER.match(c))
    return fetch_arrow(con, STORED_AT.format(columns=selected), {
        **scope_params(timeframe, symbols), "last_ts": [last_ts[s] for s in symbols]})


def replace_indicators(con: duckdb.DuckDBPyConnection, *, timeframe: str, symbols: Sequence[str], staged: pa.Table,
                       inputs: pa.Table, columns: Sequence[str], resumed: Mapping[str, Resume]) -> None:
    """Replace the rows of `symbols` at `timeframe` by `staged` (symbol, ts, indicator `columns`) and their
    input records by `inputs` (`versions.version_parts`: symbol, n, first_ts, last_ts, content). A `resumed`
    symbol keeps its rows up to its `last_ts` and `staged` holds only the later ones. Run it inside the caller's
    transaction, the one that read the bars."""
    symbols = list(symbols)
    # DuckDB inserts an Arrow table in parallel per record batch: one 1.26 M-row chunk is one thread
    # (slices, no copy; 1.4-1.6 s instead of 1.8-2.2 s for 500 x 2,520 rows of 13 indicators here).
    staged = pa.Table.from_batches(staged.to_batches(max_chunksize=INSERT_BATCH_ROWS), staged.schema)
    with registered(con, staged_indicators=staged, staged_inputs=inputs):
        if resumed:
            con.execute(DELETE_AFTER, {"timeframe": timeframe, "symbols": symbols,
                                       "after": [resumed[s].last_ts if s in resumed else EARLIEST for s in symbols]})
        elif not _swapped(con, timeframe, symbols):  # the plain DELETE is cheaper than the join
            con.execute(DELETE_SYMBOLS, scope_params(timeframe, symbols))
        con.execute(INSERT_STAGED, {"timeframe": timeframe})
        con.execute(DELETE_INPUTS, scope_params(timeframe, symbols))
        con.execute(INSERT_INPUTS, {"timeframe": timeframe, "columns": ",".join(columns)})


def _swapped(con: duckdb.DuckDBPyConnection, timeframe: str, symbols: Sequence[str]) -> bool:
    """Swap `indicators` for an empty copy if the scope holds every row it has. A DuckDB file only (a DuckLake
    deletes whole files cheaply, and its concurrent writers would conflict on a new table). True if swapped."""
    found = None if is_lake(con) else con.execute(SWAPPABLE, scope_params(timeframe, symbols)).fetchone()
    if found is None:
        return False
    con.execute(DOUBLE_COLUMN.sub(rf"\1{UNCOMPRESSED}", found[0].replace("CREATE TABLE indicators(", "CREATE TABLE indicators_new(", 1)))
    for statement in SWAP:
        con.execute(statement)
    return True
