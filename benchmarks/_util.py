"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Callable


class Seconds(float):
    """Wall seconds of one call; `cpu`: its CPU seconds (every thread of the process), which other processes
    on a shared machine disturb less."""

    cpu: float


def timed(fn: Callable[[], object]) -> Seconds:
    """The wall and CPU time of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    seconds = Seconds(time.perf_counter() - wall)
    seconds.cpu = time.process_time() - cpu
    return seconds


def best_of(fn: Callable[[], object], repeat: int = 5, number: int = 1) -> float:
    """Best wall time in seconds of `number` calls, over `repeat` tries."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - started) / number)
    return best


def row(label: str, value: float, unit: str, target: str = "") -> None:
    print(f"  {label:<58} {value:>10.3f} {unit:<6} {target}")
