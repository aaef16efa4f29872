"""A SQLite event log that really writes event batches: one transaction per shard instead of one
connection (engine, BEGIN, fsync) per event.

Dagster batches a range run's per-partition asset events when `DAGSTER_EVENT_BATCH_SIZE` > 0, but only
dagster-postgres implements `store_event_batch`; the SQLite storage loops over `store_event`, opening the
run and index shards for every event. The shipped data/dagster_home/dagster.yaml selects `JutsuInstance`
(docs/operations.md): a DagsterInstance whose default storage (no `storage:` block) is Dagster's SQLite
storage in $DAGSTER_HOME with this event log; any configured `storage:` (e.g. Postgres) wins.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
import sqlalchemy as sa
import yaml
from dagster._core.definitions.metadata import MetadataFieldSerializer
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, EVENT_TYPE_TO_PIPELINE_RUN_STATUS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.base import PlannedMaterializationInfo
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.sql import db
from dagster._core.storage.sqlalchemy_compat import db_select
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData
from dagster_shared.serdes import deserialize_value, serialize_value
from dagster_shared.serdes.serdes import _WHITELIST_MAP as WHITELIST_MAP
from sqlalchemy import create_engine
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, StaticPool

BATCH_ENV = "DAGSTER_EVENT_BATCH_SIZE"
DEFAULT_BATCH_SIZE = 1000


class PlannedSubsetsMixin:
    """One ASSET_MATERIALIZATION_PLANNED event per asset and run, holding the run's partition subset, instead
    of one per partition: a 10,500-partition range run wrote 10,500 planned rows before it started.

    Dagster's SQL storage derives failed and in-progress partitions (status cache, UI, automation, planner)
    from per-partition planned rows only; the reads below also expand the subset events, so a partition a
    range run planned and did not materialise is failed or in progress exactly as before. Older
    per-partition planned rows are still read as Dagster reads them.
    """

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return True

    def get_latest_asset_partition_materialization_attempts_without_materializations(
        self, asset_key: dg.AssetKey, after_storage_id: int | None = None
    ) -> Mapping[str, tuple[str, int]]:
        attempts = dict(super().get_latest_asset_partition_materialization_attempts_without_materializations(  # type: ignore[misc]
            asset_key, after_storage_id=after_storage_id))
        latest: dict[str, tuple[str, int]] = {}
        for event_id, run_id, subset in self._planned_subsets(asset_key, after_storage_id or 0, newest_first=False):
            for partition in subset.get_partition_keys():
                latest[partition] = (run_id, event_id)  # ascending ids: the last one wins
        if not latest:
            return attempts
        table = SqlEventLogStorageTable
        first = min(event_id for _, event_id in latest.values())
        materialized_query = db_select([table.c.partition, db.func.max(table.c.id)]).where(
            table.c.asset_key == asset_key.to_string(),
            table.c.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION.value,
            table.c.partition.is_not(None),
            table.c.id > first,
        ).group_by(table.c.partition)
        with self.index_connection() as conn:  # type: ignore[attr-defined]
            materialized = dict(conn.execute(materialized_query).fetchall())
        for partition, (run_id, event_id) in latest.items():
            if materialized.get(partition, 0) > event_id:
                continue  # materialised after it was planned
            if partition not in attempts or attempts[partition][1] < event_id:
                attempts[partition] = (run_id, event_id)
        return attempts

    def get_latest_planned_materialization_info(
        self, asset_key: dg.AssetKey, partition: str | None = None
    ) -> PlannedMaterializationInfo | None:
        """Also finds a partition's plan inside a run's subset event: the UI's "latest run" of a partition
        (and Dagster's other per-partition readers) filter planned rows by their partition column."""
        info = super().get_latest_planned_materialization_info(asset_key, partition)  # type: ignore[misc]
        if partition is None:
            return info  # the asset's latest planned event, subset or not: Dagster's own read is right
        for event_id, run_id, subset in self._planned_subsets(asset_key, info.storage_id if info else 0):
            if partition in subset:  # newest first: the first run planning it is the latest
                return PlannedMaterializationInfo(storage_id=event_id, run_id=run_id)
        return info

    def _planned_subsets(self, asset_key: dg.AssetKey, after_storage_id: int,
                         newest_first: bool = True) -> Iterator[tuple[int, str, Any]]:
        """(storage id, run id, partitions subset) of the asset's subset planned events after a storage id."""
        table = SqlEventLogStorageTable
        query = db_select([table.c.id, table.c.run_id, table.c.event]).where(
            table.c.asset_key == asset_key.to_string(),
            table.c.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value,
            table.c.partition.is_(None),
            table.c.id > after_storage_id,
        ).order_by(table.c.id.desc() if newest_first else table.c.id.asc())
        with self.index_connection() as conn:  # type: ignore[attr-defined]
            rows = conn.execute(query).fetchall()
        for event_id, run_id, body in rows:  # deserialised lazily: a caller may stop at the first match
            data = deserialize_value(body, EventLogEntry).get_dagster_event().event_specific_data
            subset = getattr(data, "partitions_subset", None)
            if subset is not None:
                yield event_id, run_id, subset


class ReusedSqliteConnections:
    """SqliteEventLogStorage's `_connect` without a new engine and connection per call.

    Dagster opens and closes a SQLite connection for every event and read; closing the last connection to a
    WAL database checkpoints it (writes the pages back and fsyncs): ~20 ms per event under load
    (bench_close.py). A process keeps one connection per shard it used recently (the index shard and the
    latest `MAX_OPEN_SHARDS` run shards); each call is still its own transaction, committed before it
    returns, so other processes see every event as before. A forked child opens its own connections.

    Every WAL shard is written with `synchronous=NORMAL` (fsynced at the next checkpoint, not per commit): a
    killed process loses nothing committed; an OS crash may drop the last commits whole, never corrupt the
    file, and a dropped materialisation only makes a stored partition sync again (docs/operations.md).
    """

    MAX_OPEN_SHARDS = 4  # run shards kept open besides the index shard (a process writes one run at a time)
    # A materialisation's row is ~2.1 KB: one per 4 KB page (SQLite's default), two or three per 8 KB page.
    # New shards (and a new instance's index) get 8 KB pages: a 10,500-partition run's shards take 64 MB
    # instead of 97, and its commits and checkpoints write that much less (bench_sync.py). Existing files keep theirs.
    PAGE_SIZE = 8192

    def _shard_engine(self, shard: str) -> Engine:
        engines: OrderedDict[str, Engine] = self.__dict__.setdefault("_jutsu_engines", OrderedDict())
        if self.__dict__.get("_jutsu_pid") != os.getpid():  # forked: the parent's connections are not ours
            engines.clear()
            self.__dict__["_jutsu_pid"] = os.getpid()
        engine = engines.get(shard)
        if engine is None:
            # One connection per shard, used under the storage's lock (so from any thread, one at a time).
            engine = create_engine(self.conn_string_for_shard(shard), poolclass=StaticPool,  # type: ignore[attr-defined]
                                   connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
            if shard not in self._initialized_dbs:  # type: ignore[attr-defined]
                if shard == INDEX_SHARD_NAME or not self._init_from_template(shard, engine):
                    self._initdb(engine)
                self._initialized_dbs.add(shard)  # type: ignore[attr-defined]
            with engine.connect() as conn:  # the pool's one connection keeps the setting
                if conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal":
                    conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
            engines[shard] = engine
            runs = [name for name in engines if name != INDEX_SHARD_NAME]
            for name in runs[:-self.MAX_OPEN_SHARDS]:
                engines.pop(name).dispose()
        else:
            engines.move_to_end(shard)
        return engine

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        """Dagster's, on a file that gets `PAGE_SIZE` pages when it is new (the size is fixed by its first write)."""
        path = engine.url.database
        if path and (not os.path.exists(path) or not os.path.getsize(path)):
            with engine.connect() as conn:
                conn.exec_driver_sql(f"PRAGMA page_size={self.PAGE_SIZE}")
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")  # what Dagster sets; writes the first page
        super()._initdb(engine, for_index_shard=for_index_shard)  # type: ignore[misc]

    def _init_from_template(self, shard: str, engine: Engine) -> bool:
        """A new run shard is a copy of an empty one made once per instance and Dagster version; a shard at the
        template's revision is taken as it is. Dagster's `_initdb` commits each CREATE on its own and loads
        alembic's scripts: 0.1-0.3 s of every process that opens a run's shard (py-spy, bench_close.py).
        False (no template, an older or half-made shard): Dagster's `_initdb` runs."""
        path, template = self.path_for_shard(shard), self._shard_template()  # type: ignore[attr-defined]
        if template is None:
            return False
        if not os.path.exists(path):
            copy = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"  # own per process and thread
            shutil.copyfile(template, copy)
            try:
                os.link(copy, path)  # appears whole, and never replaces a shard another process just made
            except FileExistsError:
                pass
            finally:
                os.unlink(copy)
        return _revision(engine) == _revision_of(template)

    def _shard_template(self) -> str | None:
        """An empty run shard made by Dagster's own `_initdb` (not named *.db: Dagster lists run shards so)."""
        template = os.path.join(self._base_dir, f".run_shard_template-{dg.__version__}-{self.PAGE_SIZE}.sqlite")  # type: ignore[attr-defined]
        if not os.path.exists(template):
            made = f"{template}.{os.getpid()}.{threading.get_ident()}.tmp"
            engine = create_engine(f"sqlite:///{made}", poolclass=NullPool)
            self._initdb(engine)
            engine.dispose()
            if os.path.exists(f"{made}-wal"):  # not checkpointed into the file: do not copy it (nor leave it)
                for leftover in (made, f"{made}-wal", f"{made}-shm"):
                    if os.path.exists(leftover):
                        os.unlink(leftover)
                return None
            os.replace(made, template)  # the same bytes whichever process wins
        return template

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock, self._transaction(shard) as conn:  # type: ignore[attr-defined]
            yield conn

    @contextmanager
    def _transaction(self, shard: str) -> Iterator[Connection]:
        """A transaction on the shard's connection, committed on exit; the caller holds `_db_lock`."""
        with self._shard_engine(shard).connect() as conn, conn.begin():
            yield conn

    def _close_shards(self) -> None:
        with self._db_lock:  # type: ignore[attr-defined]
            for engine in self.__dict__.pop("_jutsu_engines", {}).values():
                engine.dispose()

    def wipe(self) -> None:
        self._close_shards()  # the run shards' files are deleted
        super().wipe()  # type: ignore[misc]

    def dispose(self) -> None:
        self._close_shards()
        super().dispose()  # type: ignore[misc]


class BatchingSqliteEventLogStorage(ReusedSqliteConnections, PlannedSubsetsMixin, SqliteEventLogStorage):
    """SqliteEventLogStorage whose `store_event_batch` stores asset events of one run in one
    transaction per shard (same rows as `store_event`, so reads are unchanged)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(base_dir, inst_data=inst_data)
        # The instance reads this variable per event: set here, every process using the instance batches.
        if batch_size > 0:
            os.environ.setdefault(BATCH_ENV, str(batch_size))

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"base_dir": dg.StringSource,
                "batch_size": dg.Field(int, default_value=DEFAULT_BATCH_SIZE, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: Mapping[str, Any]) -> BatchingSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        # A run's planned events mix one ASSET_MATERIALIZATION_PLANNED per partition with a few
        # ASSET_CHECK_EVALUATION_PLANNED events: batch each consecutive stretch of plain asset events, store
        # the rest one by one, in order (one stray check event must not send 10,000 partitions down the slow path).
        run_ids = {e.run_id for e in events}
        if len(run_ids) != 1:
            super().store_event_batch(events)
            return
        stretch: list[EventLogEntry] = []
        for event in events:
            if _batchable(event):
                stretch.append(event)
                continue
            self._store_asset_events(stretch)
            stretch = []
            self.store_event(event)
        self._store_asset_events(stretch)

    def _store_asset_events(self, events: Sequence[EventLogEntry]) -> None:
        """Plain asset events of one run: the rows `store_event` writes, one transaction per shard.

        The sqlite3 driver's executemany, not SQLAlchemy's (its per-row parameter processing, and RETURNING
        batched into multi-row INSERTs, were ~40% of the batch: py-spy of a 10,500-partition first sync). The
        index shard's ids are taken under BEGIN IMMEDIATE, which holds SQLite's write lock from the start:
        nobody else inserts until COMMIT, and SQLite gives a row without an id max(id) + 1, so the batch's ids
        are the range after the table's max; the check below proves it before anything is committed."""
        if len(events) < 2:
            for event in events:
                self.store_event(event)
            return
        rows = _event_rows(self, events, _sqlite_timestamp)
        # Index first and committed last: a failed batch leaves neither shard with rows Dagster's one-by-one
        # retry (EventMethods.handle_new_event) would store again.
        with self._db_lock, self._transaction(INDEX_SHARD_NAME) as conn, self._transaction(events[0].run_id) as run:
            index: Any = conn.connection.driver_connection
            index.execute("BEGIN IMMEDIATE")
            first = index.execute("SELECT coalesce(max(id), 0) + 1 FROM event_logs").fetchone()[0]
            index.executemany(_INSERT_EVENT, rows)
            last = index.execute("SELECT last_insert_rowid()").fetchone()[0]
            if last != first + len(rows) - 1:
                raise DagsterInvariantViolationError(f"event ids {first}..{last} for {len(rows)} events")
            event_ids = range(first, last + 1)
            index.executemany(_INSERT_TAG, _tag_rows(self, events, event_ids, rows))
            for event, event_id in _latest_of_each(events, event_ids, rows):
                self._store_asset_event(conn, event, event_id)
            run.connection.driver_connection.executemany(_INSERT_EVENT, rows)  # type: ignore[union-attr]


_EVENT_COLUMNS = "event_logs (run_id, event, dagster_event_type, timestamp, step_key, asset_key, partition)"
_TAG_COLUMNS = "asset_event_tags (event_id, asset_key, key, value, event_timestamp)"
_INSERT_EVENT = f"INSERT INTO {_EVENT_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_TAG = f"INSERT INTO {_TAG_COLUMNS} VALUES (?, ?, ?, ?, ?)"
# A TIMESTAMP as SQLAlchemy's SQLite dialect stores it ("2026-12-02 10:14:38.825934"), which Dagster's reads parse.
_sqlite_timestamp = SqlEventLogStorageTable.c.timestamp.type.dialect_impl(sqlite_dialect()).bind_processor(sqlite_dialect())


def _event_rows(storage: Any, events: Sequence[EventLogEntry], stamp: Any = None) -> list[tuple]:
    """Each event's `_EVENT_COLUMNS`, the values Dagster's `_event_to_row` gives them (`stamp` adapts the timestamp)."""
    rows: list[tuple] = []
    keys: dict[Any, str] = {}  # an asset key's JSON, made once per batch
    for event, body in zip(events, serialised(events), strict=True):
        dagster_event = event.get_dagster_event()
        asset_event = _asset_event(dagster_event)
        asset_key, partition = (dagster_event.asset_key, dagster_event.partition) if asset_event is None \
            else (asset_event.asset_key, asset_event.partition)
        key = keys.get(asset_key) or keys.setdefault(asset_key, asset_key.to_string())  # type: ignore[union-attr]
        timestamp = storage._event_insert_timestamp(event)  # noqa: SLF001
        rows.append((event.run_id, body, dagster_event.event_type_value, stamp(timestamp) if stamp else timestamp,
                     dagster_event.step_key, key, partition))
    return rows


def _tag_rows(storage: Any, events: Sequence[EventLogEntry], event_ids: Sequence[int], rows: Sequence[tuple]) -> list[tuple]:
    """`_TAG_COLUMNS` of the events' indexed tags, as Dagster's `_store_asset_event_tags` writes them."""
    indexed: dict[frozenset[str], set[str]] = {}  # the names the storage indexes, asked once per set of tag names
    out = []
    for event_id, event, row in zip(event_ids, events, rows, strict=True):
        asset_event = _asset_event(event.get_dagster_event())
        if asset_event is None:
            out += [(event_id, row[5], key, value, row[3]) for key, value in storage._tags_for_asset_event(event).items()]  # noqa: SLF001
            continue
        tags = asset_event.tags or {}
        names = frozenset(tags)
        if names not in indexed:
            indexed[names] = storage.get_asset_tags_to_index(set(names))
        out += [(event_id, row[5], key, value, row[3]) for key, value in tags.items() if key in indexed[names]]
    return out


def _asset_event(dagster_event: Any) -> Any:
    """The AssetMaterialization or AssetObservation a materialisation or observation event carries, else None.
    Read off the event's data: Dagster's `asset_key`, `partition` and `_tags_for_asset_event` convert the event
    type and format an error message on every call, a fifth of a batch's storing (py-spy)."""
    if dagster_event.event_type_value == _MATERIALIZATION:
        return dagster_event.event_specific_data.materialization
    if dagster_event.event_type_value == _OBSERVATION:
        return dagster_event.event_specific_data.asset_observation
    return None


_MATERIALIZATION, _OBSERVATION = DagsterEventType.ASSET_MATERIALIZATION.value, DagsterEventType.ASSET_OBSERVATION.value


def _latest_of_each(events: Sequence[EventLogEntry], event_ids: Sequence[int],
                    rows: Sequence[tuple]) -> list[tuple[EventLogEntry, int]]:
    """The last event of each asset and kind, in order: an asset's row holds its latest event of each kind
    (the columns depend on the kind only), so writing these leaves it as writing every event would."""
    latest: dict[tuple[str, str], tuple[EventLogEntry, int]] = {}
    for event, event_id, row in zip(events, event_ids, rows, strict=True):
        latest.pop((row[5], row[2]), None)  # re-inserted: dict order is the order of each one's last event
        latest[(row[5], row[2])] = (event, event_id)
    return list(latest.values())


_MARKS = {name: f"\x00jutsu:{name}\x00" for name in ("timestamp", "partition", "tags")}  # strings no event holds
_METADATA = '"metadata_entries": '


def serialised(events: Sequence[EventLogEntry]) -> list[str]:
    """`serialize_value(event)` of each event, what a run's materialisations share serialised once per shape.

    They differ in timestamp, partition, tags and metadata only; serialising the rest again (step handle,
    logging tags, run, asset key) was most of their serialisation, the largest cost of storing them (py-spy).
    Each shape's first event is serialised whole and compared with its spliced text: when they differ (a change
    in Dagster's format), that shape's events are serialised whole. Other events are serialised whole."""
    texts: list[str] = []
    shape: EventLogEntry | None = None
    template: tuple[list[str], list[str]] | None = None
    entries: dict[tuple, str] = {}
    for event in events:
        dagster_event = event.get_dagster_event()
        data: Any = dagster_event.event_specific_data
        materialization = getattr(data, "materialization", None)
        if not isinstance(materialization, dg.AssetMaterialization):
            texts.append(serialize_value(event))
            continue
        marks: dict[str, Any] = _MARKS  # strings where a float and a mapping go: serdes packs them as they are
        shell = event._replace(timestamp=marks["timestamp"], dagster_event=dagster_event._replace(
            event_specific_data=data._replace(materialization=materialization._replace(
                partition=marks["partition"], tags=marks["tags"], metadata={}))))
        own = {"timestamp": event.timestamp, "partition": materialization.partition, "tags": materialization.tags,
               _METADATA: materialization.metadata}
        if shell == shape and template is not None:
            texts.append(_splice(template, own, entries))
            continue
        whole = serialize_value(event)
        if shell != shape:
            shape, template = shell, _template(serialize_value(shell))
            if template is not None and _splice(template, own, entries) != whole:
                template = None
        texts.append(whole)
    return texts


def _template(text: str) -> tuple[list[str], list[str]] | None:
    """A shell's JSON cut at its markers: (the text between them, the own field each gap takes)."""
    needles = {json.dumps(mark): name for name, mark in _MARKS.items()} | {f"{_METADATA}[]": _METADATA}
    if any(text.count(needle) != 1 for needle in needles):
        return None
    pieces, names, rest = [], [], text
    for needle, name in sorted(needles.items(), key=lambda item: text.index(item[0])):
        piece, _, rest = rest.partition(needle)
        pieces.append(piece)
        names.append(name)
    return [*pieces, rest], names


def _splice(template: tuple[list[str], list[str]], own: Mapping[str, Any], entries: dict[tuple, str]) -> str:
    pieces, names = template
    parts = [pieces[0]]
    for name, piece in zip(names, pieces[1:], strict=True):
        if name == _METADATA:  # a list of entries, as serdes packs AssetMaterialization.metadata
            parts.append(f"{_METADATA}[{', '.join(_entry(label, value, entries) for label, value in own[name].items())}]")
        else:
            parts.append(_encode(own[name]))  # a float, a string, str -> str tags: serdes packs them as they are
        parts.append(piece)
    return "".join(parts)


def _entry(label: str, value: Any, entries: dict[tuple, str]) -> str:
    """One metadata entry's JSON; kept for the batch when the value is one scalar field (a row count, a
    timestamp: most of a bars run's repeat), so equal values are packed once."""
    fields: tuple[str, ...] = getattr(type(value), "_fields", ())
    scalar = getattr(value, fields[0]) if len(fields) == 1 else None
    key = (label, type(value), repr(scalar)) if isinstance(scalar, (int, float, str)) else None
    text = entries.get(key) if key else None
    if text is None:
        text = _encode(MetadataFieldSerializer().pack({label: value}, WHITELIST_MAP, ""))[1:-1]
        if key:
            entries[key] = text
    return text


_encode = json.JSONEncoder(sort_keys=True).encode  # serdes' dumps (json.dumps with sort_keys), built once


def _revision(engine: Engine) -> str | None:
    """A shard's alembic revision; None before Dagster stamped it."""
    with engine.connect() as conn:
        try:
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except sa.exc.OperationalError:  # no table yet
            return None


@functools.cache
def _revision_of(template: str) -> str | None:
    return _revision(create_engine(f"sqlite:///{template}", poolclass=NullPool))


def _batchable(event: EventLogEntry) -> bool:
    """Asset materialisation/observation/planned events: rows in the event and asset tables only."""
    if event.dagster_event is not None and _asset_event(event.dagster_event) is not None:
        return True  # a materialisation or observation (the rest of a range run's batch): the test below, faster
    return (event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS
            and event.get_dagster_event().asset_key is not None
            and event.dagster_event_type not in ASSET_CHECK_EVENTS
            and event.dagster_event_type not in EVENT_TYPE_TO_PIPELINE_RUN_STATUS)


class BatchingSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (runs, events, schedules under `base_dir`) with the batching event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        # First: it creates a new instance's index shard (with its page size) before Dagster's own event log would.
        event_log = BatchingSqliteEventLogStorage(os.path.join(base_dir, "history", "runs", ""))
        super().__init__(base_dir, inst_data=inst_data)
        self._event_log_storage = event_log

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,  # ty: ignore[invalid-method-override]
                          config_value: Mapping[str, Any]) -> BatchingSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)


class JutsuInstance(dg.DagsterInstance):
    """A DagsterInstance whose default storage is `BatchingSqliteStorage` in the instance's folder."""

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> Mapping[str, ConfigurableClassData | None]:
        defaults = dict(InstanceRef.config_defaults(base_dir))
        defaults["storage"] = ConfigurableClassData(__name__, BatchingSqliteStorage.__name__,
                                                    yaml.dump({"base_dir": base_dir}, default_flow_style=False))
        return defaults


def __getattr__(name: str) -> Any:
    """`BatchingPostgresEventLogStorage`, built on first use (dagster-postgres is only needed with Postgres)."""
    if name == "BatchingPostgresEventLogStorage":
        return _batching_postgres_event_log()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


IDLE_PING_SECONDS = 1.0  # a pooled Postgres connection unused this long is pinged before it is handed out


def _ping_if_idle(storage: Any, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """SQLAlchemy's pre-ping, but only for a connection idle `idle_ping_seconds`: pinging before each of a
    run's events doubled their round trips. A dead connection is replaced (the pool retries the checkout)."""
    if time.monotonic() - record.info.get("jutsu_used", 0.0) < storage.idle_ping_seconds:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001 - any failure means the connection is unusable
        raise sa.exc.DisconnectionError(str(error)) from error


def _mark_used(_dbapi_connection: Any, record: Any) -> None:
    record.info["jutsu_used"] = time.monotonic()


@functools.cache
def _batching_postgres_event_log() -> type:
    from dagster_postgres.event_log.event_log import PostgresEventLogStorage
    from dagster_postgres.utils import create_pg_engine, pg_url_from_config

    class BatchingPostgresEventLogStorage(PlannedSubsetsMixin, PostgresEventLogStorage):
        """dagster-postgres's event log, which batches materialisations but wrote a range run's planned
        events (one per partition, before the run starts) one statement and commit each: here a run plans
        each asset in one event (the mixin). Configure it as the `event_log_storage` (docs/operations.md);
        it sets `DAGSTER_EVENT_BATCH_SIZE` so materialisations are batched in every process."""

        idle_ping_seconds = IDLE_PING_SECONDS

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            os.environ.setdefault(BATCH_ENV, str(DEFAULT_BATCH_SIZE))
            # dagster-postgres connects anew for every event and read (NullPool): ~20 ms at load 5 against
            # 0.7 ms pooled. Keep one connection per process (more while threads overlap), as dagster-postgres
            # does in the webserver; one idle for a while is pinged first (`_ping_if_idle`): a restarted
            # server or a dropped connection is survived.
            options = self._engine.url.query.get("options")
            self._engine.dispose()
            self._engine = create_pg_engine(self.postgres_url, self._token_provider, isolation_level="AUTOCOMMIT",
                                            pool_size=1, max_overflow=4, pool_recycle=3600,
                                            **({"connect_args": {"options": options}} if options else {}))
            sa.event.listen(self._engine, "checkout", functools.partial(_ping_if_idle, self))
            sa.event.listen(self._engine, "checkin", _mark_used)
            self._pool_pid = os.getpid()

        def _connect(self) -> Any:
            if getattr(self, "_pool_pid", os.getpid()) != os.getpid():  # forked: the parent's connections are not ours
                self._engine.dispose(close=False)
                self._pool_pid = os.getpid()
            return super()._connect()

        def dispose(self) -> None:
            super().dispose()
            self._engine.dispose()

        def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
            """dagster-postgres's batch write through psycopg2's execute_values, not SQLAlchemy (its per-row
            parameter processing was half of the batch's time, py-spy), with events serialised by `serialised`;
            the same rows, tags and asset-key update."""
            kinds = {event.get_dagster_event().event_type for event in events}
            plain = kinds in ({DagsterEventType.ASSET_MATERIALIZATION}, {DagsterEventType.ASSET_OBSERVATION})
            if not plain or any(e.get_dagster_event().is_asset_failed_to_materialize for e in events):
                super().store_event_batch(events)
                return
            from psycopg2.extras import execute_values  # type: ignore[import-untyped]

            rows = _event_rows(self, events)
            # One transaction: the rows, their tags and the asset row land together or not at all (Dagster then
            # stores the events one by one). RETURNING gives a multi-row INSERT's ids in the VALUES' order, as
            # dagster-postgres's own batch write relies on.
            with self.index_transaction() as conn, conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
                event_ids = [row[0] for row in execute_values(cursor, f"INSERT INTO {_EVENT_COLUMNS} VALUES %s RETURNING id",
                                                              rows, page_size=len(rows), fetch=True)]
                tags = _tag_rows(self, events, event_ids, rows)
                if tags:
                    execute_values(cursor, f"INSERT INTO {_TAG_COLUMNS} VALUES %s", tags, page_size=len(tags))
                for event, event_id in _latest_of_each(events, event_ids, rows):
                    self._store_asset_event(conn, event, event_id)

        @classmethod
        def from_config_value(cls, inst_data: ConfigurableClassData | None,
                              config_value: Mapping[str, Any]) -> BatchingPostgresEventLogStorage:
            return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                       should_autocreate_tables=config_value.get("should_autocreate_tables", True))

    BatchingPostgresEventLogStorage.__module__ = __name__
    BatchingPostgresEventLogStorage.__qualname__ = BatchingPostgresEventLogStorage.__name__
    return BatchingPostgresEventLogStorage
