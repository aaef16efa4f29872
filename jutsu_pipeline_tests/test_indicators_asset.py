"""The indicators asset: per-symbol partitions fed by the bars asset, in DuckDB, staleness per symbol."""

from __future__ import annotations

import dagster as dg
import numpy as np
import talib

from jutsu_pipeline.config import load_config
from jutsu_pipeline.definitions import build_definitions
from jutsu_pipeline.storage.versions import CONTENT_HASH, combined_version
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, query, write_config
from jutsu_pipeline_tests.helpers import run_bars, run_indicators

INDICATORS_KEY = dg.AssetKey(["us_stocks", "indicators_1d"])


def test_indicators_asset_writes_talib_equal_values_for_the_run_symbols(sample_config, instance) -> None:
    assert run_bars(sample_config, instance, start="2000-03-01|AAPL", end="2013-03-01|FB").success
    result = run_indicators(sample_config, instance, ["AAPL", "FB"])
    assert result.success
    assert instance.get_materialized_partitions(INDICATORS_KEY) == {"AAPL", "FB"}
    closes, sma, rsi = query(sample_config, """
        SELECT list(close ORDER BY ts), list(sma_20 ORDER BY ts), list(rsi_14 ORDER BY ts)
        FROM bars_with_indicators WHERE symbol = 'AAPL'""")[0]
    close = np.array(closes, dtype=float)
    expected_sma, expected_rsi = talib.SMA(close, 20), talib.RSI(close, 14)
    assert sma[:19] == [None] * 19 and rsi[:14] == [None] * 14
    assert np.allclose(np.array(sma[19:], dtype=float), expected_sma[19:], rtol=0, atol=1e-8)
    assert np.allclose(np.array(rsi[14:], dtype=float), expected_rsi[14:], rtol=0, atol=1e-8)
    # Read from bars_adjusted: AAPL's 2:1 split of 2005-02-28 is no cliff in its SMA input.
    assert query(sample_config, "SELECT count(DISTINCT symbol) FROM indicators") == [(2,)]
    # The data version is the bars' (recorded with the rows, not read again) and the columns'.
    materialization = result.get_asset_materialization_events()[0].materialization
    bars = dict(query(sample_config, f"SELECT symbol, {CONTENT_HASH} FROM bars_adjusted GROUP BY symbol"))
    assert materialization.tags["dagster/data_version"] == combined_version(bars, materialization.metadata["columns"].text)


def test_changing_one_month_of_one_symbol_makes_only_that_symbol_stale(tmp_path, instance) -> None:
    config = load_config(write_config(tmp_path, {"us_stocks": {**SAMPLE_MARKET, "start": "2011-01-01"}}))
    defs = build_definitions(config)
    assert _sync(defs, instance, "2011-01-01|AAPL", "2013-03-01|MSFT").success
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor  # the first tick is a baseline
    assert run_indicators(config, instance, ["AAPL", "FB", "GOOG", "IBM", "MSFT"]).success
    settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    assert settled.get_requested_partitions(INDICATORS_KEY) == set()
    assert _sync(defs, instance, "2012-06-01|IBM").success
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    assert after.get_requested_partitions(INDICATORS_KEY) == {"IBM"}


def _sync(defs: dg.Definitions, instance: dg.DagsterInstance, start: str, end: str | None = None):  # noqa: ANN202
    """Sync bars through the job, so their blocking checks run (downstream automation waits for them)."""
    tags = {RANGE_START_TAG: start, RANGE_END_TAG: end or start}
    return defs.resolve_job_def("sync_us_stocks_bars_1d").execute_in_process(
        instance=instance, tags=tags, raise_on_error=False)
