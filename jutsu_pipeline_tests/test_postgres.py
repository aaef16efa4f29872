"""The pipeline on a real Postgres instance storage (runs, events, schedules, pools) when one is configured."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml

from jutsu_pipeline.config import load_config
from jutsu_pipeline.definitions import build_definitions
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, write_config
from jutsu_pipeline_tests.test_automation import BACKTEST, INDICATORS, LEADERBOARD, STRATEGY, Automation

URL_VAR = "JUTSU_TEST_POSTGRES_URL"
TEMPLATE = Path(__file__).parents[1] / "data" / "dagster_home" / "dagster.yaml"


# The whole pipeline on a Postgres server (end-to-end): `make test-slow` and .ci/run, which start the server.
pytestmark = pytest.mark.slow


@pytest.fixture
def postgres_instance(tmp_path: Path):  # noqa: ANN201 - Iterator[dg.DagsterInstance]
    """The checked-in instance template with Postgres run/event/schedule storage at $JUTSU_TEST_POSTGRES_URL."""
    if not os.environ.get(URL_VAR):
        pytest.skip(f"{URL_VAR} is not set: no Postgres server to test against (.ci/run starts one and sets it)")
    home = tmp_path / "dagster_home"
    home.mkdir()
    settings = yaml.safe_load(TEMPLATE.read_text())
    settings["storage"] = {"postgres": {"postgres_url": {"env": URL_VAR}}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    instance = dg.DagsterInstance.from_config(str(home))  # a wrong URL or a server that is down fails here
    try:
        yield instance
    finally:
        instance.dispose()


def test_pipeline_on_postgres_storage(tmp_path: Path, postgres_instance: dg.DagsterInstance) -> None:
    assert type(postgres_instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(postgres_instance.run_storage).__name__ == "PostgresRunStorage"
    market = f"pg_{uuid.uuid4().hex[:8]}"  # fresh asset keys on a database that may outlive this test
    settings = {**SAMPLE_MARKET, "start": "2012-01-01", "end": "2012-06-30", "symbols": ["AAPL", "IBM"],
                "strategies": [STRATEGY]}
    defs = build_definitions(load_config(write_config(tmp_path, {market: settings})))
    auto = Automation(defs, postgres_instance, market)
    assert auto.tick() == {}
    bars = auto.run("sync_us_stocks_bars_1d", "2012-01-01|AAPL", "2012-06-01|IBM")
    assert bars.success
    assert len(postgres_instance.get_materialized_partitions(dg.AssetKey([market, "bars_1d"]))) == 12
    assert auto.tick() == {INDICATORS: {"AAPL", "IBM"}, BACKTEST: {"AAPL", "IBM"}}
    assert auto.run("indicators_us_stocks_1d", "AAPL", "IBM").success
    assert auto.run("backtest_us_stocks_1d", "AAPL", "IBM").success
    assert auto.tick() == {LEADERBOARD: {"*"}}
    assert auto.run("leaderboard_us_stocks").success
    record = postgres_instance.get_run_record_by_id(bars.run_id)
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert postgres_instance.get_latest_materialization_event(dg.AssetKey([market, "backtest_leaderboard"]))
