"""Named points where a crash test can stop a process to kill it there (the kill matrix of
docs/reliability.md). Inert unless JUTSU_FAULTPOINT is set, e.g. `JUTSU_FAULTPOINT=after_commit:/tmp/m`:
on reaching that point the process writes its pid to the marker file and waits to be killed."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

ENV = "JUTSU_FAULTPOINT"
POINTS = ("planning", "fetching", "after_commit", "materializing")


def reach(point: str) -> None:
    """Pause here forever (until killed) when JUTSU_FAULTPOINT names `point`."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, marker = spec.partition(":")
    if name != point:
        return
    Path(marker).write_text(str(os.getpid()))
    while True:  # not a retry loop: the test kills the process here
        time.sleep(0.5)


class MaterializingFaultpoint(logging.Handler):
    """A Dagster log handler (instance `python_logs.dagster_handler_config`) that reaches `materializing`
    at the second asset materialisation event of a run: Dagster is in the middle of recording them."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.seen = 0

    def emit(self, record: logging.LogRecord) -> None:
        event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
        if event is not None and getattr(event, "event_type_value", None) == "ASSET_MATERIALIZATION":
            self.seen += 1
            if self.seen == 2:
                reach("materializing")
