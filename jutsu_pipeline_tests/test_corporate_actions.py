"""Corporate actions: stored, inferred from adj_close, fetched from providers, applied at read time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest

from jutsu_fake_exchange import FakeExchange
from jutsu_fake_exchange.server import FakeAction
from jutsu_fake_exchange.testing import provider_options
from jutsu_pipeline.assets.corporate_actions.assets import build_corporate_actions_asset
from jutsu_pipeline.config import JutsuConfig, load_config
from jutsu_pipeline.definitions import build_definitions
from jutsu_pipeline.providers import build_provider
from jutsu_pipeline.providers.sample import SAMPLE_DIR
from jutsu_pipeline.resources import JutsuDuckDBResource, MarketDataResource
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, query, write_config
from jutsu_pipeline_tests.helpers import run_bars, run_indicators, step_error

UTC = dt.timezone.utc
SAMPLE = SAMPLE_DIR
INDICATORS_KEY = dg.AssetKey(["us", "indicators_1d"])


def _materialize_actions(config: JutsuConfig, instance: dg.DagsterInstance, market: str,
                         symbols: list[str]) -> dg.ExecuteInProcessResult:
    asset = build_corporate_actions_asset(config, market)
    resources = {"duckdb": JutsuDuckDBResource(database=str(config.database), lock_timeout_seconds=5),
                 "market_data": MarketDataResource()}
    tags = {RANGE_START_TAG: symbols[0], RANGE_END_TAG: symbols[-1]}
    return dg.materialize([asset], instance=instance, resources=resources, tags=tags, raise_on_error=False,
                          selection=[asset.key])


def test_aapl_adjusted_from_stored_actions_equals_the_sample_s_adjusted_close(sample_config, instance) -> None:
    assert run_bars(sample_config, instance, start="2000-03-01|AAPL", end="2013-03-01|AAPL").success
    actions = query(sample_config, "SELECT ex_date::VARCHAR, kind, ratio, round(cash_amount, 4), source "
                                   "FROM corporate_actions_current WHERE symbol = 'AAPL' ORDER BY ex_date")
    assert [row[:3] for row in actions] == [
        ("2000-06-21", "split", 2.0), ("2005-02-28", "split", 2.0), ("2012-08-09", "dividend", None),
        ("2012-11-07", "dividend", None), ("2013-02-07", "dividend", None)]
    assert {row[4] for row in actions} == {"inferred:sample"} and all(row[3] > 2.5 for row in actions[2:])
    ours = pl.from_arrow(duckdb.connect(str(sample_config.database), read_only=True).sql(
        "SELECT ts::DATE AS date, a.close, a.volume, s.close AS split_close, b.close AS raw_close, b.volume AS raw_volume "
        "FROM bars_adjusted AS a JOIN bars_split_adjusted AS s USING (symbol, timeframe, ts) "
        "JOIN bars AS b USING (symbol, timeframe, ts) WHERE symbol = 'AAPL' ORDER BY ts").to_arrow_table())
    provider = pl.read_parquet(SAMPLE / "AAPL.parquet").sort("date")
    assert ours["date"].to_list() == provider["date"].to_list()
    # Back-adjustment leaves the last bar raw; the sample's provider adjusted after later actions (AAPL's
    # 7:1 split of 2014 and dividends after 2013-03-01), so its whole series carries one constant factor.
    base = provider["adj_close"][-1] / provider["close"][-1]
    np.testing.assert_allclose(ours["close"].to_numpy() * base, provider["adj_close"].to_numpy(), rtol=1e-6, atol=0)
    assert ours["close"][-1] == ours["raw_close"][-1]
    first = ours.row(0, named=True)
    assert first["split_close"] == pytest.approx(first["raw_close"] / 4, rel=1e-12)
    assert first["volume"] == pytest.approx(first["raw_volume"] * 4, rel=1e-12)  # dividends leave volume alone


def _alpaca_config(tmp_path: Path, fx: FakeExchange) -> JutsuConfig:
    # A generous read timeout: the busy test machine must not turn a slow fake response into a failure.
    market = {"provider": "alpaca", "calendar": "XNYS", "timeframes": ["1d"], "start": "2012-01-03",
              "end": "2012-08-31", "symbols": ["AAPL", "MSFT"],
              "options": provider_options(fx, "alpaca", feed="iex", http={"read_timeout": 60.0, "deadline": 120.0})}
    return load_config(write_config(tmp_path, {"us": market}))


@pytest.fixture
def fx(fx: FakeExchange) -> FakeExchange:
    """conftest's exchange at the start of 2013 (after the synced histories)."""
    fx.clock.set(dt.datetime(2013, 1, 2, tzinfo=UTC))
    return fx


def test_a_new_split_re_adjusts_history_without_a_fetch_and_makes_indicators_stale(fx, tmp_path, instance) -> None:
    config = _alpaca_config(tmp_path, fx)
    defs = build_definitions(config)
    tags = {RANGE_START_TAG: "2012-01-01|AAPL", RANGE_END_TAG: "2012-01-01|MSFT"}  # the year 2012 (default grain)
    assert defs.resolve_job_def("sync_us_bars_1d").execute_in_process(instance=instance, tags=tags).success
    fx.corporate_actions.append(FakeAction("AAPL", dt.date(2012, 3, 1), "dividend", cash_amount=1.5))
    assert _materialize_actions(config, instance, "us", ["AAPL", "MSFT"]).success
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
    assert run_indicators(config, instance, ["AAPL", "MSFT"], market="us").success
    settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    assert settled.get_requested_partitions(INDICATORS_KEY) == set()
    before = query(config, "SELECT ts, close FROM bars_adjusted WHERE symbol = 'AAPL' ORDER BY ts")
    known_until = query(config, "SELECT max(ingested_at) FROM corporate_actions")[0][0]

    fx.log.clear()
    fx.corporate_actions.append(FakeAction("AAPL", dt.date(2012, 6, 1), "split", ratio=2.0))
    result = _materialize_actions(config, instance, "us", ["AAPL"])
    assert result.success
    assert {r.route for r in fx.requests()} == {"alpaca_actions"}  # the actions endpoint only: no bars refetch
    after = query(config, "SELECT ts, close FROM bars_adjusted WHERE symbol = 'AAPL' ORDER BY ts")
    raw = dict(query(config, "SELECT ts, close FROM bars WHERE symbol = 'AAPL'"))
    split = dt.datetime(2012, 6, 1, tzinfo=UTC)
    assert [ts for ts, _ in after] == [ts for ts, _ in before]
    for (ts, old), (_, new) in zip(before, after, strict=True):
        assert new == pytest.approx(old / 2 if ts < split else old, rel=1e-12)
    assert after[-1][1] == raw[after[-1][0]]
    after_run = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    assert after_run.get_requested_partitions(INDICATORS_KEY) == {"AAPL"}
    # Point in time: what was known before the split arrived.
    assert query(config, "SELECT count(*) FROM corporate_actions_as_of($1) WHERE kind = 'split'", [known_until]) == [(0,)]
    then = query(config, "SELECT ts, close FROM bars_adjusted_as_of($1, true) WHERE symbol = 'AAPL' ORDER BY ts",
                 [known_until])
    assert then == before
    # Re-publishing the same actions records nothing new (ingested_at stays when the action was learnt).
    rows = query(config, "SELECT count(*) FROM corporate_actions")
    assert _materialize_actions(config, instance, "us", ["AAPL"]).success
    assert query(config, "SELECT count(*) FROM corporate_actions") == rows


def test_withdrawn_action_is_a_new_row_and_history_keeps_it(fx, tmp_path, instance) -> None:
    config = _alpaca_config(tmp_path, fx)
    assert run_bars(config, instance, start="2012-01-01|AAPL", end="2012-01-01|AAPL", market="us").success
    fx.corporate_actions.append(FakeAction("AAPL", dt.date(2012, 6, 1), "split", ratio=2.0))
    assert _materialize_actions(config, instance, "us", ["AAPL"]).success
    learnt = query(config, "SELECT max(ingested_at) FROM corporate_actions")[0][0]
    fx.corporate_actions.clear()
    assert _materialize_actions(config, instance, "us", ["AAPL"]).success
    assert query(config, "SELECT count(*) FROM corporate_actions_current") == [(0,)]
    assert query(config, "SELECT ratio FROM corporate_actions_as_of($1)", [learnt]) == [(2.0,)]
    assert query(config, "SELECT count(*), count(ratio) FROM corporate_actions") == [(2, 1)]


def test_yahoo_events_become_actions(fx) -> None:
    fx.corporate_actions += [FakeAction("MSFT", dt.date(2024, 2, 14), "dividend", cash_amount=0.75),
                             FakeAction("MSFT", dt.date(2024, 6, 10), "split", ratio=0.25)]
    provider = build_provider("yahoo", provider_options(fx, "yahoo"), "America/New_York", Path)
    try:
        frame = provider.corporate_actions("MSFT", dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    finally:
        provider.close()
    assert frame.select("ex_date", "kind", "ratio", "cash_amount").rows() == [
        (dt.date(2024, 2, 14), "dividend", None, 0.75), (dt.date(2024, 6, 10), "split", 0.25, None)]


def _files_market(folder: Path) -> JutsuConfig:
    bars = pl.read_parquet(SAMPLE / "AAPL.parquet").filter(pl.col("date").dt.year() == 2005).drop("adj_close")
    bars.write_csv(folder / "AAPL.csv")
    market = {**SAMPLE_MARKET, "provider": "files", "options": {"path": str(folder)}, "start": "2005-01-03",
              "end": "2005-12-30", "symbols": ["AAPL"]}
    return load_config(write_config(folder, {"us_stocks": market}))


def test_a_users_actions_file_adjusts_the_bars_and_explains_the_jump(tmp_path, instance) -> None:
    config = _files_market(tmp_path)
    assert run_bars(config, instance, start="2005-01-01|AAPL", end="2005-12-01|AAPL").success
    assert query(config, "SELECT count(*) FROM corporate_actions") == [(0,)]  # no adj_close: nothing inferred
    (tmp_path / "AAPL.actions.csv").write_text("ex_date,kind,ratio,cash_amount,currency\n2005-02-28,split,2,,\n")
    assert _materialize_actions(config, instance, "us_stocks", ["AAPL"]).success
    assert query(config, "SELECT ex_date::VARCHAR, kind, ratio, source FROM corporate_actions_current") == [
        ("2005-02-28", "split", 2.0, "files")]
    jump = query(config, "SELECT close FROM bars_adjusted WHERE ts::DATE IN ('2005-02-25', '2005-02-28') ORDER BY ts")
    assert abs(jump[1][0] / jump[0][0] - 1) < 0.05  # raw prices halve; adjusted ones do not
    (tmp_path / "AAPL.actions.csv").write_text("ex_date,kind,ratio\n2005-02-28,bonus,2\n")
    result = _materialize_actions(config, instance, "us_stocks", ["AAPL"])
    assert not result.success
    message = step_error(result)
    assert "AAPL.actions.csv line 2" in message and "'bonus'" in message
