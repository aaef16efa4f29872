"""Transactions that both backends run the same way, and retries of DuckLake commit conflicts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TypeVar

import duckdb
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

log = logging.getLogger("jutsu_pipeline.storage")
T = TypeVar("T")
CONFLICT_ATTEMPTS = 40


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT; on any error ROLLBACK (if the failed COMMIT did not already end it) and re-raise."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):  # a failed COMMIT has already rolled back: keep the original error
            con.execute("ROLLBACK")
        raise


def is_commit_conflict(error: BaseException) -> bool:
    """DuckLake refused a commit because another writer committed first: it changed the same table
    ("Transaction conflict") or took the snapshot id this commit wanted (a unique violation on
    ducklake_snapshot). Nothing of the failed transaction was committed either way."""
    text = str(error).lower()
    return isinstance(error, duckdb.Error) and (("conflict" in text and "transaction" in text)
                                                or "failed to commit ducklake transaction" in text)


def retry_conflicts(work: Callable[[], T], what: str = "write") -> T:
    """Run `work` (one whole transaction) again after a commit conflict, with jittered back-off: DuckLake
    detects conflicts per table, so writers of different `bars` partitions collide although their rows never
    overlap (a DuckDB file has one writer at a time and never raises this)."""
    retrying = Retrying(
        retry=retry_if_exception(is_commit_conflict),
        stop=stop_after_attempt(CONFLICT_ATTEMPTS),
        wait=wait_random_exponential(multiplier=0.05, max=2.0),
        before_sleep=lambda state: log.info("%s: commit conflict with another writer (attempt %d); retrying",
                                            what, state.attempt_number),
        reraise=True,
    )
    return retrying(work)
