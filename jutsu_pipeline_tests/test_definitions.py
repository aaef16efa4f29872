"""Definitions load, and the documented `dagster asset materialize` commands work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from jutsu_pipeline.config import load_config
from jutsu_pipeline.definitions import build_definitions
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, query, write_config

REPO = Path(__file__).parents[1]


def test_definitions_are_loadable() -> None:
    from jutsu_pipeline.definitions import defs

    dg.Definitions.validate_loadable(defs)
    asset = defs.resolve_assets_def(dg.AssetKey(["us_stocks", "bars_1d"]))
    assert asset.group_names_by_key[asset.key] == "us_stocks"
    assert defs.resolve_job_def("sync_us_stocks_bars_1d") is not None


def test_dagster_conventions_on_every_table_asset() -> None:
    """Table names, code references and a calendar-derived freshness window on the bars."""
    from jutsu_pipeline.definitions import defs

    tables = {"bars_1d": "bars", "indicators_1d": "indicators", "backtest_1d": "backtest_performance",
              "backtest_leaderboard": "backtest_leaderboard"}
    specs = {spec.key.path[-1]: spec for asset in defs.assets for spec in asset.specs}
    tables["corporate_actions"] = "corporate_actions"
    assert {name for name, spec in specs.items() if "duckdb" in spec.kinds} == set(tables)  # none left out
    for name, table in tables.items():
        assert specs[name].metadata["dagster/table_name"] == table
        assert specs[name].metadata["dagster/code_references"].code_references, name
    policy = specs["bars_1d"].freshness_policy  # XNYS: warn after a weekend, fail after the longest closure
    assert policy.warn_window.to_timedelta().days == 3 and policy.fail_window.to_timedelta().days >= 4


def test_several_markets_and_timeframes(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {
        "us_stocks": SAMPLE_MARKET,
        "crypto": {**SAMPLE_MARKET, "calendar": "24/7", "timeframes": ["1h", "1d"], "symbols": ["BTC/USDT"],
                   "start": "2024-01-01", "end": "2024-03-31"},
    }))
    defs = build_definitions(config)
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert keys == {f"{market}/{kind}_{tf}" for market, tf in (("us_stocks", "1d"), ("crypto", "1h"), ("crypto", "1d"))
                    for kind in ("bars", "indicators")} | {f"{market}/{kind}" for market in ("us_stocks", "crypto")
                                                         for kind in ("corporate_actions", "report")}


def _materialize(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(home), "JUTSU_CONFIG": str(tmp_path / "jutsu.yaml")}
    command = [Path(sys.executable).with_name("dagster"), "asset", "materialize", "-m", "jutsu_pipeline.definitions",
               "--select", "us_stocks/bars_1d", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_partition_range_and_single_partition(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {"us_stocks": SAMPLE_MARKET}))
    ranged = _materialize(tmp_path, "--partition-range", "2012-01-01|AAPL...2012-03-01|MSFT")
    assert ranged.returncode == 0, ranged.stderr[-2000:]
    assert query(config, "SELECT count(DISTINCT symbol), min(ts)::DATE::VARCHAR, max(ts)::DATE::VARCHAR FROM bars") == [
        (4, "2012-01-03", "2012-03-30")]  # FB's first quarter of 2012 is valid-empty
    single = _materialize(tmp_path, "--partition", "2013-03-01|FB")
    assert single.returncode == 0, single.stderr[-2000:]
    assert query(config, "SELECT count(*) FROM bars WHERE symbol = 'FB'") == [(1,)]
