"""HTTP providers through the real bars asset (Dagster in-process, DuckDB files) against the fake exchange."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg

from jutsu_fake_exchange import TRANSIENT_MIX, FakeExchange, Fault
from jutsu_fake_exchange.testing import provider_options
from jutsu_pipeline.config import JutsuConfig, load_config
from jutsu_pipeline_tests.conftest import query, write_config
from jutsu_pipeline_tests.helpers import run_bars, step_error

UTC = dt.timezone.utc
BARS_KEY = dg.AssetKey(["crypto", "bars_1d"])
SNAPSHOT = "SELECT symbol, ts, open, high, low, close, volume, adj_close FROM bars ORDER BY ALL"


def crypto_config(folder: Path, fx: FakeExchange, **http: float) -> JutsuConfig:
    folder.mkdir(parents=True, exist_ok=True)
    market = {"provider": "binance", "calendar": "24/7", "timeframes": ["1d"], "start": "2024-01-01",
              "end": "2024-04-01", "symbols": ["BTCUSDT", "ETHUSDT"], "partition_grain": {"1d": "month"},
              "options": provider_options(fx, "binance", http={"max_attempts": 3, **http}, page_limit=10)}
    return load_config(write_config(folder, {"crypto": market}))


def run(config: JutsuConfig, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return run_bars(config, instance, start="2024-01-01|BTCUSDT", end="2024-03-01|ETHUSDT", market="crypto")


def test_persistent_5xx_stores_nothing_for_that_symbol_and_others_land(fx: FakeExchange, tmp_path: Path,
                                                                      instance: dg.DagsterInstance) -> None:
    config = crypto_config(tmp_path, fx, breaker_threshold=50)
    fx.faults.always("binance", Fault.server_error(503), when={"symbol": "BTCUSDT"})
    result = run(config, instance)
    assert not result.success
    assert "BTCUSDT" in step_error(result) and "HTTP 503" in step_error(result)
    assert query(config, "SELECT symbol, count(*) FROM bars GROUP BY symbol") == [("ETHUSDT", 91)]
    materialized = instance.get_materialized_partitions(BARS_KEY)
    assert not any("BTCUSDT" in key for key in materialized)


def test_bars_table_with_20_percent_faults_equals_the_fault_free_one(fx: FakeExchange, tmp_path: Path,
                                                                     instance: dg.DagsterInstance) -> None:
    clean = crypto_config(tmp_path / "clean", fx)
    assert run(clean, instance).success
    fx.faults.random("binance", 0.2, TRANSIENT_MIX, seed=5)
    faulty = crypto_config(tmp_path / "faulty", fx, max_attempts=8, breaker_threshold=50)
    with dg.DagsterInstance.ephemeral() as other:
        assert run(faulty, other).success
    assert sum(bool(r.faults) for r in fx.requests("binance")) >= 3
    rows = query(clean, SNAPSHOT)
    assert len(rows) == 2 * 91 and query(faulty, SNAPSHOT) == rows
