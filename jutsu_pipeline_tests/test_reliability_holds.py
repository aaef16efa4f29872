"""Bans and long back-offs are shared state: after a 418 (or a 429/503 whose Retry-After exceeds the cap)
no request reaches the provider, from this run or any other run of the instance, until the hold ends."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from jutsu_fake_exchange import FakeExchange, Fault
from jutsu_fake_exchange.testing import provider_options
from jutsu_pipeline.config import JutsuConfig, load_config
from jutsu_pipeline.providers.http.hold import HoldStore, holds_path
from jutsu_pipeline_tests.conftest import query, write_config
from jutsu_pipeline_tests.helpers import run_bars, step_error

UTC = dt.timezone.utc
BARS_KEY = dg.AssetKey(["crypto", "bars_1d"])


def crypto(folder: Path, fx: FakeExchange) -> JutsuConfig:
    folder.mkdir(parents=True, exist_ok=True)
    market = {"provider": "binance", "calendar": "24/7", "timeframes": ["1d"], "start": "2024-01-01",
              "end": "2024-03-01", "symbols": ["BTCUSDT", "ETHUSDT"], "partition_grain": {"1d": "month"},
              "options": provider_options(fx, "binance", page_limit=100)}  # retry_after_max: 5 s
    return load_config(write_config(folder, {"crypto": market}))


def run(config: JutsuConfig, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return run_bars(config, instance, start="2024-01-01|BTCUSDT", end="2024-02-01|ETHUSDT", market="crypto")


@pytest.mark.parametrize(("fault", "seconds"), [
    (Fault.banned(600), 600), (Fault.http_status(418), 600), (Fault.rate_limited(900), 900),
    (Fault.http_status(503, 700), 700),
], ids=["418", "418-no-retry-after", "429-long", "503-long"])
def test_a_ban_stops_every_request_of_this_and_later_runs_until_it_ends(
        fx: FakeExchange, tmp_path: Path, instance: dg.DagsterInstance, fault: Fault, seconds: float) -> None:
    config = crypto(tmp_path, fx)
    fx.faults.script("binance", fault)
    before = dt.datetime.now(UTC)
    first = run(config, instance)
    assert not first.success
    assert fx.count("binance") == 1  # the remaining symbols failed fast, without a request
    error = step_error(first)
    assert "4 of 4 partition(s)" in error
    store = HoldStore(holds_path(instance.root_directory))
    [hold] = store.all()
    assert hold.provider == "binance" and hold.base_url == fx.url
    assert before + dt.timedelta(seconds=seconds - 1) <= hold.until <= dt.datetime.now(UTC) + dt.timedelta(seconds=seconds)
    second = run(config, instance)  # another run of the same instance, while the hold lasts
    assert not second.success and fx.count("binance") == 1
    assert f"on hold until {hold.until:%Y-%m-%d %H:%M:%S} UTC" in step_error(second)
    assert instance.get_materialized_partitions(BARS_KEY) == set()  # all still missing, retried after the hold
    assert store.release("binance") == 1  # the hold ends
    third = run(config, instance)
    assert third.success, step_error(third)
    assert fx.count("binance") > 1 and all(r.status == 200 for r in fx.requests("binance")[1:])
    assert len(instance.get_materialized_partitions(BARS_KEY)) == 4


def test_short_retry_after_is_waited_and_sets_no_hold(fx: FakeExchange, tmp_path: Path,
                                                      instance: dg.DagsterInstance) -> None:
    fx.faults.script("binance", Fault.rate_limited(0.2))
    assert run(crypto(tmp_path, fx), instance).success
    assert HoldStore(holds_path(instance.root_directory)).all() == []
    assert [r.status for r in fx.requests("binance")][:2] == [429, 200]


@pytest.mark.slow  # a second `jutsu sync` process (end-to-end)
def test_the_hold_stops_another_process(fx: FakeExchange, tmp_path: Path) -> None:
    """`jutsu sync` in a new process on the same DAGSTER_HOME sends nothing while the hold lasts."""
    home = tmp_path / "home"
    home.mkdir()
    config = crypto(tmp_path, fx)
    fx.faults.script("binance", Fault.banned(600))
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        assert not run(config, instance).success
    assert fx.count("binance") == 1
    env = {**os.environ, "DAGSTER_HOME": str(home), "JUTSU_CONFIG": str(config.source_path)}
    done = subprocess.run([sys.executable, "-m", "jutsu_pipeline.cli", "sync"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert fx.count("binance") == 1
    assert "on hold until" in done.stderr  # the error paragraph goes to stderr, once
    # Nothing stored; with every bars partition failed, nothing downstream runs either (so maybe no file).
    # (the file may exist without a `bars` table: every partition failed before the first write)
    stored = query(config, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'bars'") \
        if config.database.exists() else [(0,)]
    assert stored == [(0,)] or query(config, "SELECT count(*) FROM bars") == [(0,)]
