"""The DuckDB contract users query directly: tables `bars` and `corporate_actions`, the adjusted views,
the point-in-time macros and `coverage`. Every DDL statement of the pipeline's bars lives here.

New tables, macros and views go into SCHEMA_STATEMENTS: the same statement then works on a DuckDB file and
on a DuckLake, which has no PRIMARY KEY/UNIQUE constraints and keeps no macros (they are created per
connection there, `session_macros`)."""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Iterable, Sequence

import duckdb

from jutsu_pipeline.storage.backend import LAKE, is_lake
from jutsu_pipeline.storage.transactions import retry_conflicts

# No primary key: rows are unique by construction, on a DuckDB file as on a DuckLake. Every write deletes the
# windows it replaces and inserts validated rows (unique, inside those windows) in one transaction, and the
# writer refuses a duplicate (storage/bars.py); the `no_duplicates` check scans for rows written by others.
# The key's ART index was most of a first sync's write: 2.5 M bars in 4.4 s keyed against 1.7 s without
# (docs/performance.md, 2026-12-02). Files made earlier keep their key (DuckDB cannot drop it); both work.
CREATE_BARS = """
CREATE TABLE IF NOT EXISTS bars (
    symbol      VARCHAR     NOT NULL,
    timeframe   VARCHAR     NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,  -- bar start, UTC; daily bars: session date 00:00 UTC
    open        DOUBLE      NOT NULL,
    high        DOUBLE      NOT NULL,
    low         DOUBLE      NOT NULL,
    close       DOUBLE      NOT NULL,
    volume      DOUBLE      NOT NULL,
    adj_close   DOUBLE,                -- provider's split/dividend-adjusted close, NULL if none
    source      VARCHAR     NOT NULL,  -- provider name, or `derived:<base timeframe>`
    ingested_at TIMESTAMPTZ NOT NULL,
    incomplete  BOOLEAN     NOT NULL DEFAULT false  -- derived bars: some base bars of the bucket are missing
)
"""

# Files made before derived timeframes existed get the column (fetched bars are complete by definition).
ADD_INCOMPLETE = "ALTER TABLE bars ADD COLUMN IF NOT EXISTS incomplete BOOLEAN DEFAULT false"

# Append-only: a changed or withdrawn action is a new row (withdrawn: ratio and cash_amount NULL), so
# `corporate_actions_as_of(D)` can answer what was known at D.
CREATE_CORPORATE_ACTIONS = """
CREATE TABLE IF NOT EXISTS corporate_actions (
    symbol      VARCHAR     NOT NULL,
    ex_date     DATE        NOT NULL,  -- first session traded without the split/dividend
    kind        VARCHAR     NOT NULL,  -- 'split' (reverse splits too) or 'dividend'
    ratio       DOUBLE,                -- split: new shares per old share (2:1 -> 2.0, 1:10 reverse -> 0.1)
    cash_amount DOUBLE,                -- dividend per share, in the raw prices before ex_date
    currency    VARCHAR,
    source      VARCHAR     NOT NULL,  -- 'files', 'alpaca', 'yahoo', or 'inferred:<provider>' (from adj_close)
    ingested_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, ex_date, kind, source, ingested_at)
)
"""

# What was known at `as_of`: each source's latest version of an action (withdrawn ones dropped), then one
# source per (symbol, ex_date, kind): a user's files win over a provider's endpoint over inference.
CREATE_ACTIONS_AS_OF = """
CREATE OR REPLACE MACRO corporate_actions_as_of(as_of) AS TABLE
SELECT symbol, ex_date, kind, ratio, cash_amount, currency, source, ingested_at
FROM (
    SELECT *
    FROM corporate_actions
    WHERE ingested_at <= as_of
    QUALIFY row_number() OVER (PARTITION BY symbol, ex_date, kind, source ORDER BY ingested_at DESC) = 1
)
WHERE ratio IS NOT NULL OR cash_amount IS NOT NULL
QUALIFY row_number() OVER (
    PARTITION BY symbol, ex_date, kind
    ORDER BY CASE WHEN source = 'files' THEN 0 WHEN source LIKE 'inferred:%' THEN 2 ELSE 1 END, ingested_at DESC
) = 1
"""

CREATE_BARS_AS_OF = """
CREATE OR REPLACE MACRO bars_as_of(as_of) AS TABLE
SELECT * FROM bars WHERE ingested_at <= as_of
"""

# Back-adjustment factors per (symbol, ex_date), cumulated from the latest action backwards.
# Split of ratio r: earlier prices x 1/r, earlier volumes x r.
# Dividend D: earlier prices x (1 - D / C), C = the raw close of the last bar before the ex-date.
CREATE_ADJUSTMENT_FACTORS_AS_OF = """
CREATE OR REPLACE MACRO adjustment_factors_as_of(as_of) AS TABLE
WITH actions AS (
    SELECT a.symbol, a.ex_date, a.kind, a.ratio, a.cash_amount, p.close AS previous_close
    FROM (SELECT *, ex_date::TIMESTAMPTZ AS ex_ts FROM corporate_actions_as_of(as_of)) AS a
    ASOF LEFT JOIN (SELECT symbol, ts, close FROM bars WHERE ingested_at <= as_of) AS p
        ON a.symbol = p.symbol AND a.ex_ts > p.ts
),
per_day AS (
    SELECT symbol, ex_date,
           coalesce(product(1.0 / ratio) FILTER (WHERE kind = 'split'), 1.0) AS split_step,
           coalesce(product(1.0 - cash_amount / previous_close) FILTER (WHERE kind = 'dividend'), 1.0) AS dividend_step
    FROM actions
    GROUP BY symbol, ex_date
)
SELECT symbol, ex_date, ex_date::TIMESTAMPTZ AS ex_ts,
       product(split_step) OVER w AS split_factor,
       product(split_step * dividend_step) OVER w AS price_factor
FROM per_day
WINDOW w AS (PARTITION BY symbol ORDER BY ex_date DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
"""

# Bars adjusted with the actions known at `as_of`; `dividends` false = split-only prices.
# A bar takes the cumulated factor of the first ex-date after it (ASOF), 1 if none.
CREATE_BARS_ADJUSTED_AS_OF = """
CREATE OR REPLACE MACRO bars_adjusted_as_of(as_of, dividends) AS TABLE
SELECT
    b.symbol,
    b.timeframe,
    b.ts,
    b.open * factor AS open,
    b.high * factor AS high,
    b.low * factor AS low,
    b.close * factor AS close,
    b.volume / split AS volume,
    factor AS adjustment_factor,
    split AS split_factor,
    b.source,
    b.incomplete
FROM (
    SELECT b.*,
           coalesce(CASE WHEN dividends THEN f.price_factor ELSE f.split_factor END, 1.0) AS factor,
           coalesce(f.split_factor, 1.0) AS split
    FROM (SELECT * FROM bars WHERE ingested_at <= as_of) AS b
    ASOF LEFT JOIN adjustment_factors_as_of(as_of) AS f ON b.symbol = f.symbol AND b.ts < f.ex_ts
) AS b
"""

CREATE_BARS_ADJUSTED = """
CREATE OR REPLACE VIEW bars_adjusted AS
SELECT * FROM bars_adjusted_as_of('infinity'::TIMESTAMPTZ, true)
"""

CREATE_BARS_SPLIT_ADJUSTED = """
CREATE OR REPLACE VIEW bars_split_adjusted AS
SELECT * FROM bars_adjusted_as_of('infinity'::TIMESTAMPTZ, false)
"""

CREATE_CORPORATE_ACTIONS_CURRENT = """
CREATE OR REPLACE VIEW corporate_actions_current AS
SELECT * FROM corporate_actions_as_of('infinity'::TIMESTAMPTZ)
"""

CREATE_COVERAGE = """
CREATE OR REPLACE VIEW coverage AS
SELECT
    symbol,
    timeframe,
    min(ts)          AS first_ts,
    max(ts)          AS last_ts,
    count(*)         AS bars,
    string_agg(DISTINCT source, ',' ORDER BY source) AS source,
    max(ingested_at) AS last_ingested_at
FROM bars
GROUP BY symbol, timeframe
"""

SCHEMA_STATEMENTS = (
    CREATE_BARS,
    ADD_INCOMPLETE,
    CREATE_CORPORATE_ACTIONS,
    CREATE_ACTIONS_AS_OF,
    CREATE_BARS_AS_OF,
    CREATE_ADJUSTMENT_FACTORS_AS_OF,
    CREATE_BARS_ADJUSTED_AS_OF,
    CREATE_BARS_ADJUSTED,
    CREATE_BARS_SPLIT_ADJUSTED,
    CREATE_CORPORATE_ACTIONS_CURRENT,
    CREATE_COVERAGE,
)
_TABLE_NAME = re.compile(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.IGNORECASE)
_VIEW_NAME = re.compile(r"CREATE\s+OR\s+REPLACE\s+VIEW\s+(\w+)", re.IGNORECASE)
_MACRO = re.compile(r"CREATE\s+OR\s+REPLACE\s+MACRO", re.IGNORECASE)
SCHEMA_RELATIONS = tuple(m[1] for st in SCHEMA_STATEMENTS if (m := _TABLE_NAME.search(st) or _VIEW_NAME.search(st)))
# Written as the `coverage` view's comment after the DDL: a file or lake showing it needs none.
SCHEMA_MARKER = "jutsu-pipeline schema " + hashlib.sha256("".join(SCHEMA_STATEMENTS).encode()).hexdigest()[:16]


# Tables and views among the bound names in the connection's current database and schema (a DuckLake's,
# when one is in use), with their kind and comment.
RELATIONS = """
SELECT table_name, 'BASE TABLE', comment FROM duckdb_tables()
WHERE database_name = current_database() AND schema_name = current_schema() AND list_contains($names, table_name)
UNION ALL
SELECT view_name, 'VIEW', comment FROM duckdb_views()
WHERE database_name = current_database() AND schema_name = current_schema() AND list_contains($names, view_name)
"""
COLUMN_NAMES = """
SELECT column_name FROM duckdb_columns()
WHERE database_name = current_database() AND schema_name = current_schema() AND table_name = $name
ORDER BY column_index
"""


def relations(con: duckdb.DuckDBPyConnection, names: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """Kind ("BASE TABLE" or "VIEW") and comment of each table/view of `names` that exists: one catalog
    query, so that the writers' per-run schema checks issue no DDL."""
    return {name: (kind, comment) for name, kind, comment in con.execute(RELATIONS, {"names": list(names)}).fetchall()}


def relation_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """A table or view `name` exists."""
    return name in relations(con, (name,))


_KEY_CONSTRAINT = re.compile(r",(\s*--[^\n]*)?\s*(PRIMARY\s+KEY|UNIQUE)\s*\([^)]*\)", re.IGNORECASE)
BARS_KEY = ("symbol", "timeframe", "ts")  # the primary key of `bars` in files made before 2026-12-02
PRIMARY_KEYS = """
SELECT constraint_column_names FROM duckdb_constraints()
WHERE database_name = current_database() AND schema_name = current_schema() AND table_name = $name
  AND constraint_type = 'PRIMARY KEY'
"""


def has_primary_key(con: duckdb.DuckDBPyConnection, name: str, columns: Sequence[str]) -> bool:
    """Table `name` enforces a primary key on exactly `columns` (`bars` of a DuckDB file made before
    2026-12-02: yes; a newer one's, a DuckLake's or a table made by another tool: no)."""
    return any(list(key) == list(columns) for (key,) in con.execute(PRIMARY_KEYS, {"name": name}).fetchall())


def column_names(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    """The columns of table or view `name` in order; none when it does not exist."""
    return [row[0] for row in con.execute(COLUMN_NAMES, {"name": name}).fetchall()]


_LAKE_TABLE = re.compile(r"\b(FROM|JOIN)\s+(bars|corporate_actions)\b", re.IGNORECASE)


def _temp_macro(statement: str) -> str:
    """A TEMP macro binds unqualified tables in the temp catalog: point them at the lake's."""
    return _LAKE_TABLE.sub(rf"\1 {LAKE}.\2", _MACRO.sub("CREATE OR REPLACE TEMP MACRO", statement, count=1))


# Connections whose TEMP macros exist (DuckLake; a DuckDB file keeps its macros).
_with_macros: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()


def session_macros(con: duckdb.DuckDBPyConnection) -> None:
    """DuckLake stores no macros: create SCHEMA_STATEMENTS' macros as TEMP macros of this connection
    (on a new lake without tables yet, `ensure_schema` creates them with the tables)."""
    for statement in SCHEMA_STATEMENTS:
        if _MACRO.search(statement):
            try:
                con.execute(_temp_macro(statement))
            except duckdb.CatalogException:
                return
    _with_macros.add(con)


def run_ddl(con: duckdb.DuckDBPyConnection, statements: Sequence[str], *, replace_views: bool = False) -> None:
    """Run `statements` (tables, macros, views, comments) on either backend, retrying DuckLake commit
    conflicts. On DuckLake: no table-level key constraints, TEMP macros, views only when missing or
    `replace_views` (every catalog change is a snapshot, and concurrent writers would conflict on it)."""
    lake = is_lake(con)

    def create_all() -> None:
        views = (m[1] for m in map(_VIEW_NAME.search, statements) if m)
        existing = relations(con, views) if lake and not replace_views else {}
        for statement in statements:
            view = _VIEW_NAME.search(statement)
            if _MACRO.search(statement):
                con.execute(_temp_macro(statement) if lake else statement)
            elif not (view and view[1] in existing):
                con.execute(_KEY_CONSTRAINT.sub("", statement) if lake else statement)
        if lake:
            _with_macros.add(con)

    retry_conflicts(create_all, "create tables")


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables, macros and views unless they exist at this version: one catalog query when
    they do (the schema version is the `coverage` view's comment, written after the DDL); on DuckLake
    also this connection's TEMP macros, once."""
    found = relations(con, SCHEMA_RELATIONS)
    if len(found) < len(SCHEMA_RELATIONS) or found["coverage"][1] != SCHEMA_MARKER:
        # Another version's views are replaced, a lake's too (its missing ones are created either way).
        stale = "coverage" in found and found["coverage"][1] != SCHEMA_MARKER
        run_ddl(con, (*SCHEMA_STATEMENTS, f"COMMENT ON VIEW coverage IS '{SCHEMA_MARKER}'"), replace_views=stale)
    elif con not in _with_macros and is_lake(con):
        session_macros(con)
