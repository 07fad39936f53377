"""The embedded (SQLite) instance's event log, tuned for backfills: Dagster's own
`SqliteEventLogStorage` (one WAL database per run plus the cross-run index) whose connections are
kept open per database (a small pool per shard) with `PRAGMA synchronous=NORMAL`. Selected in
`dagster.yaml.example`.

Why: a backfill records ~70 asset events per session (a materialization and its planned event for
each of 35 partitioned tables), and Dagster stores each one in two databases, opening and closing a
connection every time (NullPool). On this project's 2-core VM disk each commit then waited for an
fsync (10-15 ms) and each close checkpointed the WAL with another (about 11 ms): ~50 ms of disk waits
per event, so a decade backfill spent more time in fsync than in computing. Kept-open connections
checkpoint a run's database at most once a second (the UI's live run view watches that file for
changes; the index is left to SQLite's automatic checkpoints), and `NORMAL` is SQLite's
documented setting for WAL mode: the database stays consistent after any crash; a power loss (not
a killed process) can lose the last commits of the event log. The lake's own writes are fsynced by
`lake.py` regardless, and `storage: postgres` (`deploy/dagster.postgres.yaml`) is the choice where
that matters.

Batches (`store_event_batch`): a range run's planned events (one per asset per partition, at run
start) and each asset's materializations (one per partition) are sent by Dagster as batches when
`DAGSTER_EVENT_BATCH_SIZE` is set, which this storage sets (to `EVENT_BATCH_SIZE`, unless the
environment already has it). Dagster's SQLite storage would store a batch one event at a time
(~4 ms each: a transaction on the run's database, another on the index, an asset-key upsert and a
tag insert per event); here a batch is one multi-row insert per database, its tags in one insert
and the asset-key row updated once per asset and event kind (with the batch's last event, which is
what storing them one by one leaves there). The rows are the ones `store_event` writes; a batch of
anything else is stored one by one, as before. `dagster-postgres` does the same for its storage.

Range runs' check rows (`RangeRunCheckRows`): a partitioned asset check planned in a run of N
partitions gets N rows in `asset_check_executions`, one per partition, and Dagster stores the
planned event on each, carrying the run's whole partition subset; `trading_days` serializes its
270 holiday exclusions with it, so each row was ~28 KB (1.6 GB of a decade backfill's 2.6 GB
instance). A range run's check then reports one result without a partition, which Dagster wrote to
a new row while the N planned rows stayed PLANNED for good: per-partition check status (the UI's
partition health, `automation.UpstreamReady`) never saw a range run's check pass or fail. Here the
planned rows are written in one statement with a copy of the event without the subset (nothing
reads it off the row; the row's `partition` says which one it is), and the range's result is
written to every partition row that run planned: the check judged the range, and a failed blocking
check stopped everything downstream in that run, so each partition has that status.

Everything else is Dagster's class; the dagster pin (pyproject) keeps `_connect`'s contract and the
two asset-check writers' signatures.
"""

import os
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import sqlalchemy as db
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._serdes import ConfigurableClassData, serialize_value
from dagster_shared.record import replace
from sqlalchemy.engine import Connection, Engine

from alvh_pipeline.resources import enable_event_batches

SYNCHRONOUS = "NORMAL"
OPEN_SHARDS = 4  # the index plus the few runs a process writes at once; older ones are closed
BUSY_TIMEOUT_SECONDS = 30.0  # Dagster's own SQLITE_BUSY_TIMEOUT_SECONDS
CHECKPOINT_EVERY_SECONDS = 1.0  # a run's events reach its .db file (and the UI's watcher) this often
BATCHED = ASSET_EVENTS - {DagsterEventType.ASSET_FAILED_TO_MATERIALIZE}  # what `store_event` mirrors plainly


def _pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
    cursor.close()


class RangeRunCheckRows:
    """Asset-check rows of range runs (module doc). Mixed into a `SqlEventLogStorage`."""

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        planned = event.dagster_event.event_specific_data
        if planned.partitions_subset is None:
            return super()._store_asset_check_evaluation_planned(event, event_id)
        keys = planned.partitions_subset.get_partition_keys()
        row_event = event._replace(dagster_event=event.dagster_event._replace(
            event_specific_data=replace(planned, partitions_subset=None)))
        common = dict(asset_key=planned.asset_key.to_string(), check_name=planned.check_name, run_id=event.run_id,
                      execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
                      evaluation_event=serialize_value(row_event),
                      evaluation_event_timestamp=self._event_insert_timestamp(event),
                      evaluation_event_storage_id=event_id)
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), [{**common, "partition": k} for k in keys])

    def _update_asset_check_evaluation(self, event: EventLogEntry, event_id: int | None) -> None:
        evaluation = event.dagster_event.event_specific_data
        if evaluation.partition is None:
            table = AssetCheckExecutionsTable
            status = (AssetCheckExecutionRecordStatus.SUCCEEDED if evaluation.passed
                      else AssetCheckExecutionRecordStatus.FAILED)
            target = evaluation.target_materialization_data
            with self.index_connection() as conn:
                updated = conn.execute(table.update().where(db.and_(
                    table.c.asset_key == evaluation.asset_key.to_string(),
                    table.c.check_name == evaluation.check_name,
                    table.c.run_id == event.run_id,
                    table.c.partition.isnot(None),
                    table.c.execution_status == AssetCheckExecutionRecordStatus.PLANNED.value,
                )).values(
                    execution_status=status.value,
                    evaluation_event=serialize_value(event),
                    evaluation_event_timestamp=self._event_insert_timestamp(event),
                    evaluation_event_storage_id=event_id,
                    materialization_event_storage_id=target.storage_id if target else None,
                )).rowcount
            if updated:
                return None
        return super()._update_asset_check_evaluation(event, event_id)


class NormalSyncSqliteEventLogStorage(RangeRunCheckRows, SqliteEventLogStorage):
    """`SqliteEventLogStorage` with `PRAGMA synchronous=NORMAL` and range runs' check rows (module
    doc)."""

    @classmethod
    def config_type(cls) -> dict:
        return {"base_dir": dg.Field(dg.StringSource, is_required=False)}

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None) -> None:
        enable_event_batches()
        if base_dir is None:  # Dagster's default place, known once the instance registers (its own folder)
            self._deferred_inst_data = inst_data
            return
        super().__init__(base_dir, inst_data)

    def register_instance(self, instance: dg.DagsterInstance) -> None:
        if not hasattr(self, "_base_dir"):  # $DAGSTER_HOME/history/runs, as Dagster's default storage has it
            super().__init__(os.path.join(instance.root_directory, "history", "runs"), self._deferred_inst_data)
        super().register_instance(instance)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict
                          ) -> "NormalSyncSqliteEventLogStorage":
        return cls(base_dir=config_value.get("base_dir"), inst_data=inst_data)

    def _engine(self, shard: str) -> Engine:
        engines = self.__dict__.setdefault("_open_engines", OrderedDict())
        if shard in engines:
            engines.move_to_end(shard)
            return engines[shard]
        # one kept-open connection per shard (more only while one is nested), used under `_db_lock`
        engine = db.create_engine(self.conn_string_for_shard(shard), poolclass=db.pool.QueuePool, pool_size=1,
                                  max_overflow=4, connect_args={"timeout": BUSY_TIMEOUT_SECONDS,
                                                                "check_same_thread": False})
        db.event.listen(engine, "connect", _pragmas)
        engines[shard] = engine
        while len(engines) > OPEN_SHARDS:
            engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Dagster's `_connect` with a kept-open engine instead of a new NullPool engine per call
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn
                if shard != INDEX_SHARD_NAME and self._checkpoint_due(shard):
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def store_event_batch(self, events: list[EventLogEntry]) -> None:
        """The rows `store_event` writes for each event, in one transaction per database (module doc)."""
        run_id = events[0].run_id if events else None
        if not events or any(e.run_id != run_id or not e.is_dagster_event
                             or e.dagster_event_type not in BATCHED | ASSET_CHECK_EVENTS for e in events):
            return super().store_event_batch(events)
        rows = [self._event_to_row(e) for e in events]
        with self.run_connection(run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        assets = [(e, r) for e, r in zip(events, rows) if e.dagster_event_type in BATCHED]
        if assets:
            with self.index_transaction() as conn:
                ids = conn.execute(SqlEventLogStorageTable.insert().returning(
                    SqlEventLogStorageTable.c.id, sort_by_parameter_order=True), [r for _, r in assets]).scalars().all()
                self._store_asset_event_tags(conn, [e for e, _ in assets], ids)
                last = {}  # the asset-key row as storing them in order leaves it: each kind's last event
                for (e, _), i in zip(assets, ids):
                    last.pop((e.dagster_event.asset_key, e.dagster_event_type), None)
                    last[(e.dagster_event.asset_key, e.dagster_event_type)] = (e, i)
                for e, i in last.values():
                    self._store_asset_event(conn, e, i)
        for e, r in zip(events, rows):  # check planned events: a few per run, each with its partition rows
            if e.dagster_event_type in ASSET_CHECK_EVENTS:
                with self.index_connection() as conn:
                    event_id = conn.execute(SqlEventLogStorageTable.insert().values(**r)).inserted_primary_key[0]
                self.store_asset_check_event(e, event_id)

    def _checkpoint_due(self, shard: str) -> bool:
        last = self.__dict__.setdefault("_last_checkpoint", {})
        now = time.monotonic()
        if now - last.get(shard, 0.0) < CHECKPOINT_EVERY_SECONDS:
            return False
        last[shard] = now
        return True

    def dispose(self) -> None:
        with self._db_lock:
            for engine in self.__dict__.pop("_open_engines", {}).values():
                engine.dispose()
        super().dispose()
