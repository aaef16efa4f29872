"""docs/extending.md, followed literally: its toy provider, check, indicator and strategy (jutsu_pipeline_tests/toy) work."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest
import talib

from jutsu_pipeline.assets.bars.checks import build_bars_checks, check_result
from jutsu_pipeline.backtest import backtest_bars
from jutsu_pipeline.config import ConfigError, JutsuConfig, load_config
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.providers import registry
from jutsu_pipeline.quality import checks
from jutsu_pipeline.quality.checks import CheckInputs, checks_for
from jutsu_pipeline.timeframes import Timeframe
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, query, write_config
from jutsu_pipeline_tests.helpers import run_backtest, run_bars, run_indicators

ROOT = Path(__file__).parents[1]
TOY = Path(__file__).parent / "toy"
WALK = {"provider": "toy_walk", "calendar": "24/7", "timeframes": ["1d"], "start": "2020-01-01",
        "end": "2020-03-01", "symbols": ["AAA", "BBB"]}


@pytest.fixture
def toys() -> Iterator[None]:
    """Register the toy provider and check (importing their modules is the registration), then remove them."""
    for module in ("provider", "check"):
        importlib.reload(importlib.import_module(f"jutsu_pipeline_tests.toy.{module}"))
    try:
        yield
    finally:
        registry.unregister("toy_walk")
        checks.unregister("price_cap")


def test_the_guide_shows_the_toy_modules_verbatim() -> None:
    guide = (ROOT / "docs" / "extending.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, flags=re.S)
    for name in ("provider.py", "check.py"):
        assert (TOY / name).read_text() in blocks, f"docs/extending.md no longer shows toy/{name}"


def _config(tmp_path: Path, **options: object) -> JutsuConfig:
    return load_config(write_config(tmp_path, {"walk": {**WALK, "options": options}, "us_stocks": SAMPLE_MARKET}))


def test_toy_provider_options_are_typed(toys, tmp_path: Path) -> None:
    assert _config(tmp_path, start_price=50).markets["walk"].options.start_price == 50.0
    with pytest.raises(ConfigError, match=r"markets\.walk\.options\.start_prise: unknown key \(did you mean 'start_price'\?\)"):
        _config(tmp_path, start_prise=50)


@pytest.mark.parametrize(("start_price", "passed"), [(100.0, True), (5000.0, False)])
def test_toy_provider_syncs_and_toy_check_judges_it(toys, tmp_path: Path, start_price: float, passed: bool) -> None:
    config = _config(tmp_path, start_price=start_price)
    names = {market: [c.name for c in checks_for(config.markets[market])] for market in ("walk", "us_stocks")}
    assert names["walk"][-1] == "price_cap" and "price_cap" not in names["us_stocks"]
    instance = dg.DagsterInstance.ephemeral()
    try:
        result = run_bars(config, instance, start="2020-01-01|AAA", end="2020-01-01|BBB", market="walk")
        assert result.success
    finally:
        instance.dispose()
    p = BarsPartitioning("walk", Timeframe.D1, config.markets["walk"])
    assert "price_cap" in {key.name for check in build_bars_checks(config, p) for key in check.check_keys}
    with duckdb.connect(str(config.database), read_only=True) as con:
        report = checks.get("price_cap").evaluate(CheckInputs(con, p))
    assert report.rows_checked == 2 * 61 and report.passed is passed  # 1 Jan to 1 Mar 2020 (end inclusive), two symbols
    outcome = check_result(report, config.markets["walk"].quality.profile)
    assert outcome.passed is passed and outcome.severity == dg.AssetCheckSeverity.WARN  # suspicious: a warning
    assert not checks.get("price_cap").is_blocking(config.markets["walk"].quality.profile)


GUIDE = (ROOT / "docs" / "extending.md").read_text()
PLUGINS = next(b for b in re.findall(r"```yaml\n(.*?)```", GUIDE, flags=re.S) if b.startswith("plugins:"))
PLUGIN_CONFIG = "duckdb_path: jutsu.duckdb\n" + PLUGINS.replace("my_package.", "jutsu_pipeline_tests.toy.")


def test_the_guide_shows_the_toy_indicator_and_strategy_verbatim() -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE, flags=re.S)
    for name in ("indicator.py", "strategy.py"):
        assert (TOY / name).read_text() in blocks, f"docs/extending.md no longer shows toy/{name}"


def test_toy_indicator_and_strategy_end_to_end(tmp_path: Path, instance) -> None:
    (tmp_path / "jutsu.yaml").write_text(PLUGIN_CONFIG)
    config = load_config(tmp_path / "jutsu.yaml")
    assert run_bars(config, instance, start="2012-01-01|GOOG", end="2013-01-01|IBM").success
    assert run_indicators(config, instance, ["GOOG", "IBM"]).success
    rows = query(config, "SELECT high, low, close, willr_10, willr_14 FROM bars_with_indicators "
                         "WHERE symbol = 'GOOG' ORDER BY ts")
    high, low, close, w10, w14 = (np.array(col, dtype=float) for col in zip(*rows))
    np.testing.assert_array_equal(w10, talib.WILLR(high, low, close, 10))  # NULL (NaN) where TA-Lib's NaN is
    np.testing.assert_array_equal(w14, talib.WILLR(high, low, close, 14))
    assert run_backtest(config, instance, ["GOOG", "IBM"]).success
    stored = query(config, "SELECT entry_ts FROM backtest_trades WHERE strategy = 'willr_14' ORDER BY symbol, entry_ts")
    with duckdb.connect(str(config.database), read_only=True) as con:
        bars = pl.from_arrow(con.sql("SELECT symbol, ts, open, high, low, close, volume FROM bars_adjusted "
                                     "ORDER BY symbol, ts").to_arrow_table())
    expected = backtest_bars(bars, config.markets["us_stocks"].strategies).trades.sort("symbol", "entry_ts")
    assert [r[0] for r in stored] == expected["entry_ts"].to_list() and stored


def test_a_typo_in_the_toy_strategy_params_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "jutsu.yaml").write_text(PLUGIN_CONFIG.replace("params: {period: 14", "params: {periodd: 14"))
    with pytest.raises(ConfigError, match="params.periodd"):
        load_config(tmp_path / "jutsu.yaml")
