"""The shipped instance's batching SQLite event log stores the same events as Dagster's own, in batches."""

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from jutsu_pipeline.instance_storage import BatchingSqliteEventLogStorage, JutsuInstance
from jutsu_pipeline_tests.conftest import kill_at_pause

TEMPLATE = Path(__file__).parents[1] / "data" / "dagster_home" / "dagster.yaml"
PARTS = dg.MultiPartitionsDefinition({
    "date": dg.TimeWindowPartitionsDefinition(cron_schedule="0 0 1 1 *", start="2020-01-01", end="2025-01-01",
                                              fmt="%Y-%m-%d"),
    "symbol": dg.StaticPartitionsDefinition(["A", "B", "C", "D"]),
})
RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


@dg.asset(partitions_def=PARTS, backfill_policy=dg.BackfillPolicy.single_run())
def prices(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    if any(key.endswith("|D") for key in context.partition_keys):
        raise dg.Failure("D's source is broken")
    return dg.MaterializeResult(metadata={"keys": len(context.partition_keys)})


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "")  # so the variable is restored after the test...
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE")  # ...and unset now: the storage must set it
    shutil.copy(TEMPLATE, tmp_path / "dagster.yaml")  # no DAGSTER_HOME: the storage must use the folder given
    with dg.DagsterInstance.from_config(str(tmp_path)) as test_instance:
        yield test_instance


def test_range_runs_record_materialised_and_failed_partitions(instance) -> None:
    assert isinstance(instance, JutsuInstance)
    assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
    assert Path(instance.event_log_storage._base_dir) == Path(instance.root_directory) / "history" / "runs"  # noqa: SLF001
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "1000"
    ok = dg.materialize([prices], instance=instance, tags=dict(zip(RANGE, ("2020-01-01|A", "2024-01-01|C"))))
    assert ok.success
    events = instance.get_records_for_run(ok.run_id, limit=10_000).records
    kinds = [r.event_log_entry.dagster_event_type for r in events]
    # One planned event holds the run's 15 partitions (not one per partition); one materialisation each.
    [planned] = [r.event_log_entry.get_dagster_event() for r in events
                 if r.event_log_entry.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED]
    assert len(planned.event_specific_data.partitions_subset.get_partition_keys()) == 15
    assert kinds.count(dg.DagsterEventType.ASSET_MATERIALIZATION) == 15
    assert len(instance.get_materialized_partitions(prices.key)) == 15
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=prices.key, asset_partitions=["2022-01-01|B"]), limit=5).records
    assert [r.partition_key for r in records] == ["2022-01-01|B"]
    assert records[0].asset_materialization.metadata["keys"].value == 15
    # The asset's row points at the run's last materialisation (written once per batch, not per event).
    latest = instance.fetch_materializations(prices.key, limit=1, ascending=False).records[0]
    [entry] = instance.get_asset_records([prices.key])
    assert entry.asset_entry.last_materialization_record.storage_id == latest.storage_id
    assert entry.asset_entry.last_run_id == ok.run_id

    failed = dg.materialize([prices], instance=instance, raise_on_error=False,
                            tags=dict(zip(RANGE, ("2020-01-01|D", "2024-01-01|D"))))
    assert not failed.success
    status = instance.get_status_by_partition(prices.key, [f"{y}-01-01|D" for y in range(2020, 2025)], PARTS)
    assert set(status.values()) == {dg.AssetPartitionStatus.FAILED}
    assert len(instance.get_materialized_partitions(prices.key)) == 15
    ok_again = instance.get_status_by_partition(prices.key, ["2022-01-01|B"], PARTS)
    assert ok_again == {"2022-01-01|B": dg.AssetPartitionStatus.MATERIALIZED}


def _range_keys(first: str, last: str) -> list[str]:
    return PARTS.get_partition_keys_in_range(dg.PartitionKeyRange(first, last))


def test_a_range_run_s_partitions_are_in_progress_then_failed_when_it_is_killed(instance) -> None:
    """Partition status comes from the run's one planned event: in progress while the run lives, failed once
    it is failed (what run monitoring and `jutsu sync` do to a run whose process was killed), materialised
    by a later run; the rest of the asset is untouched."""
    job = dg.Definitions(assets=[prices]).resolve_implicit_global_asset_job_def()
    keys = _range_keys("2020-01-01|A", "2021-01-01|B")  # 2020 A-D, 2021 A-B: six partitions
    run = instance.create_run_for_job(job, tags=dict(zip(RANGE, (keys[0], keys[-1]))))  # planned, never started
    status = instance.get_status_by_partition(prices.key, [*keys, "2022-01-01|A"], PARTS)
    assert status == {**dict.fromkeys(keys, dg.AssetPartitionStatus.IN_PROGRESS), "2022-01-01|A": None}
    instance.report_run_failed(run, "the run's process was killed")
    status = instance.get_status_by_partition(prices.key, [*keys, "2022-01-01|A"], PARTS)
    assert status == {**dict.fromkeys(keys, dg.AssetPartitionStatus.FAILED), "2022-01-01|A": None}
    retry = _range_keys("2021-01-01|A", "2021-01-01|B")
    assert dg.materialize([prices], instance=instance, tags=dict(zip(RANGE, (retry[0], retry[-1])))).success
    status = instance.get_status_by_partition(prices.key, keys, PARTS)
    assert status == {**dict.fromkeys(keys[:4], dg.AssetPartitionStatus.FAILED),
                      **dict.fromkeys(retry, dg.AssetPartitionStatus.MATERIALIZED)}
    # The UI's "latest run" of a partition: the run whose one planned event holds it.
    latest = {k: instance.get_latest_planned_materialization_info(prices.key, k) for k in [*keys, "2022-01-01|A"]}
    assert {k: info.run_id for k, info in latest.items() if info} == {
        **dict.fromkeys(keys[:4], run.run_id), **dict.fromkeys(retry, _last_run(instance))}
    assert instance.get_latest_planned_materialization_info(prices.key).run_id == _last_run(instance)


def _last_run(instance: dg.DagsterInstance) -> str:
    return instance.get_runs(limit=1)[0].run_id


@dg.asset_check(asset=prices, blocking=True)
def prices_positive() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def _events_stored_one_by_one(instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> list:
    """The event types the storage is asked to store singly (not in a batch) from now on."""
    storage = instance.event_log_storage
    single: list[dg.DagsterEventType | None] = []
    store_event = storage.store_event

    def counting(event):  # noqa: ANN001, ANN202
        single.append(event.dagster_event_type)
        store_event(event)

    monkeypatch.setattr(storage, "store_event", counting)
    return single


@dg.asset(partitions_def=PARTS, backfill_policy=dg.BackfillPolicy.single_run())
def volumes(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """A second asset of the run, with its own metadata shapes per partition (a bars run's, and others)."""
    from jutsu_pipeline.assets.bars.assets import set_partition_metadata

    facts = {key: {"dagster/row_count": dg.MetadataValue.int(n), "first_ts": dg.MetadataValue.timestamp(1.7e9 + n),
                   **({"empty_because": dg.MetadataValue.text("listed later: «ß»")} if n % 3 else
                      {"ratio": dg.MetadataValue.float(n / 7), "url": dg.MetadataValue.url("https://x/é")})}
             for n, key in enumerate(context.partition_keys)}
    set_partition_metadata(context, context.assets_def.key, context.partition_keys, facts)
    for key in context.partition_keys[:3]:  # observations share the batch (tags: one indexed, one not)
        context.log_event(dg.AssetObservation(asset_key=context.assets_def.key, partition=key, metadata={"n": 1},
                                              tags={"dagster/data_version": key.upper(), "source": "files"}))
    return dg.MaterializeResult(metadata={"run": dg.MetadataValue.json({"keys": len(facts)})})


def _tables(base_dir: Path, run_id: str) -> dict[str, list]:
    import sqlite3

    tables = {}
    for shard, names in (("index", ("event_logs", "asset_event_tags", "asset_keys")), (run_id, ("event_logs",))):
        with sqlite3.connect(base_dir / f"{shard}.db") as con:
            for name in names:
                cursor = con.execute(f"SELECT * FROM {name} ORDER BY id")  # noqa: S608
                columns = [c[0] for c in cursor.description]
                tables[f"{shard}:{name}"] = [  # create_timestamp: the insert's wall clock (a server default)
                    {c: v for c, v in zip(columns, row, strict=True) if c != "create_timestamp"} for row in cursor]
    return tables


def test_batched_rows_are_the_rows_dagster_s_own_store_event_writes(instance, tmp_path: Path) -> None:
    """A batch of a run's materialisations (two assets, several metadata shapes) leaves the event rows (run
    shard and index, with their ids), indexed tags and asset rows that Dagster's SQLite storage writes
    storing the same events one by one; each event's JSON is `serialize_value`'s."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    from dagster_shared.serdes import serialize_value

    from jutsu_pipeline.instance_storage import serialised

    ok = dg.materialize([prices, volumes], instance=instance, tags=dict(zip(RANGE, ("2020-01-01|A", "2024-01-01|C"))))
    kinds = (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_OBSERVATION)
    events = [e for e in instance.all_logs(ok.run_id) if e.dagster_event_type in kinds]
    assert len(events) == 33 and len({e.get_dagster_event().asset_key for e in events}) == 2
    odd = events[3]._replace(dagster_event=events[3].get_dagster_event()._replace(message="another shape"))
    mixed = [*events[:3], odd, *events[4:]]
    assert serialised(mixed) == [serialize_value(e) for e in mixed]

    dagster_own = SqliteEventLogStorage(str(tmp_path / "dagster"))
    for event in events:
        dagster_own.store_event(event)
    batching = BatchingSqliteEventLogStorage(str(tmp_path / "batching"), batch_size=0)
    batching.store_event_batch(events)
    expected, stored = _tables(tmp_path / "dagster", ok.run_id), _tables(tmp_path / "batching", ok.run_id)
    # Materialisations: data version and 2 dims; observations: the data version.
    assert len(stored["index:event_logs"]) == 33 and len(stored["index:asset_event_tags"]) == 93
    assert stored == expected
    # A second batch continues the index's ids after the rows already there.
    dagster_own.store_event(events[0])
    batching.store_event_batch(events[:1] + events[:1])
    dagster_own.store_event(events[0])
    assert _tables(tmp_path / "batching", ok.run_id) == _tables(tmp_path / "dagster", ok.run_id)
    dagster_own.dispose()
    batching.dispose()


KILLED_WRITER = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from dagster_shared.serdes import deserialize_value
from jutsu_pipeline import instance_storage

def pause(*_):
    Path({marker!r}).write_text(str(os.getpid()))
    time.sleep(600)

events = deserialize_value(Path({events!r}).read_text())
storage = instance_storage.BatchingSqliteEventLogStorage({base!r}, batch_size=0)
storage.store_event_batch(events)  # the first batch, committed
if {point!r} == "in_transaction":  # the second batch inserted into the index, nothing committed
    tag_rows = instance_storage._tag_rows
    instance_storage._tag_rows = lambda *args: (pause(), tag_rows(*args))[1]
storage.store_event_batch(events)
pause()  # committed (synchronous=NORMAL: in the WAL, not yet fsynced)
"""


@pytest.mark.parametrize("point", ["in_transaction", "after_commit"])
def test_a_writer_killed_mid_batch_leaves_whole_batches_and_no_lock(instance, tmp_path: Path, point: str) -> None:
    """SIGKILL of a process storing a batch: the shards hold whole batches (none of the killed one if it was not
    committed, all of it if it was), pass SQLite's integrity check, and the next writer is not blocked."""
    import sqlite3

    from dagster_shared.serdes import serialize_value

    ok = dg.materialize([prices], instance=instance, tags=dict(zip(RANGE, ("2020-01-01|A", "2024-01-01|C"))))
    events = [e for e in instance.all_logs(ok.run_id) if e.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION]
    (tmp_path / "events.json").write_text(serialize_value(events))
    base, marker = tmp_path / "killed", tmp_path / "marker"
    script = KILLED_WRITER.format(repo=str(Path(__file__).parents[1]), marker=str(marker), events=str(tmp_path / "events.json"),
                                  base=str(base), point=point)
    kill_at_pause(script, marker, 120)

    def counts() -> list[int]:
        found = []
        for shard, table in (("index", "event_logs"), ("index", "asset_event_tags"), (ok.run_id, "event_logs")):
            with sqlite3.connect(base / f"{shard}.db") as con:
                assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
                found.append(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
        return found

    batches = 1 if point == "in_transaction" else 2
    assert counts() == [15 * batches, 45 * batches, 15 * batches]
    storage = BatchingSqliteEventLogStorage(str(base), batch_size=0)
    storage.store_event_batch(events)  # BEGIN IMMEDIATE gets the write lock: nothing of the killed writer holds it
    assert counts() == [15 * (batches + 1), 45 * (batches + 1), 15 * (batches + 1)]
    assert len(storage.get_materialized_partitions(prices.key)) == 15
    storage.dispose()


def test_planned_events_of_a_run_with_checks_are_batched(instance, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check's planned event beside the asset's must not send the run's materialisations one by one."""
    single = _events_stored_one_by_one(instance, monkeypatch)
    ok = dg.materialize([prices, prices_positive], instance=instance,
                        tags=dict(zip(RANGE, ("2020-01-01|A", "2024-01-01|C"))))
    assert ok.success
    kinds = [r.event_log_entry.dagster_event_type for r in instance.get_records_for_run(ok.run_id, limit=10_000).records]
    assert kinds.count(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED) == 1  # with the run's 15 partitions
    assert kinds.count(dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED) == 1
    assert kinds.count(dg.DagsterEventType.ASSET_MATERIALIZATION) == 15
    assert dg.DagsterEventType.ASSET_MATERIALIZATION not in single  # all went through the batch
    assert dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED in single  # the check's own path, kept in order
    assert len(instance.get_materialized_partitions(prices.key)) == 15
    evaluation = instance.event_log_storage.get_latest_asset_check_execution_by_key([prices_positive.check_key])
    assert evaluation[prices_positive.check_key].event.asset_check_evaluation.passed


POSTGRES_INSTANCE = """
run_storage: {module: dagster_postgres.run_storage, class: PostgresRunStorage,
              config: {postgres_url: {env: JUTSU_TEST_POSTGRES_URL}}}
event_log_storage: {module: jutsu_pipeline.instance_storage, class: BatchingPostgresEventLogStorage,
                    config: {postgres_url: {env: JUTSU_TEST_POSTGRES_URL}}}
schedule_storage: {module: dagster_postgres.schedule_storage, class: PostgresScheduleStorage,
                   config: {postgres_url: {env: JUTSU_TEST_POSTGRES_URL}}}
telemetry: {enabled: false}
"""


def test_postgres_event_log_stores_a_range_run_s_partitions_and_their_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.environ.get("JUTSU_TEST_POSTGRES_URL"):
        pytest.skip("JUTSU_TEST_POSTGRES_URL is not set: no Postgres server to test against (.ci/run starts one)")
    import uuid

    from jutsu_pipeline import instance_storage

    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "")
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE")  # the storage must set it
    (tmp_path / "dagster.yaml").write_text(POSTGRES_INSTANCE)
    key = f"prices_{uuid.uuid4().hex[:8]}"  # the database is shared: a key of this test's own

    @dg.asset(key=key, partitions_def=PARTS, backfill_policy=dg.BackfillPolicy.single_run())
    def own_prices(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"keys": len(context.partition_keys)})

    @dg.asset_check(asset=own_prices, blocking=True)
    def own_positive() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    from dagster_postgres.event_log.event_log import PostgresEventLogStorage

    def one_statement_per_batch(*_args: object) -> None:
        raise AssertionError("the batch went through dagster-postgres's one-INSERT-of-all-rows path")

    # Dagster stores a batch that raised one event at a time: counted below.
    monkeypatch.setattr(PostgresEventLogStorage, "prepare_insert_event_batch", one_statement_per_batch)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.event_log_storage, instance_storage.BatchingPostgresEventLogStorage)
        single = _events_stored_one_by_one(instance, monkeypatch)
        assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "1000"
        ok = dg.materialize([own_prices, own_positive], instance=instance,
                            tags=dict(zip(RANGE, ("2020-01-01|A", "2024-01-01|C"))))
        assert ok.success
        kinds = [r.event_log_entry.dagster_event_type
                 for r in instance.get_records_for_run(ok.run_id, limit=10_000).records]
        assert kinds.count(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED) == 1  # the run's 15 partitions
        assert kinds.count(dg.DagsterEventType.ASSET_MATERIALIZATION) == 15
        assert dg.DagsterEventType.ASSET_MATERIALIZATION not in single  # all went through the batch
        assert len(instance.get_materialized_partitions(own_prices.key)) == 15
        [entry] = instance.get_asset_records([own_prices.key])
        assert entry.asset_entry.last_run_id == ok.run_id
        # The batch's rows, ids and indexed tags as dagster-postgres writes them (one executemany here).
        records = instance.fetch_materializations(own_prices.key, limit=100).records
        assert entry.asset_entry.last_materialization_record.storage_id == max(r.storage_id for r in records)
        tagged = instance.event_log_storage.get_event_tags_for_asset(
            own_prices.key, filter_tags={"dagster/partition/symbol": "B"})
        assert len(tagged) == 5 and all(t["dagster/partition/symbol"] == "B" for t in tagged)
        evaluation = instance.event_log_storage.get_latest_asset_check_execution_by_key([own_positive.check_key])
        assert evaluation[own_positive.check_key].event.asset_check_evaluation.passed
        # Failed partitions of a failed (killed) range run are read from its one planned event, as on SQLite.
        job = dg.Definitions(assets=[own_prices]).resolve_implicit_global_asset_job_def()
        killed = instance.create_run_for_job(job, tags=dict(zip(RANGE, ("2024-01-01|D", "2024-01-01|D"))))
        instance.report_run_failed(killed, "the run's process was killed")
        status = instance.get_status_by_partition(own_prices.key, ["2024-01-01|D", "2023-01-01|A"], PARTS)
        assert status == {"2024-01-01|D": dg.AssetPartitionStatus.FAILED,
                          "2023-01-01|A": dg.AssetPartitionStatus.MATERIALIZED}


def test_postgres_batched_rows_are_the_rows_dagster_postgres_writes(instance, tmp_path: Path) -> None:
    """The Postgres batch (execute_values) leaves the rows, tags and asset row of dagster-postgres's own
    one-by-one store_event: each run stored both ways in the shared database, ids compared by rank (other
    test processes write to the same database meanwhile, so a run's ids need not be consecutive)."""
    if not os.environ.get("JUTSU_TEST_POSTGRES_URL"):
        pytest.skip("JUTSU_TEST_POSTGRES_URL is not set: no Postgres server to test against (.ci/run starts one)")
    import re
    import uuid

    import sqlalchemy as sa
    from dagster_postgres.event_log.event_log import PostgresEventLogStorage

    from jutsu_pipeline import instance_storage

    ok = dg.materialize([prices, volumes], instance=instance, tags=dict(zip(RANGE, ("2020-01-01|A", "2024-01-01|C"))))
    url = os.environ["JUTSU_TEST_POSTGRES_URL"]

    def stored(storage, store) -> list:  # noqa: ANN001 - the run's rows under a fresh run id, ids made relative
        run_id, prefix = str(uuid.uuid4()), f"t{uuid.uuid4().hex[:8]}"  # the database is shared: own run and keys
        events = [e._replace(run_id=run_id, dagster_event=e.get_dagster_event()._replace(
            event_specific_data=e.get_dagster_event().event_specific_data._replace(
                materialization=e.get_dagster_event().step_materialization_data.materialization._replace(
                    asset_key=dg.AssetKey([prefix, *e.get_dagster_event().asset_key.path])))))
            for e in instance.all_logs(ok.run_id) if e.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION]
        store(storage, events)
        with storage._engine.connect() as conn:  # noqa: SLF001
            rows = conn.execute(sa.text("SELECT * FROM event_logs WHERE run_id = :r ORDER BY id"), {"r": run_id}).mappings().all()
            first = rows[0]["id"]
            tags = conn.execute(sa.text("SELECT event_id, asset_key, key, value, event_timestamp FROM asset_event_tags "
                                        "WHERE event_id >= :f AND asset_key LIKE :p ORDER BY id"), {"f": first, "p": f'["{prefix}"%'}).all()
            assets = conn.execute(sa.text("SELECT asset_key, last_materialization, last_run_id FROM asset_keys "
                                          "WHERE asset_key LIKE :p ORDER BY asset_key"), {"p": f'["{prefix}"%'}).all()
        storage.delete_events(run_id)
        rank = {row["id"]: n for n, row in enumerate(rows)}
        rows = [{**row, "id": rank[row["id"]], "run_id": "R", "asset_key": row["asset_key"].replace(prefix, "P"),
                 "event": row["event"].replace(run_id, "R").replace(prefix, "P")} for row in rows]
        assets = [[re.sub(r'"storage_id": (\d+)', lambda m: f'"storage_id": {rank[int(m[1])]}',
                          str(v).replace(run_id, "R").replace(prefix, "P")) for v in asset] for asset in assets]
        return [rows, [(rank[tag[0]], *(str(v).replace(prefix, "P") for v in tag[1:])) for tag in tags], assets]

    own = PostgresEventLogStorage(url)
    batching = instance_storage.BatchingPostgresEventLogStorage(url)
    expected = stored(own, lambda storage, events: [storage.store_event(e) for e in events])
    batched = stored(batching, lambda storage, events: storage.store_event_batch(events))
    assert len(batched[0]) == 30 and len(batched[1]) == 90 and len(batched[2]) == 2
    assert batched == expected
    own.dispose()
    batching.dispose()


def _log_line(run_id: str, message: str):  # noqa: ANN202 - an EventLogEntry
    import time

    from dagster._core.events.log import EventLogEntry

    return EventLogEntry(error_info=None, level=20, user_message=message, run_id=run_id, timestamp=time.time(),
                         step_key="step", job_name="job", dagster_event=None)


def _pragma(storage: BatchingSqliteEventLogStorage, shard: str, name: str) -> int:
    import sqlalchemy as sa

    with storage._connect(shard) as conn:  # noqa: SLF001 - the connection a write of that shard uses
        return conn.execute(sa.text(f"PRAGMA {name}")).scalar_one()


def test_sqlite_event_log_reuses_its_connections_and_other_processes_see_every_event(instance) -> None:
    """A run's events go through one connection per shard in this process (not one per event); each is
    committed at once, so another instance on the same folder (the webserver, the daemon) reads them all."""
    import sqlalchemy as sa

    storage = instance.event_log_storage
    ok = dg.materialize([prices], instance=instance, tags=dict(zip(RANGE, ("2020-01-01|A", "2020-01-01|B"))))
    connects: list[str] = []
    engine = storage._shard_engine(ok.run_id)  # noqa: SLF001
    sa.event.listen(engine, "connect", lambda *_: connects.append("run"))
    for number in range(20):
        storage.store_event(_log_line(ok.run_id, f"line {number}"))
        # Another instance (its own connections) sees each line as soon as store_event returned.
        with dg.DagsterInstance.from_config(instance.root_directory) as other:
            messages = [e.user_message for e in other.all_logs(ok.run_id) if not e.is_dagster_event]
        assert messages[-1] == f"line {number}"
    assert connects == []  # the run shard's one connection, opened by the run, served all twenty
    # Every shard trades fsync-per-commit for WAL's NORMAL (a killed writer: test_a_writer_killed_mid_batch...).
    assert _pragma(storage, ok.run_id, "synchronous") == 1
    assert _pragma(storage, "index", "synchronous") == 1
    assert len(instance.get_materialized_partitions(prices.key)) == 2


def test_sqlite_event_log_opens_its_own_connections_after_a_fork_and_after_a_wipe(instance, monkeypatch) -> None:
    storage = instance.event_log_storage
    ok = dg.materialize([prices], instance=instance, tags=dict(zip(RANGE, ("2020-01-01|A", "2020-01-01|A"))))
    parent = storage._shard_engine(ok.run_id)  # noqa: SLF001
    monkeypatch.setattr(os, "getpid", lambda: -1)  # what a forked child sees: another process id
    child = storage._shard_engine(ok.run_id)  # noqa: SLF001
    assert child is not parent
    storage.store_event(_log_line(ok.run_id, "from the child"))
    assert [e.user_message for e in instance.all_logs(ok.run_id)][-1] == "from the child"
    # At most MAX_OPEN_SHARDS run shards stay open, the latest used.
    runs = [dg.materialize([prices], instance=instance, tags=dict(zip(RANGE, (k, k)))).run_id
            for k in ("2021-01-01|A", "2022-01-01|A", "2023-01-01|A", "2024-01-01|A", "2021-01-01|B")]
    assert [s for s in storage._jutsu_engines if s != "index"] == runs[-storage.MAX_OPEN_SHARDS:]  # noqa: SLF001
    instance.wipe()  # deletes the run shards' files: their connections are closed first
    again = dg.materialize([prices], instance=instance, tags=dict(zip(RANGE, ("2020-01-01|C", "2020-01-01|C"))))
    assert again.success
    assert instance.get_materialized_partitions(prices.key) == {"2020-01-01|C"}


def _schema(path: str) -> list:
    import sqlite3

    with sqlite3.connect(path) as con:  # tables, indexes and the alembic stamp Dagster's reads rely on
        return [con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall(),
                con.execute("SELECT version_num FROM alembic_version").fetchall(), con.execute("PRAGMA journal_mode").fetchall()]


def _page_size(path: str) -> int:
    import sqlite3

    with sqlite3.connect(path) as con:
        return con.execute("PRAGMA page_size").fetchone()[0]


def test_a_new_run_shard_is_a_copy_of_a_shard_dagster_initialised(instance, monkeypatch) -> None:
    """Run shards are copied from a template Dagster's own `_initdb` made once (same tables, indexes, revision,
    WAL, 8 KB pages); a shard another process made is used as it is, never replaced; the template is not a run."""
    storage = instance.event_log_storage
    first = dg.materialize([prices], instance=instance, tags=dict(zip(RANGE, ("2020-01-01|A", "2020-01-01|A"))))
    initdb_calls: list[object] = []
    own_initdb = BatchingSqliteEventLogStorage._initdb  # noqa: SLF001
    monkeypatch.setattr(BatchingSqliteEventLogStorage, "_initdb",
                        lambda self, engine, **kw: initdb_calls.append(engine) or own_initdb(self, engine, **kw))
    second = dg.materialize([prices], instance=instance, tags=dict(zip(RANGE, ("2020-01-01|B", "2020-01-01|B"))))
    assert initdb_calls == []  # the template already existed: the new shard is a copy
    assert storage.get_all_run_ids() and set(storage.get_all_run_ids()) == {first.run_id, second.run_id}
    reference = Path(storage._base_dir, "dagster_made.db")  # noqa: SLF001
    import sqlalchemy as sa

    own_initdb(storage, sa.create_engine(f"sqlite:///{reference}"))
    assert _schema(storage.path_for_shard(second.run_id)) == _schema(str(reference))
    for shard in (first.run_id, second.run_id, "index"):  # new files, the index of a new instance included
        assert _page_size(storage.path_for_shard(shard)) == storage.PAGE_SIZE == 8192
    reference.unlink()
    assert [e.dagster_event_type for e in instance.all_logs(second.run_id)][-1] == dg.DagsterEventType.RUN_SUCCESS
    # A shard that exists (another process made it and wrote to it) is not replaced by a copy.
    with dg.DagsterInstance.from_config(instance.root_directory) as other:
        other.event_log_storage.store_event(_log_line("made-elsewhere", "kept"))
    storage.store_event(_log_line("made-elsewhere", "and this"))
    assert [e.user_message for e in instance.all_logs("made-elsewhere")] == ["kept", "and this"]
    assert initdb_calls == []  # its revision is the template's: no alembic check either


def test_postgres_event_log_keeps_a_connection_and_survives_its_loss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dagster-postgres connected anew for every event; the batching event log keeps one connection per
    process, and a connection the server dropped (restart, idle timeout) is replaced, not an error."""
    if not os.environ.get("JUTSU_TEST_POSTGRES_URL"):
        pytest.skip("JUTSU_TEST_POSTGRES_URL is not set: no Postgres server to test against (.ci/run starts one)")
    import uuid

    import sqlalchemy as sa

    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    (tmp_path / "dagster.yaml").write_text(POSTGRES_INSTANCE)
    run_id = str(uuid.uuid4())
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        connects: list[int] = []
        sa.event.listen(storage._engine, "connect", lambda *_: connects.append(1))  # noqa: SLF001
        for number in range(10):
            storage.store_event(_log_line(run_id, f"line {number}"))
        assert len(connects) <= 1  # one connection for ten events (each still committed on its own)
        with storage._connect() as conn:  # noqa: SLF001 - the server drops the pooled connection
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with sa.create_engine(os.environ["JUTSU_TEST_POSTGRES_URL"], isolation_level="AUTOCOMMIT").connect() as admin:
            assert admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        # A connection is pinged before use once it has been idle `idle_ping_seconds` (here: always).
        monkeypatch.setattr(storage, "idle_ping_seconds", 0.0)
        storage.store_event(_log_line(run_id, "after the server dropped it"))
        assert len(connects) == 2  # the dead one replaced, once
        with dg.DagsterInstance.from_config(str(tmp_path)) as other:  # another process's view: all committed
            messages = [e.user_message for e in other.all_logs(run_id)]
        assert messages == [f"line {n}" for n in range(10)] + ["after the server dropped it"]
        storage.delete_events(run_id)


def test_latest_materialisation_per_partition_is_read_for_the_planner(instance, monkeypatch) -> None:
    """The planner's recorded bounds come from each partition's latest materialisation, whichever run and
    however many earlier ones (the daily close re-materialises the current window every day): its run's tags,
    or where the run has none, its own metadata (adopted partitions, older events)."""
    from jutsu_pipeline.status import _latest_per_partition

    @dg.asset(key="prices", partitions_def=PARTS, backfill_policy=dg.BackfillPolicy.single_run())
    def stamped(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        end = context.run.tags["end"]
        if end == "2024-01-09":  # a run without planner tags: the event's own metadata (as adoption writes it)
            return dg.MaterializeResult(metadata={"history_start": "2024-01-02", "history_end": end})
        context.instance.add_run_tags(context.run.run_id, {"jutsu/history_start": "2024-01-02", "jutsu/history_end": end})
        return dg.MaterializeResult()

    for end, (first, last) in [("2024-01-05", ("2024-01-01|A", "2024-01-01|D")),
                               ("2024-01-08", ("2024-01-01|A", "2024-01-01|B")),
                               ("2024-01-09", ("2024-01-01|B", "2024-01-01|B")),
                               ("2024-01-10", ("2023-01-01|A", "2023-01-01|A"))]:
        assert dg.materialize([stamped], instance=instance, tags={**dict(zip(RANGE, (first, last))), "end": end}).success
    keys = [f"2024-01-01|{s}" for s in "ABCD"] + ["2022-01-01|A"]  # the last one was never materialised
    read_whole: list[str] = []
    fetch = instance.fetch_materializations

    def counting(records_filter, **kwargs):  # noqa: ANN001, ANN202
        page = fetch(records_filter, **kwargs)
        read_whole.extend(str(r.partition_key) for r in page.records)
        return page

    monkeypatch.setattr(instance, "fetch_materializations", counting)
    found = _latest_per_partition(instance, stamped.key, keys)
    assert {k: m["history_end"] for k, m in found.items()} == {
        "2024-01-01|A": "2024-01-08", "2024-01-01|B": "2024-01-09", "2024-01-01|C": "2024-01-05",
        "2024-01-01|D": "2024-01-05"}
    assert read_whole == ["2024-01-01|B"]  # the others' runs hold the planner keys: events not deserialised
    assert _latest_per_partition(instance, stamped.key, []) == {}
