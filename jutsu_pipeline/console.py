"""What `jutsu` prints: a short plan, one progress bar per run, a summary, and errors as one paragraph.

Dagster's event log goes to the instance (the terminal shows it with `-v`). Runs execute in this process,
so a Dagster logger attached to the job drives the bar from the events themselves; the sync engine passes
its per-symbol progress as a log record's `extra` (`PROGRESS_EXTRA`).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dagster as dg
    from rich.console import Console

VERBOSE_ENV_VAR = "JUTSU_VERBOSE"  # `1`: tracebacks (also for `dagster ...` on our code location)
_CLASS_PREFIX = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Failure|Failed): ")


def quiet_third_party_warnings() -> None:
    """Hide Dagster's Beta/Preview/Supersession notices and third-party deprecations: nothing a user can act on."""
    from dagster_shared.utils.warnings import BetaWarning, PreviewWarning, SupersessionWarning

    for category in (BetaWarning, PreviewWarning, SupersessionWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=".*is deprecated", category=FutureWarning)


# -- errors ----------------------------------------------------------------------------------------

def root_message(error: Any) -> str:
    """The innermost cause's message of an exception or a Dagster `SerializableErrorInfo` (which wraps a
    step's exception), without class names."""
    while (cause := getattr(error, "cause", None) or getattr(error, "__cause__", None)) is not None:
        error = cause
    message = error.message if hasattr(error, "message") and isinstance(error.message, str) else str(error)
    if getattr(error, "cls_name", None):  # Dagster's record of an exception: `package.module.AuthExpired: ...`
        message = re.sub(rf"^(?:\w+\.)*{re.escape(error.cls_name)}: ", "", message.strip())
    return _CLASS_PREFIX.sub("", message.strip()).strip()


def paragraph(text: str) -> str:
    """One paragraph: the message's lines joined (a config error's per-key lines stay as a list)."""
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    if any(line.startswith("  ") for line in lines[1:]):
        return "\n".join(lines)
    return " ".join(line.strip() for line in lines)


def print_error(message: str, verbose: bool = False, detail: str | None = None) -> None:
    """An error on stderr, once; the traceback (`detail`) only when verbose, else how to get it."""
    text = paragraph(message)
    if verbose and detail:
        text += "\n" + detail.rstrip()
    elif detail:
        text += " (run with -v for the traceback)"
    print(f"jutsu: {text}", file=sys.stderr, flush=True)


def _config_error_in(error: BaseException | None) -> BaseException | None:
    from jutsu_pipeline.config import ConfigError

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, ConfigError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def install_config_error_hook() -> None:
    """Make an uncaught ConfigError (`dagster asset materialize` on an invalid jutsu.yaml) end the process with
    its message, which names the file and keys, not under Dagster's 70-100-line loader traceback."""
    if os.environ.get(VERBOSE_ENV_VAR, "") not in ("", "0"):
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        config_error = _config_error_in(error)
        if config_error is None:
            previous(kind, error, tb)
            return
        print_error(f"{config_error}\nFix the file and re-run (set {VERBOSE_ENV_VAR}=1 for the traceback).")

    sys.excepthook = hook


# -- runs ------------------------------------------------------------------------------------------

@dataclass
class RunReport:
    """What one run did, as seen through its events."""

    label: str
    run_id: str = ""
    success: bool = False
    seconds: float = 0.0
    partitions: int = 0  # materialisations recorded
    bars: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)  # the asset's materialisation metadata
    # (name, passed, severity, description, bars judged: None when the check does not say)
    checks: list[tuple[str, bool, str, str, int | None]] = field(default_factory=list)
    errors: list[tuple[str, str | None]] = field(default_factory=list)  # (message, traceback if any)


class _RunListener(logging.Handler):
    """Turns a run's Dagster log records into bar updates and a RunReport."""

    def __init__(self, update: Callable[..., None], report: RunReport, asset_key: Any) -> None:
        from jutsu_pipeline.sync.engine import PROGRESS_EXTRA

        super().__init__(logging.DEBUG)
        self._update, self.report, self.asset_key = update, report, asset_key  # update: the bar's, or a no-op
        self.progress_key = PROGRESS_EXTRA
        self.symbols_total = 0
        self.run_totals: dict[str, Any] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._handle(record)
        except Exception:  # noqa: BLE001 - a display problem must never fail a run
            pass

    def _handle(self, record: logging.LogRecord) -> None:
        progress = getattr(record, self.progress_key, None)
        if isinstance(progress, Mapping):
            self._on_progress(progress)
            return
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is None:
            return
        kind = event.event_type_value
        data = event.event_specific_data
        if kind == "ASSET_MATERIALIZATION":
            materialization = data.materialization
            if materialization.asset_key != self.asset_key:
                return
            self.report.partitions += 1
            # A bars run's totals come once (its "done" record); a partition's event holds that partition's facts.
            self.report.metadata = {**{k: getattr(v, "value", v) for k, v in materialization.metadata.items()},
                                    **self.run_totals}
            self._update(advance=1)
        elif kind == "ASSET_CHECK_EVALUATION":
            description = (data.description or "").removeprefix(f"{data.check_name}: ")
            failing = data.metadata.get("per_symbol")  # {symbol: {rule: count}} of failing symbols
            if not data.passed and failing is not None and isinstance(failing.value, Mapping) and failing.value:
                description += f"; symbols: {', '.join(sorted(failing.value)[:10])}"
            rows = data.metadata.get("rows_checked")
            self.report.checks.append((data.check_name, data.passed, data.severity.value, description,
                                       None if rows is None else int(rows.value)))
        elif kind == "STEP_FAILURE" and data.error is not None:
            user = data.user_failure_data
            if user is not None and user.description:  # a dg.Failure: its description is the whole story
                self.report.errors.append((user.description, None))
            else:
                self.report.errors.append((root_message(data.error), data.error.to_string()))

    def _on_progress(self, progress: Mapping[str, Any]) -> None:
        if progress.get("phase") == "plan":
            self.symbols_total = int(progress["symbols"])
            windows = int(progress["windows"])
            self._update(total=windows, total_text=str(windows), completed=0, detail=f" · 0/{self.symbols_total} sym")
        elif progress.get("phase") == "done":  # the run's totals (jutsu_pipeline.assets.bars.metadata.run_totals)
            self.run_totals = {k: v for k, v in progress.items() if k != "phase"}
            self.report.metadata.update(self.run_totals)
        elif progress.get("phase") == "fetched":  # every few symbols: running totals
            self.report.bars = int(progress["bars_so_far"])
            self._update(detail=f" · {progress['symbols_done']}/{self.symbols_total} sym · {self.report.bars:,} bars")


class SyncConsole:
    """The terminal side of `jutsu sync`: plan lines, a bar per run, a summary; quiet unless verbose."""

    def __init__(self, verbose: bool = False, console: Console | None = None) -> None:
        from rich.console import Console

        self.verbose = verbose
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.reports: list[RunReport] = []

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def run(self, job: dg.JobDefinition, instance: dg.DagsterInstance, tags: Mapping[str, str],
            asset_key: dg.AssetKey, label: str, total: int | None = None, unit: str = "partitions") -> RunReport:
        """Execute `job` in this process with a progress bar of `asset_key`'s materialisations (`total` if
        known; a bars run reports its own); Dagster's console log only when verbose."""
        import dagster as dg

        from jutsu_pipeline.instance import execute_interruptibly

        name = asset_key.to_user_string()
        report = RunReport(label=name if label == name else f"{name} {label}")  # an unpartitioned asset: once
        started = time.perf_counter()
        with self._bar(asset_key.to_user_string(), total, f" {unit}") as update:
            listener = _RunListener(update, report, asset_key)

            @dg.logger(None, description="Feeds jutsu's progress bar and summary.")  # no config
            def jutsu_progress(_init_context: dg.InitLoggerContext) -> logging.Logger:
                logger = logging.Logger("jutsu.progress", logging.DEBUG)
                logger.addHandler(listener)
                return logger

            loggers: dict[str, dg.LoggerDefinition] = {"jutsu_progress": jutsu_progress}
            if self.verbose:
                loggers["console"] = dg.colored_console_logger
            # Loggers not named in the run config fall back to Dagster's console logger.
            run_config = {"loggers": {name: {"config": {"log_level": "DEBUG"}} if name == "console" else {}
                                      for name in loggers}}
            # SIGTERM/SIGINT mark the run failed and free its pool slots (jutsu_pipeline.instance).
            result = execute_interruptibly(job.with_logger_defs(loggers), instance, dict(tags), run_config)
        report.run_id = result.run_id
        report.success = result.success
        report.seconds = time.perf_counter() - started
        if not report.success and not report.errors:
            report.errors.append((f"run {result.run_id[:8]} failed; its event log in the UI says why", None))
        self.reports.append(report)
        self._print_run(report)
        return report

    @contextmanager
    def _bar(self, description: str, total: int | None, unit: str) -> Iterator[Callable[..., None]]:
        if self.verbose or not self.console.is_terminal:  # a live bar would interleave with Dagster's log / clutter a log file
            yield lambda **_: None
            return
        from rich.progress import BarColumn, Progress, TextColumn

        progress = Progress(
            TextColumn("  {task.description}"),
            BarColumn(bar_width=10),
            TextColumn("{task.completed:.0f}/{task.fields[total_text]}{task.fields[unit]}{task.fields[detail]}"),
            _rate_column(),
            console=self.console,
            transient=True,  # the run's one-line result replaces it
        )
        with progress:
            yield partial(progress.update, progress.add_task(description, total=total, unit=unit, detail="",
                                                             total_text="?" if total is None else str(total)))

    def _print_run(self, report: RunReport) -> None:
        status = "done" if report.success else "FAILED"
        facts = [f"{report.seconds:.1f} s"]
        for name, text in RESULT_FACTS:
            value = report.metadata.get(name)
            if value is not None:
                facts.append(f"{value:,} {text}" if isinstance(value, int) else f"{value} {text}")
        self.say(f"  {report.label}: {status} in " + ", ".join(facts) + f" (run {report.run_id[:8]})")
        if report.success and report.metadata.get("path"):  # a page written (the report): where to open it
            self.say(f"{report.label}: open {Path(report.metadata['path']).as_uri()}")
        for message, trace in report.errors:
            print_error(message, self.verbose, trace)

    def summary(self) -> None:
        """Totals over every run, then the checks that did not pass (each once)."""
        if not self.reports:
            return
        failed = [r for r in self.reports if not r.success]
        seconds = sum(r.seconds for r in self.reports)
        partitions = sum(r.partitions for r in self.reports if "partitions_with_bars" in r.metadata)
        bars = sum(int(r.metadata.get("bars_written", 0)) for r in self.reports)
        head = f"Summary: {len(self.reports)} run(s) in {seconds:.0f} s"
        if partitions:
            head += f"; {partitions:,} bars partition(s) recorded with {bars:,} bars"
        head += f"; {len(failed)} failed." if failed else "; all succeeded."
        self.say(head)
        checks = {(report.label.split(" ")[0], name): (passed, severity, description, rows)  # the latest of each
                  for report in self.reports for name, passed, severity, description, rows in report.checks}
        idle = [key for key, (ok, _, _, rows) in checks.items() if ok and rows == 0]  # passed on no bars at all
        judged = len(checks) - len(idle)
        why = "its bars runs failed" if failed else "the synced windows hold no bars"
        if idle and not judged:
            self.say(f"Checks: nothing to check, this sync stored no bars ({why}); {len(idle)} check(s) judged 0 bars.")
        elif checks:
            self.say(f"Checks: {sum(1 for ok, *_ in checks.values() if ok) - len(idle)} of {judged} passed"
                     + (f"; {len(idle)} had no bars to judge." if idle else "."))
        for (asset, name), (ok, severity, description, _) in checks.items():
            if not ok:
                level = "warning" if severity == "WARN" else "ERROR, blocks downstream"
                self.say(f"  {asset} {name} ({level}): {description}")


def _rate_column():  # noqa: ANN202 - a rich ProgressColumn, built lazily so importing this module stays cheap
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """` · 9.1/s · ETA 0:01:05`: rate of the bar's unit and time left, once known."""

        def render(self, task) -> Text:  # noqa: ANN001
            speed = task.finished_speed or task.speed
            if not speed:
                return Text("")
            text = f" · {speed:,.1f}/s"
            if task.total is not None and not task.finished:
                left = int((task.total - task.completed) / speed)
                text += f" · ETA {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"
            return Text(text)

    return RateColumn()


RESULT_FACTS = (
    ("partitions_with_bars", "partitions with bars"), ("partitions_valid_empty", "valid-empty"),
    ("partitions_failed", "failed"), ("bars_written", "bars"), ("provider_calls", "provider calls"),
    ("rows_written", "rows written"), ("strategies_x_symbols", "backtests"), ("trades", "trades"),
    ("results_ranked", "results ranked"), ("price_bars", "bars charted"), ("leaderboard_rows", "leaderboard rows"),
)
