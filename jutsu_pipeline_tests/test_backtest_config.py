"""Strategy configuration, the simulation's sizing edge cases, charts and the leaderboard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from pydantic import ValidationError

from jutsu_pipeline.backtest import StrategyConfig, backtest_bars
from jutsu_pipeline.backtest.report import leaderboard_markdown, rank_by_sharpe, write_equity_chart

CONFIG = """
markets:
  us_stocks:
    strategies:
      - {name: sma_10_30, type: sma_cross, params: {fast: 10, slow: 30}, sizing: all_in, fractional: false,
         commission_bps: 0, initial_cash: 10000}
      - {name: rsi, type: rsi_reversion, params: {period: 14, lower: 30, upper: 70}}
      - {name: bb, type: bollinger_reversion, params: {period: 20, nbdev: 2}, fractional: true, commission_bps: 5}
"""


def test_issue_config_shape_parses() -> None:
    raw = yaml.safe_load(CONFIG)["markets"]["us_stocks"]["strategies"]
    parsed = [StrategyConfig.model_validate(item) for item in raw]
    assert parsed[0].typed_params.fast == 10 and parsed[0].initial_cash == 10_000 and parsed[0].unit == 1.0
    assert parsed[1].params == {"period": 14, "lower": 30.0, "upper": 70.0}
    assert parsed[2].commission_rate == 0.0005 and parsed[2].unit == 1e-8


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        ({"name": "x", "type": "sma_cross", "params": {"fast": 10}}, "params.slow"),
        ({"name": "x", "type": "sma_cross", "params": {"fast": 30, "slow": 10}}, "fast (30) must be < slow (10)"),
        ({"name": "x", "type": "sma_cross", "params": {"fast": 10, "slow": 30, "slowest": 50}}, "params.slowest"),
        ({"name": "x", "type": "rsi_reversion", "params": {"lower": 80, "upper": 70}}, "lower (80.0) must be < upper"),
        ({"name": "x", "type": "macd", "params": {}}, "type"),
        ({"name": "x", "type": "sma_cross", "params": {"fast": 1, "slow": 2}, "commission_bps": -1}, "commission_bps"),
        ({"name": "x", "type": "sma_cross", "params": {"fast": 1, "slow": 2}, "sizing": "half"}, "sizing"),
        ({"name": "x", "type": "sma_cross", "params": {"fast": 1, "slow": 2}, "cash": 5}, "cash"),
        ({"name": "x y", "type": "sma_cross", "params": {"fast": 1, "slow": 2}}, "name"),
    ],
)
def test_validation_errors_name_the_bad_key(item: dict, needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        StrategyConfig.model_validate(item)
    assert needle in str(info.value)


def _bars(symbol: str, close: np.ndarray) -> pl.DataFrame:
    n = close.size
    return pl.DataFrame({
        "symbol": [symbol] * n,
        "ts": np.datetime64("2020-01-01", "us") + np.arange(n).astype("timedelta64[D]"),
        "open": close, "high": close, "low": close, "close": close, "volume": np.ones(n),
    }).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))


def _zigzag(periods: int, low: float, high: float) -> np.ndarray:
    leg = np.linspace(low, high, 40)
    return np.concatenate([np.r_[leg, leg[::-1]] for _ in range(periods)])


def test_unaffordable_entry_is_cancelled_then_retried() -> None:
    """A share dearer than the cash is not bought (backtesting.py cancels the order); fractional buys."""
    close = _zigzag(4, 20_000, 30_000)
    whole = StrategyConfig(name="whole", type="sma_cross", params={"fast": 3, "slow": 8})
    frac = StrategyConfig(name="frac", type="sma_cross", params={"fast": 3, "slow": 8}, fractional=True)
    res = backtest_bars(_bars("BTC", close), [whole, frac])
    perf = {r["strategy"]: r for r in res.performance.iter_rows(named=True)}
    assert perf["whole"]["n_trades"] == 0 and perf["whole"]["equity_final"] == 10_000
    assert perf["frac"]["n_trades"] > 0
    sizes = res.trades.filter(pl.col("strategy") == "frac")["size"].to_numpy()
    assert np.all(sizes < 1) and np.allclose(np.round(sizes * 1e8), sizes * 1e8)


def test_charts_and_leaderboard(tmp_path: Path) -> None:
    cfgs = [StrategyConfig(name=f"sma_{f}_{s}", type="sma_cross", params={"fast": f, "slow": s})
            for f, s in ((3, 8), (5, 20))]
    bars = pl.concat([_bars("ZIG", _zigzag(6, 90, 110)), _bars("FLAT", np.full(30, 100.0))])
    res = backtest_bars(bars, cfgs)
    paths = {(st, sy): write_equity_chart(part, strategy=st, symbol=sy, timeframe="1d", directory=tmp_path / "reports")
             for (st, sy), part in res.equity.group_by(["strategy", "symbol"])}
    assert set(paths) == {(c.name, s) for c in cfgs for s in ("FLAT", "ZIG")}
    for path in paths.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    ranked = rank_by_sharpe(res.performance)
    sharpe = ranked["sharpe_ratio"].to_list()
    known = [x for x in sharpe if x is not None]
    assert known == sorted(known, reverse=True) and sharpe[len(known):] == [None] * (len(sharpe) - len(known))
    table = leaderboard_markdown(res.performance, top=3)
    lines = table.strip().splitlines()
    assert lines[0].startswith("| Rank | Strategy | Symbol | Sharpe") and len(lines) == 2 + 3
    first = ranked.row(0, named=True)
    assert f"| 1 | {first['strategy']} | {first['symbol']} | {first['sharpe_ratio']:.2f} |" in lines[2]
