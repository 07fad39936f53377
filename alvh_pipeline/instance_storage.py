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

Everything else is Dagster's class; the dagster pin (pyproject) keeps `_connect`'s contract.
"""

import os
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import sqlalchemy as db
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine

SYNCHRONOUS = "NORMAL"
OPEN_SHARDS = 4  # the index plus the few runs a process writes at once; older ones are closed
BUSY_TIMEOUT_SECONDS = 30.0  # Dagster's own SQLITE_BUSY_TIMEOUT_SECONDS
CHECKPOINT_EVERY_SECONDS = 1.0  # a run's events reach its .db file (and the UI's watcher) this often


def _pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
    cursor.close()


class NormalSyncSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` with `PRAGMA synchronous=NORMAL` (module doc)."""

    @classmethod
    def config_type(cls) -> dict:
        return {"base_dir": dg.Field(dg.StringSource, is_required=False)}

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None) -> None:
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
