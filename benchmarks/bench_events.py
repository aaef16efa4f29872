"""Per-partition Dagster bookkeeping: one range run of a no-op multi-partitioned asset on each instance
storage, with and without event batching. Each case runs in a fresh process (the batching switch is an
environment variable). The asset body does nothing, so all of the wall time is Dagster's bookkeeping.

Run: .venv/bin/python benchmarks/bench_events.py [partitions]   (Postgres cases need JUTSU_TEST_POSTGRES_URL)
"""


import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg  # module level: Dagster resolves the asset's annotations here

CASES = {
    "sqlite (dagster default)": ({}, None),
    "sqlite + DAGSTER_EVENT_BATCH_SIZE=1000 (no real batch)": ({"DAGSTER_EVENT_BATCH_SIZE": "1000"}, None),
    "sqlite, JutsuInstance: batching event log (shipped default)": ({}, "batching"),
    "postgres": ({}, "postgres"),
    "postgres + DAGSTER_EVENT_BATCH_SIZE=1000": ({"DAGSTER_EVENT_BATCH_SIZE": "1000"}, "postgres"),
}


def _instance_yaml(kind: str | None, home: Path) -> str:
    if kind == "batching":
        return "instance_class:\n  module: jutsu_pipeline.instance_storage\n  class: JutsuInstance\ntelemetry: {enabled: false}\n"
    if kind == "postgres":
        return "storage:\n  postgres:\n    postgres_url: {env: JUTSU_TEST_POSTGRES_URL}\ntelemetry: {enabled: false}\n"
    return "telemetry: {enabled: false}\n"


def child(partitions: int) -> None:
    """Materialise `partitions` partitions (symbols × 2 yearly windows) in one range run; print JSON."""
    import resource


    symbols = [f"S{i:04d}" for i in range(partitions // 2)]
    parts = dg.MultiPartitionsDefinition({
        "date": dg.TimeWindowPartitionsDefinition(cron_schedule="0 0 1 1 *", start="2024-01-01", end="2026-01-01",
                                                  fmt="%Y-%m-%d"),
        "symbol": dg.StaticPartitionsDefinition(symbols),
    })

    @dg.asset(partitions_def=parts, backfill_policy=dg.BackfillPolicy.single_run(), key=f"noop_{uuid.uuid4().hex[:8]}")
    def noop(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"keys": len(context.partition_keys)})

    instance = dg.DagsterInstance.get()
    tags = {"dagster/asset_partition_range_start": f"2024-01-01|{symbols[0]}",
            "dagster/asset_partition_range_end": f"2025-01-01|{symbols[-1]}"}
    started, epoch = time.perf_counter(), time.time()
    result = dg.materialize([noop], instance=instance, tags=tags, raise_on_error=True)
    wall = time.perf_counter() - started
    events = instance.get_records_for_run(result.run_id, limit=1_000_000).records
    planned = sum(1 for r in events if r.event_log_entry.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    done = sum(1 for r in events if r.event_log_entry.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION)
    run_start = next(r.event_log_entry.timestamp for r in events
                     if r.event_log_entry.dagster_event_type == dg.DagsterEventType.RUN_START)
    print(json.dumps({"wall": wall, "before_run_start": run_start - epoch, "events": len(events), "planned": planned, "materialized": done,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "storage": type(instance.event_log_storage).__name__}))


def main() -> None:
    partitions = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(f"Dagster bookkeeping of one range run over {partitions} partitions (no-op asset body)")
    pg = os.environ.get("JUTSU_TEST_POSTGRES_URL")
    for label, (env, kind) in CASES.items():
        if kind == "postgres" and not pg:
            print(f"  {label:<58} skipped: JUTSU_TEST_POSTGRES_URL is not set")
            continue
        with tempfile.TemporaryDirectory() as home:
            Path(home, "dagster.yaml").write_text(_instance_yaml(kind, Path(home)))
            run_env = {**os.environ, "DAGSTER_HOME": home, **env}
            if "DAGSTER_EVENT_BATCH_SIZE" not in env:
                run_env.pop("DAGSTER_EVENT_BATCH_SIZE", None)
            done = subprocess.run([sys.executable, __file__, "--child", str(partitions)], env=run_env,
                                  capture_output=True, text=True, check=False)
            if done.returncode:
                print(f"  {label:<58} FAILED:\n{done.stderr[-2000:]}")
                continue
            out = done.stdout.strip().splitlines()[-1]
        data = json.loads(out)
        per = data["wall"] / partitions * 1000
        print(f"  {label:<58} {data['wall']:>7.1f} s  {per:>6.2f} ms/partition  "
              f"{data['before_run_start']:>6.1f} s before RUN_START  events={data['events']} "
              f"(planned {data['planned']}, materialised {data['materialized']})  peak RSS {data['rss_mb']:.0f} MB")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(int(sys.argv[2]))
    else:
        main()
