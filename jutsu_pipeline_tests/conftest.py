"""Shared fixtures: real DuckDB files in tmp dirs and real in-process Dagster instances."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from jutsu_fake_exchange import FakeExchange
from jutsu_fake_exchange.testing import credential_env
from jutsu_pipeline.config import JutsuConfig, load_config

SAMPLE_MARKET = {
    "provider": "sample",
    "calendar": "XNYS",
    "timeframes": ["1d"],
    "start": "2000-03-01",
    "end": "2013-03-01",
    "symbols": ["AAPL", "FB", "GOOG", "IBM", "MSFT"],
    # The default grains of earlier releases (months for daily bars, sessions for intraday):
    # most tests pin partition keys of this layout; DEFAULT_GRAIN_MARKET has the defaults (years, quarters).
    "partition_grain": {"1d": "month", "1h": "session", "5m": "session", "1m": "session"},
}
# The shipped demo market as jutsu.yaml has it: no partition_grain, so one partition per symbol-year.
DEFAULT_GRAIN_MARKET = {key: value for key, value in SAMPLE_MARKET.items() if key != "partition_grain"}


def write_config(folder: Path, markets: dict, duckdb_path: str = "jutsu.duckdb", storage: dict | None = None) -> Path:
    """A jutsu.yaml in `folder`: `storage` if given, else the DuckDB file `duckdb_path` (the old key)."""
    path = folder / "jutsu.yaml"
    where = {"storage": storage} if storage else {"duckdb_path": duckdb_path}
    path.write_text(yaml.safe_dump({**where, "markets": markets}))
    return path


QUIET_HOME = "telemetry:\n  enabled: false\n"
_HOME_TEMPLATES: dict[str, Path] = {}


def fresh_home(folder: Path, dagster_yaml: str = QUIET_HOME) -> Path:
    """A new DAGSTER_HOME `folder/home` with `dagster_yaml`, its SQLite storages already created.

    Creating and migrating the run, event-log and schedule databases costs ~1-2 s per instance; each test
    worker does it once per dagster.yaml and copies the result (~0.1 s). The copy is a real, independent
    instance: nothing is shared between tests."""
    template = _HOME_TEMPLATES.get(dagster_yaml)
    if template is None:
        template = Path(tempfile.mkdtemp(prefix="jutsu_home_template_"))
        atexit.register(shutil.rmtree, template, ignore_errors=True)
        (template / "dagster.yaml").write_text(dagster_yaml)
        with dg.DagsterInstance.from_config(str(template)) as initialised:
            initialised.get_runs(limit=1)
        _HOME_TEMPLATES[dagster_yaml] = template
    home = folder / "home"
    shutil.copytree(template, home)
    return home


SHIPPED_HOME = (Path(__file__).resolve().parents[1] / "data" / "dagster_home" / "dagster.yaml").read_text()


@pytest.fixture
def persistent_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """A fresh on-disk instance configured by the shipped dagster.yaml (batching SQLite event log, pools,
    run monitoring), as `jutsu sync`, schedules and sensors use it."""
    home = fresh_home(tmp_path, SHIPPED_HOME)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as test_instance:
        yield test_instance


@pytest.fixture(autouse=True, scope="session")
def _rate_budget_file(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test worker gets its own shared-rate-budget file (never data/dagster_home's)."""
    from jutsu_pipeline.providers.http.budget import BUDGET_ENV

    os.environ[BUDGET_ENV] = str(tmp_path_factory.mktemp("rate_budget") / "budget.sqlite")


@pytest.fixture(autouse=True, scope="session")
def _calendar_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Built exchange calendars are cached in each test worker's own folder (and its subprocesses'), not ~/.cache."""
    from jutsu_pipeline.calendars import CACHE_ENV

    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def sample_config(tmp_path: Path) -> JutsuConfig:
    """The shipped demo market, with its DuckDB file in a tmp dir."""
    return load_config(write_config(tmp_path, {"us_stocks": SAMPLE_MARKET}))


@pytest.fixture
def fx(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeExchange]:
    """The fake exchange on a free loopback port; the Alpaca and Schwab credentials it accepts in the environment."""
    with FakeExchange() as exchange:
        for name, value in credential_env(exchange, tmp_path / "tokens.json").items():
            monkeypatch.setenv(name, value)
        yield exchange


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """An in-memory Dagster instance (real storage classes, no files)."""
    test_instance = dg.DagsterInstance.ephemeral()
    try:
        yield test_instance
    finally:
        test_instance.dispose()


def query(config: JutsuConfig, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of `sql` read from the config's storage (DuckDB file or DuckLake)."""
    from jutsu_pipeline.resources import JutsuDuckDBResource

    with JutsuDuckDBResource.for_config(config).get_connection(read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def keyed_bars_ddl() -> str:
    """`bars` as files made before 2026-12-02 have it: with the primary key (symbol, timeframe, ts)."""
    from jutsu_pipeline.storage.ddl import CREATE_BARS

    table = CREATE_BARS.replace("DEFAULT false  --", "DEFAULT false,  --").rstrip().removesuffix(")")
    return table + "    PRIMARY KEY (symbol, timeframe, ts)\n)"


def kill_at_pause(script: str, marker: Path, wait: float = 300.0) -> None:
    """Run `script` in a new Python process and SIGKILL the pid it writes to `marker` once it appears (the
    child writes it where it pauses). `wait` only bounds a hung child on a busy machine; nothing asserts speed."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + wait
    while not marker.exists():
        assert child.poll() is None, child.stdout.read() if child.stdout else ""
        assert time.monotonic() < deadline, "the child never reached its pause"
        time.sleep(0.1)
    os.kill(int(marker.read_text()), signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
