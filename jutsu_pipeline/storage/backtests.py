"""Tables of backtest results and the market leaderboard (either backend): DDL, atomic replacement, reads."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import duckdb
import pyarrow as pa

from jutsu_pipeline.storage.ddl import column_names, relations, run_ddl
from jutsu_pipeline.storage.scope import fetch_arrow, registered, scope_filter, scope_params
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
    duration     INTERVAL,              -- exit_ts - entry_ts, NULL while open
    cash_after_entry DOUBLE,            -- the account's cash beside the position after the entry fill
    cash_after_exit  DOUBLE             -- its cash after the exit fill (the equity then), NULL while open
)
"""

# Equity at each bar's close from the trades and the bars a result read, with the engine's arithmetic
# operation for operation (prices and units scaled as FractionalBacktest does): equal to the run's bit for
# bit, where storing 1.26 M values per 500 x 2,520 run cost ~0.5 s. drawdown_pct is a FRACTION
# (backtesting.py DrawdownPct): 1 - equity / running max.
CREATE_BACKTEST_EQUITY = """
CREATE OR REPLACE VIEW backtest_equity AS
WITH results AS (
    SELECT strategy, symbol, timeframe, "start", "end", adjusted,
           json_extract_string(params_json, 'initial_cash')::DOUBLE AS initial_cash,
           CASE WHEN json_extract_string(params_json, 'fractional')::BOOLEAN THEN 1 / 100e6 ELSE 1.0 END AS unit
    FROM backtest_performance
),
marked AS (  -- bars_adjusted's arithmetic on the result's bars only (the view itself adjusts every bar first)
    SELECT r.*, b.ts, CASE WHEN r.adjusted THEN b.close * coalesce(f.price_factor, 1.0) ELSE b.close END AS close
    FROM results AS r
    JOIN bars AS b ON b.symbol = r.symbol AND b.timeframe = r.timeframe AND b.ts BETWEEN r."start" AND r."end"
    ASOF LEFT JOIN adjustment_factors_as_of('infinity'::TIMESTAMPTZ) AS f ON b.symbol = f.symbol AND b.ts < f.ex_ts
),
fills AS (
    SELECT strategy, symbol, timeframe, entry_ts AS ts, cash_after_entry AS cash, size AS held, entry_price AS price
    FROM backtest_trades
    UNION ALL
    SELECT strategy, symbol, timeframe, exit_ts, cash_after_exit, 0.0, 0.0 FROM backtest_trades WHERE NOT is_open
)
SELECT strategy, symbol, timeframe, ts, equity,
       1 - equity / max(equity) OVER (PARTITION BY strategy, symbol, timeframe ORDER BY ts) AS drawdown_pct
FROM (
    SELECT m.strategy, m.symbol, m.timeframe, m.ts,
           CASE WHEN f.ts IS NULL THEN m.initial_cash ELSE f.cash + (m.close * m.unit * round(f.held / m.unit)
                - round(f.held / m.unit) * (f.price * m.unit)) END AS equity
    FROM marked AS m ASOF LEFT JOIN fills AS f
      ON f.strategy = m.strategy AND f.symbol = m.symbol AND f.timeframe = m.timeframe AND m.ts >= f.ts
)
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
    adjusted              BOOLEAN,               -- read bars_adjusted (true) or raw bars (false)
    params_json           VARCHAR     NOT NULL,  -- the strategy config the row was computed with
    data_version          VARCHAR     NOT NULL,  -- identifies the bars used (see DATA_VERSION)
    data_snapshot         BIGINT,                -- DuckLake snapshot the bars were read at; NULL on a DuckDB file
    computed_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (strategy, symbol, timeframe)
)
"""

RESULT_RELATIONS = ("backtest_trades", "backtest_performance", "backtest_equity")
RESULT_TABLES_DDL = (CREATE_BACKTEST_TRADES, CREATE_BACKTEST_PERFORMANCE, CREATE_BACKTEST_EQUITY)

_STRATEGIES = "strategy IN (SELECT unnest($strategies::VARCHAR[]))"
_SCOPE = f" WHERE {scope_filter()} AND {_STRATEGIES}"
DELETE_TRADES = "DELETE FROM backtest_trades" + _SCOPE
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
INSERT_PERFORMANCE = """
INSERT INTO backtest_performance BY NAME
SELECT * REPLACE (to_microseconds(duration) AS duration, to_microseconds(max_drawdown_duration) AS max_drawdown_duration,
                  to_microseconds(avg_drawdown_duration) AS avg_drawdown_duration,
                  to_microseconds(max_trade_duration) AS max_trade_duration,
                  to_microseconds(avg_trade_duration) AS avg_trade_duration),
       $timeframe AS timeframe, $data_snapshot::BIGINT AS data_snapshot, $computed_at AS computed_at,
       $adjusted AS adjusted
FROM _bt_performance
"""


# Added after the first release: existing files get the columns on first use (their old rows show no equity
# until the backtest re-runs).
ADDED_COLUMNS = {"backtest_performance": {"data_snapshot": "BIGINT", "adjusted": "BOOLEAN"},
                 "backtest_trades": {"cash_after_entry": "DOUBLE", "cash_after_exit": "DOUBLE"}}


def ensure_result_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the result tables and the ``backtest_equity`` view if missing (one catalog query when they
    exist); drop the stored curves of older layouts (derived data)."""
    found = relations(con, (*RESULT_RELATIONS, "backtest_equity_curves"))
    if found.keys() == set(RESULT_RELATIONS) and found["backtest_equity"][0] == "VIEW":
        return
    if "backtest_equity_curves" in found:
        con.execute("DROP VIEW IF EXISTS backtest_equity")
        con.execute("DROP TABLE backtest_equity_curves")
    elif found.get("backtest_equity", ("",))[0] == "BASE TABLE":
        con.execute("DROP TABLE backtest_equity")
    run_ddl(con, RESULT_TABLES_DDL[:2])
    for table, added in ADDED_COLUMNS.items():
        for column in sorted(added.keys() - set(column_names(con, table))):
            statement = f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {added[column]}"
            retry_conflicts(partial(con.execute, statement), f"add {table}.{column}")
    run_ddl(con, RESULT_TABLES_DDL[2:])  # the view reads the added columns


def replace_results(
    con: duckdb.DuckDBPyConnection,
    *,
    timeframe: str,
    strategies: Sequence[str],
    symbols: Sequence[str],
    computed_at: object,
    adjusted: bool,
    data_snapshot: int | None = None,
) -> None:
    """Replace the scope's rows of both tables by the session's registered results (``_bt_trades``,
    ``_bt_performance``), in one transaction."""
    scope = {**scope_params(timeframe, symbols), "strategies": list(strategies)}

    def replace() -> None:
        with transaction(con):
            for statement in (DELETE_TRADES, DELETE_PERFORMANCE):
                con.execute(statement, scope)
            con.execute(INSERT_TRADES, {"timeframe": timeframe})
            con.execute(INSERT_PERFORMANCE, {"timeframe": timeframe, "computed_at": computed_at,
                                             "data_snapshot": data_snapshot, "adjusted": adjusted})

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
# A superset of the best results' rows; callers pick each (strategy, symbol, timeframe). list_contains, not
# `IN (SELECT unnest(...))`: a filter reaches through the view's joins and window to the scans, a semi-join does not.
SELECT_EQUITY = """
SELECT strategy, symbol, timeframe, ts, equity, drawdown_pct
FROM backtest_equity
WHERE list_contains($symbols::VARCHAR[], symbol) AND list_contains($strategies::VARCHAR[], strategy)
  AND list_contains($timeframes::VARCHAR[], timeframe)
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

    def replace() -> None:
        with transaction(con):
            con.execute(DELETE_LEADERBOARD, {"market": market})
            con.execute(INSERT_LEADERBOARD, {"market": market})

    with registered(con, ranked=ranked):
        retry_conflicts(replace, f"{market} leaderboard")
