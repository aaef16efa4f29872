"""The Dagster instance under many processes: first use under a file lock (two processes migrating a fresh
home corrupted its SQLite storage), recovery of runs whose process died (Dagster's run monitoring for the
CLI and the gap sensor), and the partitions live runs are syncing right now.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from jutsu_pipeline.config import JutsuConfig

PID_TAG = "jutsu/pid"  # the process executing a run launched by `jutsu sync`
HOST_TAG = "jutsu/host"
LIVE_STATUSES = [
    dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
INIT_LOCK = ".jutsu-init.lock"


@contextlib.contextmanager
def home_lock(home: Path) -> Iterator[None]:
    """An exclusive advisory lock on `home` (released when the process dies, even by kill -9)."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / INIT_LOCK, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


INSTANCE_TEMPLATE = Path(__file__).with_name("instance_template.yaml")  # data/dagster_home/dagster.yaml links here


def open_instance(home: str | Path, *, seed_settings: bool = False) -> dg.DagsterInstance:
    """The instance at `home` with its storages created and migrated under a lock; with `seed_settings`, a
    home without dagster.yaml gets the project's (not done for the user's own home)."""
    home = Path(home).resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    with home_lock(home):
        settings = home / "dagster.yaml"
        if seed_settings and not settings.exists():
            # Without it Dagster runs unbounded pools (several DuckDB writers at once) and prints its
            # "no dagster.yaml" and telemetry banners on every command.
            settings.write_text(INSTANCE_TEMPLATE.read_text())
        instance = dg.DagsterInstance.get()
        # Touch every storage now, inside the lock: SQLite storages create their tables lazily.
        instance.get_runs(limit=1)
        instance.event_log_storage.get_concurrency_keys()
        instance.schedule_storage.all_instigator_state() if instance.schedule_storage else None
    return instance


@dataclass(frozen=True)
class Recovered:
    run_id: str
    job_name: str
    pid: int


def _process_alive(pid: int, not_after: float | None) -> bool:
    """Whether `pid` runs here and (when /proc tells) started no later than `not_after` (a reused pid is not
    the run's process). Zombies count as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    stat = Path(f"/proc/{pid}/stat")
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True
    if fields[0] == "Z":
        return False
    if not_after is None:
        return True
    try:
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError, IndexError):
        return True
    return started <= not_after + 2.0  # clock-tick rounding


def _run_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    """The pid executing `run` on this host: our tag, else the pid of Dagster's in-process engine event
    (only for this machine's SQLite instance: a shared database may hold runs of other hosts)."""
    if PID_TAG in run.tags:
        if run.tags.get(HOST_TAG, socket.gethostname()) != socket.gethostname():
            return None
        return int(run.tags[PID_TAG])
    if "sqlite" not in type(instance.run_storage).__name__.lower():
        return None
    for record in instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20).records:
        event = record.event_log_entry.dagster_event
        data = getattr(event, "event_specific_data", None) if event else None
        pid = (getattr(data, "metadata", None) or {}).get("pid")
        if pid is not None:
            return int(pid.value)
    return None


def recover_dead_runs(instance: dg.DagsterInstance) -> list[Recovered]:
    """Mark failed every live-status run whose process is gone here, and free its pool slots."""
    recovered: list[Recovered] = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=LIVE_STATUSES)):
        run = record.dagster_run
        pid = _run_pid(instance, run)
        if pid is None or pid == os.getpid():
            continue
        created = record.create_timestamp.timestamp()
        if _process_alive(pid, created):
            continue
        fail_run(instance, run.run_id, f"The process executing this run (pid {pid}) is gone (killed or crashed); "
                 "marked failed by jutsu so its pool slots are freed and its partitions count as missing again.")
        recovered.append(Recovered(run.run_id, run.job_name, pid))
    return recovered


def fail_run(instance: dg.DagsterInstance, run_id: str, reason: str) -> None:
    """Mark `run_id` failed (if it is still live) and free its pool slots."""
    run = instance.get_run_by_id(run_id)
    if run is not None and run.status in LIVE_STATUSES:
        instance.report_run_failed(run, reason)
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def execute_interruptibly(job: dg.JobDefinition, instance: dg.DagsterInstance,
                          tags: dict[str, str], run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    """`job.execute_in_process`, stoppable by SIGTERM/SIGINT at any moment (even while it waits for a pool
    slot, where Dagster's deferred interrupts never arrive): the run executes in a worker thread; on a signal
    the main thread marks it failed, frees its slots and exits with 128 + signal number."""
    from dagster._core.utils import make_new_run_id

    run_id = make_new_run_id()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            # The pid and host tags tell another process whether this one still executes the run.
            run_tags = {**tags, PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
            outcome["result"] = job.execute_in_process(run_config=run_config, instance=instance, tags=run_tags,
                                                       run_id=run_id, raise_on_error=False)
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            outcome["error"] = error

    def stop(signo: int, _frame: object) -> None:
        name = signal.Signals(signo).name
        fail_run(instance, run_id, f"jutsu sync received {name} and stopped; nothing is held and the run's "
                 "unfinished partitions count as missing again")
        print(f"\n{name}: stopped; run {run_id[:8]} marked failed, its pool slots freed; its unfinished "
              "partitions stay missing for the next `jutsu sync`.", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(128 + signo)

    worker = threading.Thread(target=target, name=f"dagster-run-{run_id[:8]}", daemon=True)
    in_main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)} if in_main else {}
    try:
        worker.start()
        check_at, announced = time.monotonic() + 2.0, False
        while worker.is_alive():
            worker.join(0.25)
            if not announced and time.monotonic() >= check_at:  # say why nothing happens, once
                check_at += 5.0
                waiting = pool_wait(instance, run_id)
                if waiting is not None:
                    pool, holders = waiting
                    print(f"  waiting for a slot of pool {pool}, held by run(s) {', '.join(sorted(holders)) or '?'} "
                          "(`dagster instance concurrency get` shows it; Ctrl-C stops this sync cleanly)", flush=True)
                    announced = True
    finally:
        for signo, handler in previous.items():
            signal.signal(signo, handler)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["result"]  # type: ignore[return-value]


def pool_wait(instance: dg.DagsterInstance, run_id: str) -> tuple[str, set[str]] | None:
    """(pool, run ids holding its slots) if a step of `run_id` waits for a slot, else None."""
    storage = instance.event_log_storage
    for pool in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(pool)
        if run_id in info.pending_run_ids:
            return pool, {holder[:8] for holder in info.active_run_ids}
    return None


def live_in_flight_keys(instance: dg.DagsterInstance, asset_key: dg.AssetKey, job_name: str,
                        keys_of_run) -> set[str]:  # noqa: ANN001 - keys_of_run: tags -> set[str]
    """Partitions of `asset_key` that live runs (of `job_name` or selecting the asset) are materialising."""
    keys: set[str] = set()
    for run in instance.get_runs(dg.RunsFilter(statuses=[*LIVE_STATUSES, dg.DagsterRunStatus.QUEUED])):
        if run.job_name == job_name or (run.asset_selection and asset_key in run.asset_selection):
            keys |= keys_of_run(run.tags)
    return keys


def open_configured_instance(config: JutsuConfig) -> dg.DagsterInstance:
    """$DAGSTER_HOME's instance if set, else the config's `dagster_home`, which gets the project's settings."""
    from jutsu_pipeline.config import DAGSTER_HOME_ENV_VAR

    return open_instance(config.instance_dir, seed_settings=DAGSTER_HOME_ENV_VAR not in os.environ)


def main() -> None:
    """`python -m jutsu_pipeline.instance`: initialise the instance once, before several processes use it."""
    from jutsu_pipeline.config import load_config

    instance = open_configured_instance(load_config())
    print(f"Dagster instance ready at {instance.root_directory}")


if __name__ == "__main__":
    main()
