"""Per-partition Dagster bookkeeping: one range run of a no-op multi-partitioned asset on each instance
storage, with and without event batching. Each case runs in a fresh process (the batching switch is an
environment variable). The asset body does nothing, so all of the wall time is Dagster's bookkeeping.

The last three cases compare what each materialisation carries on the shipped instance: a bars run's
metadata as it was until 2026-12-02 (the run's totals, 15 entries, copied by Dagster into every partition's
event), then each partition's own rows and first/last bar with the 3 planner keys copied into every event, and
as it is now (the planner keys once, as the run's tags).

Run: .venv/bin/python benchmarks/bench_events.py [partitions] [--shipped]   (--shipped: only the shipped
instance's cases, without Dagster's own SQLite storage, which takes minutes; Postgres cases need
JUTSU_BENCH_POSTGRES_URL or JUTSU_TEST_POSTGRES_URL, as the other benchmarks)
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
    "sqlite (dagster default)": ({}, None, "none"),
    "sqlite + DAGSTER_EVENT_BATCH_SIZE=1000 (no real batch)": ({"DAGSTER_EVENT_BATCH_SIZE": "1000"}, None, "none"),
    "sqlite, JutsuInstance: batching event log (shipped default)": ({}, "batching", "none"),
    "postgres": ({}, "postgres", "none"),
    "postgres + DAGSTER_EVENT_BATCH_SIZE=1000": ({"DAGSTER_EVENT_BATCH_SIZE": "1000"}, "postgres", "none"),
    "shipped, run totals copied into every partition (before)": ({}, "batching", "run"),
    "shipped, own facts + planner keys in every partition (before)": ({}, "batching", "keys"),
    "shipped, own facts, planner keys as run tags (bars now)": ({}, "batching", "partition"),
}
RUN_TOTALS = {  # the shape of a bars run's metadata until 2026-12-02 (values of a 500 x 20 y first sync)
    "bars_written": dg.MetadataValue.int(2_516_000), "bars_fetched": dg.MetadataValue.int(2_516_000),
    "partitions_with_bars": dg.MetadataValue.int(10_500), "partitions_valid_empty": dg.MetadataValue.int(0),
    "partitions_failed": dg.MetadataValue.int(0), "provider": dg.MetadataValue.text("files"),
    "provider_calls": dg.MetadataValue.int(500),
    "symbols": dg.MetadataValue.text(", ".join(f"S{i:04d}" for i in range(25)) + " … and 475 more"),
    "seconds": dg.MetadataValue.float(21.5), "first_ts": dg.MetadataValue.timestamp(1088640000.0),
    "last_ts": dg.MetadataValue.timestamp(1719446400.0), "dagster/row_count": dg.MetadataValue.int(2_516_000),
    "refresh": dg.MetadataValue.text("whole windows"), "provider_requests": dg.MetadataValue.int(500),
}
PLANNER_KEYS = {"history_start": dg.MetadataValue.text("2004-07-01"), "history_end": dg.MetadataValue.text("2024-06-27"),
                "partition_grain": dg.MetadataValue.text("year")}


def _instance_yaml(kind: str | None, home: Path) -> str:
    if kind == "batching":
        return "instance_class:\n  module: jutsu_pipeline.instance_storage\n  class: JutsuInstance\ntelemetry: {enabled: false}\n"
    if kind == "postgres":
        return "storage:\n  postgres:\n    postgres_url: {env: JUTSU_EVENTS_POSTGRES_URL}\ntelemetry: {enabled: false}\n"
    return "telemetry: {enabled: false}\n"


def child(partitions: int, style: str = "none") -> None:
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
        keys = context.partition_keys
        if style == "run":
            return dg.MaterializeResult(metadata={**RUN_TOTALS, **PLANNER_KEYS})
        if style in ("keys", "partition"):
            from jutsu_pipeline.assets.bars.assets import set_partition_metadata

            facts = {k: {"dagster/row_count": dg.MetadataValue.int(252), "first_ts": dg.MetadataValue.timestamp(1.7e9),
                         "last_ts": dg.MetadataValue.timestamp(1.73e9)} for k in keys}
            set_partition_metadata(context, context.assets_def.key, keys, facts)
            if style == "keys":
                return dg.MaterializeResult(metadata=PLANNER_KEYS)
            context.instance.add_run_tags(context.run.run_id, {f"jutsu/{k}": str(v.value) for k, v in PLANNER_KEYS.items()})
            return dg.MaterializeResult()
        return dg.MaterializeResult(metadata={"keys": len(keys)})

    instance = dg.DagsterInstance.get()
    tags = {"dagster/asset_partition_range_start": f"2024-01-01|{symbols[0]}",
            "dagster/asset_partition_range_end": f"2025-01-01|{symbols[-1]}"}
    started, epoch, cpu = time.perf_counter(), time.time(), time.process_time()
    result = dg.materialize([noop], instance=instance, tags=tags, raise_on_error=True)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    events = instance.get_records_for_run(result.run_id, limit=1_000_000).records
    planned = sum(1 for r in events if r.event_log_entry.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    done = sum(1 for r in events if r.event_log_entry.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION)
    run_start = next(r.event_log_entry.timestamp for r in events
                     if r.event_log_entry.dagster_event_type == dg.DagsterEventType.RUN_START)
    body = max(len(r.event_log_entry.to_json()) for r in events
               if r.event_log_entry.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION)
    print(json.dumps({"wall": wall, "cpu": cpu, "event_bytes": body,
                      "before_run_start": run_start - epoch, "events": len(events), "planned": planned, "materialized": done,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "storage": type(instance.event_log_storage).__name__}))


def storage_cost(events: int = 2000, rounds: int = 4) -> None:
    """CPU per materialisation event in the shipped event log alone (serialise, insert, tags, asset row), for a bars
    partition's event with and without the planner keys; median of `rounds`, the two shapes interleaved."""
    import shutil
    import statistics

    from dagster._core.events import DagsterEvent, StepMaterializationData
    from dagster._core.events.log import EventLogEntry
    from dagster_shared.serdes import serialize_value

    def batch(with_keys: bool, run_id: str) -> list[EventLogEntry]:
        out = []
        for i in range(events):
            metadata = {"dagster/row_count": dg.MetadataValue.int(252), "first_ts": dg.MetadataValue.timestamp(1.7e9),
                        "last_ts": dg.MetadataValue.timestamp(1.73e9), **(PLANNER_KEYS if with_keys else {})}
            tags = {"dagster/code_version": run_id, "dagster/data_version": "0" * 64,
                    "dagster/partition/date": "2020-01-01", "dagster/partition/symbol": f"S{i:05d}"}
            event = DagsterEvent(event_type_value="ASSET_MATERIALIZATION", job_name="sync", step_key="bars", pid=1,
                                 event_specific_data=StepMaterializationData(dg.AssetMaterialization(
                                     asset_key="bars", partition=f"2020-01-01|S{i:05d}", metadata=metadata, tags=tags)),
                                 message="Materialized value bars.", logging_tags={"run_id": run_id, "step_key": "bars"})
            out.append(EventLogEntry(user_message=event.message or "", level=10, job_name="sync", run_id=run_id,
                                     error_info=None, timestamp=time.time(), step_key="bars", dagster_event=event))
        return out

    home = tempfile.mkdtemp()
    Path(home, "dagster.yaml").write_text(_instance_yaml("batching", Path(home)))
    costs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with dg.DagsterInstance.from_config(home) as instance:
        for round_ in range(rounds):
            for with_keys in (True, False):
                entries = batch(with_keys, f"run{round_}{with_keys}")
                cpu = time.process_time()
                for entry in entries:
                    serialize_value(entry)
                serialised = time.process_time() - cpu
                cpu = time.process_time()
                for start in range(0, events, 1000):
                    instance.event_log_storage.store_event_batch(entries[start:start + 1000])
                costs[with_keys].append((serialised / events * 1000, (time.process_time() - cpu) / events * 1000))
    shutil.rmtree(home, ignore_errors=True)
    for with_keys, label in ((True, "planner keys in the event (before)"), (False, "planner keys as run tags (now)")):
        size = len(serialize_value(batch(with_keys, "r")[0]))
        print(f"  event log alone, {label:<36} serialise {statistics.median(c[0] for c in costs[with_keys]):.3f} ms, "
              f"store (serialise included) {statistics.median(c[1] for c in costs[with_keys]):.3f} ms CPU per event; "
              f"{size:,} bytes")


def main() -> None:
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    partitions = int(numbers[0]) if numbers else 1000
    shipped_only = "--shipped" in sys.argv[1:]
    print(f"Dagster bookkeeping of one range run over {partitions} partitions (no-op asset body)")
    pg = os.environ.get("JUTSU_BENCH_POSTGRES_URL") or os.environ.get("JUTSU_TEST_POSTGRES_URL")
    walls: dict[str, float] = {}
    cpus: dict[str, float] = {}
    load = os.getloadavg()
    print(f"  load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs")
    for label, (env, kind, style) in CASES.items():
        if shipped_only and kind != "batching":
            continue
        if kind == "postgres" and not pg:
            print(f"  {label:<58} skipped: JUTSU_BENCH_POSTGRES_URL is not set")
            continue
        with tempfile.TemporaryDirectory() as home:
            Path(home, "dagster.yaml").write_text(_instance_yaml(kind, Path(home)))
            run_env = {**os.environ, "DAGSTER_HOME": home, **env}
            if kind == "postgres":
                from bench_sync import _fresh_postgres  # an empty database per case, as bench_sync's

                run_env["JUTSU_EVENTS_POSTGRES_URL"] = _fresh_postgres(str(pg))
            if "DAGSTER_EVENT_BATCH_SIZE" not in env:
                run_env.pop("DAGSTER_EVENT_BATCH_SIZE", None)
            done = subprocess.run([sys.executable, __file__, "--child", str(partitions), style], env=run_env,
                                  capture_output=True, text=True, check=False)
            if done.returncode:
                print(f"  {label:<58} FAILED:\n{done.stderr[-2000:]}")
                continue
            out = done.stdout.strip().splitlines()[-1]
        data = json.loads(out)
        per = data["wall"] / partitions * 1000
        walls[style], cpus[style] = data["wall"], data["cpu"]
        print(f"  {label:<58} {data['wall']:>7.1f} s ({data['cpu']:.1f} s CPU)  {per:>6.2f} ms/partition  "
              f"materialisation event {data['event_bytes']:,} bytes  "
              f"{data['before_run_start']:>6.1f} s before RUN_START  events={data['events']} "
              f"(planned {data['planned']}, materialised {data['materialized']})  peak RSS {data['rss_mb']:.0f} MB")


    if "run" in walls and "partition" in walls:
        print(f"  run totals in every partition / each partition's own facts: {walls['run'] / walls['partition']:.2f}x")
    storage_cost()
    if "keys" in walls and "partition" in walls:
        print(f"  planner keys in every partition / as run tags: {walls['keys'] / walls['partition']:.2f}x wall, "
              f"{cpus['keys'] / cpus['partition']:.2f}x CPU")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "none")
    else:
        main()
