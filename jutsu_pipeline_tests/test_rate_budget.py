"""One rate budget across processes: the SQLite-backed token bucket and its server feedback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jutsu_fake_exchange import FakeExchange
from jutsu_pipeline.providers.http.budget import BUDGET_ENV, SharedTokenBucket, budget_key, budget_path
from jutsu_pipeline.providers.http.hold import instance_state


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_buckets_on_one_file_share_tokens_holds_and_feedback(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "budget.sqlite"
    a = SharedTokenBucket(path, "binance|x|requests|-", 10.0, 2.0, clock=clock, sleep=clock.sleep)
    b = SharedTokenBucket(path, "binance|x|requests|-", 10.0, 2.0, clock=clock, sleep=clock.sleep)
    other = SharedTokenBucket(path, "binance|y|requests|-", 10.0, 2.0, clock=clock, sleep=clock.sleep)
    assert a.acquire() == 0 and b.acquire() == 0  # the burst of 2 is shared, not 2 each
    assert a.acquire() == pytest.approx(0.1)
    assert other.acquire() == 0  # another server or credential has its own budget
    b.hold(5.0)  # a Retry-After seen by one process stops the others too
    assert a.acquire() == pytest.approx(5.0)
    clock.now += 10
    a.limit_available(0)  # used-weight feedback: nothing left right now
    assert b.acquire() == pytest.approx(0.1)
    for bucket in (a, b, other):
        bucket.close()


def test_budget_file_location_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert budget_path() == tmp_path / "jutsu" / "rate_budget.sqlite"
    with instance_state(tmp_path / "instance"):  # a run of that instance: beside its provider holds
        assert budget_path() == tmp_path / "instance" / "jutsu" / "rate_budget.sqlite"
    monkeypatch.setenv(BUDGET_ENV, str(tmp_path / "b.sqlite"))
    assert budget_path() == tmp_path / "b.sqlite"
    key = budget_key("alpaca", "https://data.alpaca.markets", "requests", "secret-key-id")
    assert "secret-key-id" not in key and key != budget_key("alpaca", "https://data.alpaca.markets", "requests", "other")


@pytest.mark.slow  # two real processes against the fake exchange (end-to-end)
def test_two_processes_stay_within_the_exchange_limit_together(tmp_path: Path) -> None:
    """Each process may use the whole 10 req/s alone; sharing the budget, both together never exceed it.

    Only limits are asserted (no 429, no rate above 10/s): a busy machine may be slower, never faster.
    The achieved share of the limit is measured by benchmarks/bench_lake.py.
    """
    pages = 15
    env = {**os.environ, BUDGET_ENV: str(tmp_path / "budget.sqlite")}
    with FakeExchange(rate_limit=10) as fx:
        fx.rate_limit_retry_after = 1.0
        workers = [subprocess.Popen([sys.executable, "-m", "jutsu_pipeline_tests.budget_worker", fx.url, str(pages),
                                     "10"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for _ in range(2)]
        outputs = [worker.communicate(timeout=300) for worker in workers]
        assert [w.returncode for w in workers] == [0, 0], [o[1][-2000:] for o in outputs]
        assert [o[0].split() for o in outputs] == [[str(pages * 10), str(pages)]] * 2
        arrivals = sorted(r.at for r in fx.requests("binance"))
        assert fx.count("binance", 429) == 0
    assert len(arrivals) == 2 * pages
    # A bucket of capacity 1 allows 1 + 10/s * span requests; one more for network jitter on arrival.
    assert len(arrivals) - 2 <= 10 * (arrivals[-1] - arrivals[0])
