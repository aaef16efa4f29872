"""On DuckLake no step takes a writer or provider pool; on a DuckDB file they all do."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from jutsu_pipeline.config import load_config
from jutsu_pipeline.definitions import build_definitions
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, write_config
from jutsu_pipeline_tests.lake import file_lake

STRATEGY = {"name": "sma_10_30", "type": "sma_cross", "params": {"fast": 10, "slow": 30}}
BINANCE = {"provider": "binance", "calendar": "24/7", "timeframes": ["1d"], "start": "2024-01-01",
           "symbols": ["BTCUSDT"]}


def _pools(storage: dict | None, tmp_path: Path) -> dict[str, set[str | None]]:
    config = load_config(write_config(tmp_path, {"us_stocks": {**SAMPLE_MARKET, "strategies": [STRATEGY]},
                                                 "crypto": BINANCE}, storage=storage))
    defs = build_definitions(config)
    graph = defs.resolve_asset_graph()
    pools: dict[str, set[str | None]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        pools.setdefault(key.path[-1].split("_")[0], set()).add(node.pools and next(iter(node.pools)) or None)
    for check in defs.asset_checks or []:
        pools.setdefault("check", set()).update(check.op.pool and {check.op.pool} or {None})
    return pools


def test_no_pools_on_ducklake_and_writer_pools_on_a_file(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    (tmp_path / "file").mkdir()
    lake = _pools(file_lake(tmp_path / "lake"), tmp_path / "lake")
    assert set().union(*lake.values()) == {None}
    file = _pools(None, tmp_path / "file")
    assert file["bars"] == {"duckdb_writer", "provider_binance"}
    assert file["indicators"] == file["backtest"] == file["check"] == {"duckdb_writer"}
    dg.Definitions.validate_loadable(build_definitions(load_config(tmp_path / "lake" / "jutsu.yaml")))
