"""Tables of backtest results and the market leaderboard (either backend): DDL, atomic replacement, reads."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from jutsu_pipeline.storage.ddl import RELATIONS, run_ddl
from jutsu_pipeline.storage.scope import fetch_arrow, scope_filter, scope_params
from jutsu_pipeline.storage.transactions import retry_conflicts, transaction

CREATE_BACKTEST_TRADES = """
CREATE TABLE IF NOT EXISTS backtest_trades (
    strategy     VARCHAR     NOT NULL,
    symbol       VARCHAR     NOT NULL,
    timeframe    VARCHAR     NOT NULL,
    trade_no     INTEGER     NOT NULL,  -- 1-based, in entry order
    entry_ts     TIMESTAMPTZ NOT NULL,  -- bar whose open filled the entry
    entry_price  DOUBLE      NOT NULL,
    exit_ts      TIMESTAMPTZ,           -- NULL while open
    exit_price   DOUBLE,                -- NULL while open
    mark_price   DOUBLE      NOT NULL,  -- exit price, or the last close an open trade is marked to
    size         DOUBLE      NOT NULL,  -- shares (multiples of 1e-8 when fractional)
    pnl          DOUBLE      NOT NULL,  -- cash, after both commissions once closed
    return_pct   DOUBLE      NOT NULL,  -- FRACTION (backtesting.py ReturnPct): mark/entry - 1 - commissions/(size*entry)
    commission   DOUBLE      NOT NULL,  -- cash paid so far (entry + exit)
    is_open      BOOLEAN     NOT NULL,
    entry_bar    INTEGER     NOT NULL,  -- 0-based bar index within the symbol's bars
    exit_bar     INTEGER,
    duration     INTERVAL               -- exit_ts - entry_ts, NULL while open
)
"""

# One row per curve with list columns: writing 500 lists is ~10x cheaper than 1.26 M rows, and the
# view below gives users the row-per-bar shape. (Before: a table `backtest_equity`; it is dropped.)
CREATE_BACKTEST_EQUITY_CURVES = """
CREATE TABLE IF NOT EXISTS backtest_equity_curves (
    strategy     VARCHAR       NOT NULL,
    symbol       VARCHAR       NOT NULL,
    timeframe    VARCHAR       NOT NULL,
    ts           TIMESTAMPTZ[] NOT NULL,
    equity       DOUBLE[]      NOT NULL   -- cash + position marked to each bar's close
)
"""
# drawdown_pct is a FRACTION (backtesting.py DrawdownPct): 1 - equity / running max, same arithmetic.
CREATE_BACKTEST_EQUITY = """
CREATE VIEW IF NOT EXISTS backtest_equity AS
SELECT *, 1 - equity / max(equity) OVER (PARTITION BY strategy, symbol, timeframe ORDER BY ts) AS drawdown_pct
FROM (SELECT strategy, symbol, timeframe, unnest(ts) AS ts, unnest(equity) AS equity FROM backtest_equity_curves)
"""

CREATE_BACKTEST_PERFORMANCE = """
CREATE TABLE IF NOT EXISTS backtest_performance (
    strategy              VARCHAR     NOT NULL,
    symbol                VARCHAR     NOT NULL,
    timeframe             VARCHAR     NOT NULL,
    "start"               TIMESTAMPTZ NOT NULL,
    "end"                 TIMESTAMPTZ NOT NULL,
    duration              INTERVAL    NOT NULL,
    exposure_time_pct     DOUBLE,
    equity_final          DOUBLE,
    equity_peak           DOUBLE,
    commissions           DOUBLE,
    return_pct            DOUBLE,
    buy_hold_return_pct   DOUBLE,
    return_ann_pct        DOUBLE,
    volatility_ann_pct    DOUBLE,
    cagr_pct              DOUBLE,
    sharpe_ratio          DOUBLE,
    sortino_ratio         DOUBLE,
    calmar_ratio          DOUBLE,
    alpha_pct             DOUBLE,
    beta                  DOUBLE,
    max_drawdown_pct      DOUBLE,
    avg_drawdown_pct      DOUBLE,
    max_drawdown_duration INTERVAL,
    avg_drawdown_duration INTERVAL,
    n_trades              BIGINT      NOT NULL,
    win_rate_pct          DOUBLE,
    best_trade_pct        DOUBLE,
    worst_trade_pct       DOUBLE,
    avg_trade_pct         DOUBLE,
    max_trade_duration    INTERVAL,
    avg_trade_duration    INTERVAL,
    profit_factor         DOUBLE,
    expectancy_pct        DOUBLE,
    sqn                   DOUBLE,
    kelly_criterion       DOUBLE,
    n_bars                BIGINT      NOT NULL,
    open_trade            BOOLEAN     NOT NULL,  -- a trade is still open at the end (not in the trade stats)
    params_json           VARCHAR     NOT NULL,  -- the strategy config the row was computed with
    data_version          VARCHAR     NOT NULL,  -- identifies the bars used (see DATA_VERSION)
    data_snapshot         BIGINT,                -- DuckLake snapshot the bars were read at; NULL on a DuckDB file
    computed_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (strategy, symbol, timeframe)
)
"""

RESULT_RELATIONS = ("backtest_trades", "backtest_equity_curves", "backtest_equity", "backtest_performance")
RESULT_TABLES_DDL = (CREATE_BACKTEST_TRADES, CREATE_BACKTEST_EQUITY_CURVES, CREATE_BACKTEST_EQUITY,
                     CREATE_BACKTEST_PERFORMANCE)

_STRATEGIES = "strategy IN (SELECT unnest($strategies::VARCHAR[]))"
_SCOPE = f" WHERE {scope_filter()} AND {_STRATEGIES}"
DELETE_TRADES = "DELETE FROM backtest_trades" + _SCOPE
DELETE_EQUITY = "DELETE FROM backtest_equity_curves" + _SCOPE
DELETE_PERFORMANCE = "DELETE FROM backtest_performance" + _SCOPE

# The session's Arrow results (registered by backtest/runner.py) hold every column but the timeframe.
# `exit_ts - entry_ts` of TIMESTAMPTZ goes through ICU's calendar: 0.2-0.4 s for 24 k trades. The same
# interval (days of 24 h, then the rest) from microseconds costs nothing.
INSERT_TRADES = """
INSERT INTO backtest_trades BY NAME
SELECT * EXCLUDE (series_id, held_us), $timeframe AS timeframe,
       to_days((held_us // 86400000000)::INTEGER) + to_microseconds(held_us % 86400000000) AS duration
FROM (SELECT *, epoch_us(exit_ts) - epoch_us(entry_ts) AS held_us FROM _bt_trades)
"""
INSERT_EQUITY = "INSERT INTO backtest_equity_curves BY NAME SELECT *, $timeframe AS timeframe FROM _bt_curves"
INSERT_PERFORMANCE = """
INSERT INTO backtest_performance BY NAME
SELECT * REPLACE (to_microseconds(duration) AS duration, to_microseconds(max_drawdown_duration) AS max_drawdown_duration,
                  to_microseconds(avg_drawdown_duration) AS avg_drawdown_duration,
                  to_microseconds(max_trade_duration) AS max_trade_duration,
                  to_microseconds(avg_trade_duration) AS avg_trade_duration),
       $timeframe AS timeframe, $data_snapshot::BIGINT AS data_snapshot, $computed_at AS computed_at
FROM _bt_performance
"""


# Added after the first release: existing files get the column on first use.
ADD_SNAPSHOT_COLUMN = "ALTER TABLE backtest_performance ADD COLUMN IF NOT EXISTS data_snapshot BIGINT"


# The result relations that exist (name, kind, comment) and whether backtest_performance has data_snapshot.
RESULT_CATALOG = f"""
SELECT r.*, EXISTS (SELECT 1 FROM duckdb_columns() WHERE database_name = current_database()
                    AND schema_name = current_schema() AND table_name = 'backtest_performance'
                    AND column_name = 'data_snapshot')
FROM ({RELATIONS}) AS r
"""


def ensure_result_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``backtest_trades``, ``backtest_equity`` and ``backtest_performance`` if missing (one catalog
    query when they exist)."""
    found = con.execute(RESULT_CATALOG, {"names": list(RESULT_RELATIONS)}).fetchall()
    kinds = {name: kind for name, kind, *_ in found}
    if kinds.get("backtest_equity") == "BASE TABLE":  # derived data of an older layout: recomputed
        con.execute("DROP TABLE backtest_equity")
        del kinds["backtest_equity"]
    if len(kinds) < len(RESULT_RELATIONS):
        run_ddl(con, RESULT_TABLES_DDL)
    if "backtest_performance" in kinds and not found[0][-1]:  # a table created before the column existed
        retry_conflicts(lambda: con.execute(ADD_SNAPSHOT_COLUMN), "add backtest_performance.data_snapshot")


def replace_results(
    con: duckdb.DuckDBPyConnection,
    *,
    timeframe: str,
    strategies: Sequence[str],
    symbols: Sequence[str],
    computed_at: object,
    data_snapshot: int | None = None,
) -> None:
    """Replace the scope's rows of the three tables by the session's registered results (``_bt_trades``,
    ``_bt_curves``, ``_bt_performance``), in one transaction."""
    scope = {**scope_params(timeframe, symbols), "strategies": list(strategies)}

    def replace() -> None:
        with transaction(con):
            for statement in (DELETE_TRADES, DELETE_EQUITY, DELETE_PERFORMANCE):
                con.execute(statement, scope)
            con.execute(INSERT_TRADES, {"timeframe": timeframe})
            con.execute(INSERT_EQUITY, {"timeframe": timeframe})
            con.execute(INSERT_PERFORMANCE, {"timeframe": timeframe, "computed_at": computed_at,
                                             "data_snapshot": data_snapshot})

    retry_conflicts(replace, f"backtest results {timeframe}")


# Strategy x symbol results of a market ranked by Sharpe across its timeframes (one market's rows replaced).
CREATE_LEADERBOARD = """
CREATE TABLE IF NOT EXISTS backtest_leaderboard (
    market VARCHAR NOT NULL, rank INTEGER NOT NULL, strategy VARCHAR NOT NULL, symbol VARCHAR NOT NULL,
    timeframe VARCHAR NOT NULL, sharpe_ratio DOUBLE, return_pct DOUBLE, max_drawdown_pct DOUBLE, n_trades BIGINT,
    computed_at TIMESTAMPTZ NOT NULL
)
"""
SELECT_PERFORMANCE = f"""
SELECT strategy, symbol, timeframe, sharpe_ratio, return_pct, return_ann_pct, max_drawdown_pct, n_trades, win_rate_pct
FROM backtest_performance
WHERE {scope_filter(timeframe=False)} AND {_STRATEGIES}
"""
# A superset of the best results' rows; callers pick each (strategy, symbol, timeframe).
SELECT_EQUITY = f"""
SELECT strategy, symbol, timeframe, ts, equity, drawdown_pct
FROM backtest_equity
WHERE {scope_filter(timeframe=False)} AND {_STRATEGIES} AND timeframe IN (SELECT unnest($timeframes::VARCHAR[]))
"""
DELETE_LEADERBOARD = "DELETE FROM backtest_leaderboard WHERE market = $market"
INSERT_LEADERBOARD = """
INSERT INTO backtest_leaderboard
SELECT $market, rank, strategy, symbol, timeframe, sharpe_ratio, return_pct, max_drawdown_pct, n_trades, now()
FROM ranked
"""


def read_performance(con: duckdb.DuckDBPyConnection, *, strategies: Sequence[str], symbols: Sequence[str]) -> pa.Table:
    """The performance rows of these strategies and symbols at every timeframe."""
    return fetch_arrow(con, SELECT_PERFORMANCE, {**scope_params(None, symbols), "strategies": list(strategies)})


def read_equity(con: duckdb.DuckDBPyConnection, *, strategies: Sequence[str], symbols: Sequence[str],
                timeframes: Sequence[str]) -> pa.Table:
    """Equity and drawdown of every combination of the three lists (unordered)."""
    return fetch_arrow(con, SELECT_EQUITY, {**scope_params(None, symbols), "strategies": list(strategies),
                                            "timeframes": list(timeframes)})


def replace_leaderboard(con: duckdb.DuckDBPyConnection, *, market: str, ranked: pa.Table) -> None:
    """`ranked` (rank, strategy, symbol, timeframe and the shown statistics) becomes the market's rows."""
    run_ddl(con, (CREATE_LEADERBOARD,))
    con.register("ranked", ranked)

    def replace() -> None:
        with transaction(con):
            con.execute(DELETE_LEADERBOARD, {"market": market})
            con.execute(INSERT_LEADERBOARD, {"market": market})

    try:
        retry_conflicts(replace, f"{market} leaderboard")
    finally:
        con.unregister("ranked")
