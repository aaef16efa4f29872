"""backtesting.py 0.6.6 ``compute_stats`` as DuckDB SQL aggregates, for every strategy x symbol at once.

Inputs (registered in the session by runner.py; reductions of the per-bar curves from curves.py):

- ``_bt_series(series_id, strategy, symbol, n_bars, close_base, annual_periods, resolution_us, ...)``
- ``_bt_equity_agg(series_id, start_ts, end_ts, start_us, end_us, equity_first, equity_final, equity_peak,
  max_drawdown, mean_nonzero_drawdown, close_last, covariance, market_variance)``: one row per series
  with bars (``curves.series_aggregates``: first/last, max, mean of the non-zero drawdowns, sample
  covariance of equity and market log returns and variance of the latter)
- ``_bt_dd_episodes(series_id, peak_drawdown, duration_us)``: backtesting.py's
  ``compute_drawdown_duration_peaks``: an episode is a group (previous marker, closing marker] of more
  than one bar; its duration runs from the previous marker to the closing one
- ``_bt_period_agg(series_id, gmean, variance, downside)``: of the equity resampled to the series'
  period, simple returns: geometric mean (0 if any 1 + r <= 0), sample variance, sqrt(mean(min(r, 0)^2))
- ``_bt_trades(series_id, entry_bar, exit_bar, entry_ts, exit_ts, pnl, return_pct, commission, is_open)``
- ``_bt_version_parts(symbol, n, first_ts, last_ts, content)``: the parts of each symbol's data version

The per-bar reductions left SQL for numpy: scanning the 1.26 M-row Arrow curves and returns cost ~0.5-1.3 s
of a 500 x 2,520 run here. Returns one row per series (the columns of ``STAT_COLUMNS``, durations
in microseconds). Every formula is backtesting.py's; docs/backtesting.md lists them with the source
subtleties kept. NaN results are stored as NULL; +-inf (e.g. Sortino without a losing period) is kept.
"""

from __future__ import annotations

from jutsu_pipeline.storage.versions import VERSION_OF_PARTS

_PERFORMANCE = """
WITH episodes AS (
    SELECT
        series_id,
        count(*) AS n_episodes,
        avg(peak_drawdown) AS avg_peak_drawdown,
        max(duration_us) AS max_duration_us,
        sum(duration_us)::HUGEINT AS sum_duration_us
    FROM _bt_dd_episodes
    GROUP BY series_id
),
closed AS (
    SELECT
        series_id,
        count(*) AS n_trades,
        sum(exit_bar - entry_bar + 1) AS bars_held,
        sum(commission) AS commissions,
        avg(CASE WHEN pnl > 0 THEN 1.0 ELSE 0.0 END) AS win_rate,
        max(return_pct) AS best,
        min(return_pct) AS worst,
        CASE WHEN bool_or(1 + return_pct <= 0) THEN 0.0
             ELSE exp(sum(ln(CASE WHEN 1 + return_pct > 0 THEN 1 + return_pct END)) / count(*)) - 1 END AS gmean_trade,
        coalesce(sum(return_pct) FILTER (WHERE return_pct > 0), 0) AS gross_win_pct,
        abs(coalesce(sum(return_pct) FILTER (WHERE return_pct < 0), 0)) AS gross_loss_pct,
        avg(return_pct) AS mean_return,
        avg(pnl) AS mean_pnl,
        stddev_samp(pnl) AS std_pnl,
        avg(pnl) FILTER (WHERE pnl > 0) AS mean_win,
        avg(pnl) FILTER (WHERE pnl < 0) AS mean_loss,
        max(epoch_us(exit_ts) - epoch_us(entry_ts)) AS max_trade_us,
        sum(epoch_us(exit_ts) - epoch_us(entry_ts))::HUGEINT AS sum_trade_us
    FROM _bt_trades
    WHERE NOT is_open
    GROUP BY series_id
),
base AS (
    SELECT
        s.series_id, s.n_bars, s.annual_periods, s.resolution_us, s.close_base,
        e.* EXCLUDE (series_id), d.* EXCLUDE (series_id),
        r.* EXCLUDE (series_id), t.* EXCLUDE (series_id),
        coalesce(t.n_trades, 0) AS trades,
        pow(1 + r.gmean, s.annual_periods) - 1 AS ann_return,
        e.end_us - e.start_us AS duration_us,
        (e.equity_final - e.equity_first) / e.equity_first * 100 AS return_pct,
        (e.close_last - s.close_base) / s.close_base * 100 AS buy_hold_pct,
        CASE WHEN s.n_bars > 2 THEN e.covariance / e.market_variance END AS beta_value
    FROM _bt_series s
    JOIN _bt_equity_agg e USING (series_id)
    LEFT JOIN episodes d USING (series_id)
    LEFT JOIN _bt_period_agg r USING (series_id)
    LEFT JOIN closed t USING (series_id)
),
stats AS (
    SELECT
        series_id,
        start_ts AS "start",
        end_ts AS "end",
        duration_us AS duration,
        coalesce(bars_held, 0) / n_bars * 100 AS exposure_time_pct,
        equity_final,
        equity_peak,
        coalesce(commissions, 0.0) AS commissions,
        return_pct,
        buy_hold_pct AS buy_hold_return_pct,
        ann_return * 100 AS return_ann_pct,
        sqrt(pow(variance + pow(1 + gmean, 2), annual_periods) - pow(1 + gmean, 2 * annual_periods)) * 100
            AS volatility_ann_pct,
        CASE WHEN duration_us > 0 THEN
            (pow(equity_final / equity_first, 1 / ((duration_us // 86400000000
                + (duration_us % 86400000000) // 1000000 / 86400) / 365.25)) - 1) * 100
        END AS cagr_pct,
        ann_return AS ann_return_fraction,
        annual_periods,
        downside,
        max_drawdown,
        return_pct - beta_value * buy_hold_pct AS alpha_pct,
        beta_value AS beta,
        -max_drawdown * 100 AS max_drawdown_pct,
        -(CASE WHEN n_episodes > 0 THEN avg_peak_drawdown ELSE mean_nonzero_drawdown END) * 100 AS avg_drawdown_pct,
        (max_duration_us + resolution_us - 1) // resolution_us * resolution_us AS max_drawdown_duration,
        ((sum_duration_us + n_episodes * resolution_us - 1) // (n_episodes * resolution_us)
            * resolution_us)::BIGINT AS avg_drawdown_duration,
        trades AS n_trades,
        win_rate * 100 AS win_rate_pct,
        best * 100 AS best_trade_pct,
        worst * 100 AS worst_trade_pct,
        gmean_trade * 100 AS avg_trade_pct,
        (max_trade_us + resolution_us - 1) // resolution_us * resolution_us AS max_trade_duration,
        ((sum_trade_us + n_trades * resolution_us - 1) // (n_trades * resolution_us)
            * resolution_us)::BIGINT AS avg_trade_duration,
        gross_win_pct / nullif(gross_loss_pct, 0) AS profit_factor,
        mean_return * 100 AS expectancy_pct,
        sqrt(n_trades) * mean_pnl / nullif(std_pnl, 0) AS sqn,
        win_rate - (1 - win_rate) / (mean_win / -mean_loss) AS kelly_criterion
    FROM base
),
result AS (
SELECT
    series_id, "start", "end", duration, exposure_time_pct, equity_final, equity_peak, commissions,
    return_pct, buy_hold_return_pct, return_ann_pct, volatility_ann_pct, cagr_pct,
    return_ann_pct / nullif(volatility_ann_pct, 0) AS sharpe_ratio,
    CASE WHEN downside * sqrt(annual_periods) = 0
         THEN CASE WHEN ann_return_fraction > 0 THEN 'inf'::DOUBLE
                   WHEN ann_return_fraction < 0 THEN '-inf'::DOUBLE END
         ELSE ann_return_fraction / (downside * sqrt(annual_periods)) END AS sortino_ratio,
    ann_return_fraction / nullif(max_drawdown, 0) AS calmar_ratio,
    alpha_pct, beta, max_drawdown_pct, avg_drawdown_pct, max_drawdown_duration, avg_drawdown_duration,
    n_trades, win_rate_pct, best_trade_pct, worst_trade_pct, avg_trade_pct, max_trade_duration,
    avg_trade_duration, profit_factor, expectancy_pct, sqn, kelly_criterion
FROM stats
)
SELECT s.strategy, s.symbol, {columns}, s.n_bars, s.open_trade, s.params_json,
       {version} AS data_version
FROM result JOIN _bt_series s USING (series_id) JOIN _bt_version_parts v USING (symbol)
ORDER BY s.strategy, s.symbol
"""

#: Our column -> backtesting.py 0.6.6 ``compute_stats`` key (same definition).
STAT_COLUMNS: dict[str, str] = {
    "start": "Start",
    "end": "End",
    "duration": "Duration",
    "exposure_time_pct": "Exposure Time [%]",
    "equity_final": "Equity Final [$]",
    "equity_peak": "Equity Peak [$]",
    "commissions": "Commissions [$]",
    "return_pct": "Return [%]",
    "buy_hold_return_pct": "Buy & Hold Return [%]",
    "return_ann_pct": "Return (Ann.) [%]",
    "volatility_ann_pct": "Volatility (Ann.) [%]",
    "cagr_pct": "CAGR [%]",
    "sharpe_ratio": "Sharpe Ratio",
    "sortino_ratio": "Sortino Ratio",
    "calmar_ratio": "Calmar Ratio",
    "alpha_pct": "Alpha [%]",
    "beta": "Beta",
    "max_drawdown_pct": "Max. Drawdown [%]",
    "avg_drawdown_pct": "Avg. Drawdown [%]",
    "max_drawdown_duration": "Max. Drawdown Duration",
    "avg_drawdown_duration": "Avg. Drawdown Duration",
    "n_trades": "# Trades",
    "win_rate_pct": "Win Rate [%]",
    "best_trade_pct": "Best Trade [%]",
    "worst_trade_pct": "Worst Trade [%]",
    "avg_trade_pct": "Avg. Trade [%]",
    "max_trade_duration": "Max. Trade Duration",
    "avg_trade_duration": "Avg. Trade Duration",
    "profit_factor": "Profit Factor",
    "expectancy_pct": "Expectancy [%]",
    "sqn": "SQN",
    "kelly_criterion": "Kelly Criterion",
}

#: Stat columns that are durations, in microseconds here (INTERVALs once stored).
DURATION_STATS = ("duration", "max_drawdown_duration", "avg_drawdown_duration", "max_trade_duration",
                  "avg_trade_duration")
#: Stat columns of type DOUBLE (NaN is turned into NULL for these).
FLOAT_STATS = tuple(c for c in STAT_COLUMNS if c not in {"start", "end", "n_trades", *DURATION_STATS})

# One row per series (strategy, symbol, the statistics, n_bars, open_trade, params_json, data_version), ordered
# by strategy and symbol, from the session's registered inputs (see the module docstring).
PERFORMANCE = _PERFORMANCE.format(version=VERSION_OF_PARTS, columns=", ".join(
    f"nullif(result.{c}, 'nan'::DOUBLE) AS {c}" if c in FLOAT_STATS else f'result."{c}"' for c in STAT_COLUMNS))
