"""Event-driven ingest (issue 10): `drop_folder_sensor` watches the `files` source's drop folder
(`source.files_root`, env ALVH_FILES_ROOT, read from the `source` resource like every run does) and
launches the `ingest` job over exactly the sessions that each new or changed vendor file covers.

What "changed" means: a file's fingerprint is its size, mtime_ns and the SHA-256 of its bytes. The
stat pair is the cheap test run on every tick; the digest is computed only when the stat changed and
is what decides. So a `touch`, a re-copy of the same bytes or a restored mtime launches nothing,
while an edit launches its sessions even when the size is unchanged, or the mtime lands on the same
coarse clock tick (size and mtime alone would miss both; a digest alone would read every file on
every tick). The run key carries the digest and the mtime of the files behind it, so an evaluation
repeated with the same cursor launches nothing twice, and a file edited back to an earlier version
still runs again.

Which sessions: those of the file's rows, read through `sources.files.read_file`, the parser (and
per-process cache) the raw assets use: the file is validated by the same rules, and a file it
refuses is logged with its message and skipped until it changes (the ingest run would fail the
same way). A file holding a whole table (`<table>.csv`) covers every session in it, so any change
re-ingests all of them; a vendor delivering day by day should drop `<table>/<day>.csv` files, each a
new file covering its day. Sessions after the last partition (a calendar delivered ahead) are left
to the nightly schedule; deleting a file changes nothing in the lake.

Runs: the changed files' sessions, grouped into contiguous stretches of partitions of at most
`SESSIONS_PER_BACKFILL_RUN` sessions, one run each (a single session by partition key, a stretch by
the partition-range tags, as `cli run` does). The first evaluation (no cursor) treats the folder as
delivered up to what the instance already holds: it runs only sessions that `raw/<table>` never
materialized, so starting the sensor over a folder `make run` already ingested launches nothing.

Robustness: a file modified less than `settle_seconds` ago (a copy may still be in progress), or
that changes while it is read, waits for a later tick; files are examined for at most
`budget_seconds` a tick (Dagster gives a sensor evaluation 60 s), the rest on the next one.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import pandas as pd

from alvh_pipeline.partitions import SESSIONS_PER_BACKFILL_RUN, trading_days
from alvh_pipeline.schemas import RAW_TABLES
from alvh_pipeline.sources import files
from alvh_pipeline.sources.resource import MarketSource

if TYPE_CHECKING:  # the job type is not exported at Dagster's top level
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

CURSOR_VERSION = 1
TRIGGER_TAG = "alvh/trigger"
FILES_TAG = "alvh/drop_files"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Change:
    """A new or changed file: where, its fingerprint, and the partition keys of its sessions."""

    path: str  # as listed under the folder (the cursor's key)
    name: str  # relative to the folder, for tags and logs
    table: str
    fingerprint: dict[str, Any]
    sessions: tuple[str, ...]


@dataclass(frozen=True)
class Scan:
    cursor: dict[str, dict[str, Any]]  # path -> fingerprint, every file seen and decided
    changes: list[Change]
    waiting: list[str]  # paths left for a later tick
    refused: list[str]  # FilesSourceError messages (name file, column, row; never content)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _stat(path: Path) -> tuple[int, int, float]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_mtime


def _listed(root: Path, refused: list[str]) -> dict[str, tuple[str, Path]]:
    out: dict[str, tuple[str, Path]] = {}
    for table in RAW_TABLES:
        try:
            out.update({str(p): (table, p) for p in files.table_files(root, table)})
        except files.FilesSourceError as exc:  # a link leaving the folder: that table's files wait for a fix
            refused.append(str(exc))
    return out


def _sessions(path: Path, table: str) -> tuple[str, ...]:
    frame = files.read_file(path, table)
    days = pd.DatetimeIndex(frame["date"]).normalize().unique().sort_values()
    return tuple(days.strftime("%Y-%m-%d"))


def scan(root: str | Path, previous: dict[str, dict[str, Any]], settle_seconds: float,
         budget_seconds: float, now: float | None = None) -> Scan:
    """Compare the folder with `previous` (path -> fingerprint): the new cursor and what changed."""
    now = time.time() if now is None else now
    refused: list[str] = []
    root = Path(root)
    listed = _listed(root, refused)
    cursor: dict[str, dict[str, Any]] = {}
    changes: list[Change] = []
    waiting: list[str] = []
    started = time.monotonic()
    for key in sorted(listed):
        table, path = listed[key]
        old = previous.get(key)
        try:
            size, mtime_ns, mtime = _stat(path)
        except OSError:  # gone between listing and stat
            continue
        if old and (old["table"], old["size"], old["mtime_ns"]) == (table, size, mtime_ns):
            cursor[key] = old  # unchanged by the cheap test: not read
            continue
        if now - mtime < settle_seconds or time.monotonic() - started > budget_seconds:
            waiting.append(key)
            if old:
                cursor[key] = old  # decided once settled
            continue
        try:
            digest = _digest(path)
            if _stat(path)[:2] != (size, mtime_ns):
                raise OSError("changed while read")
        except OSError:
            waiting.append(key)
            if old:
                cursor[key] = old
            continue
        fingerprint = {"table": table, "size": size, "mtime_ns": mtime_ns, "sha256": digest}
        if old and (old["table"], old["sha256"]) == (table, digest):
            cursor[key] = {**fingerprint, "ok": old["ok"]}  # same bytes (touched, re-copied): nothing to run
            continue
        try:
            sessions, ok = _sessions(path, table), True
        except files.FilesSourceError as exc:
            refused.append(str(exc))
            sessions, ok = (), False
        cursor[key] = {**fingerprint, "ok": ok}
        if ok:
            changes.append(Change(key, str(path.relative_to(root)), table, cursor[key], sessions))
    return Scan(cursor, changes, waiting, refused)


def stretches(keys: Iterable[str], partition_keys: Sequence[str],
              max_len: int = SESSIONS_PER_BACKFILL_RUN) -> list[tuple[str, str]]:
    """Sorted partition keys as (first, last) stretches of consecutive partitions, each at most
    `max_len` long (the layers' memory bound per run)."""
    position = {k: i for i, k in enumerate(partition_keys)}
    idx = sorted({position[k] for k in keys})
    out: list[tuple[str, str]] = []
    begin = 0
    for j in range(1, len(idx) + 1):
        if j == len(idx) or idx[j] != idx[j - 1] + 1 or j - begin == max_len:
            out.append((partition_keys[idx[begin]], partition_keys[idx[j - 1]]))
            begin = j
    return out


def _read_cursor(text: str | None) -> dict[str, dict[str, Any]] | None:
    if not text:
        return None
    data = json.loads(text)
    if data.get("version") != CURSOR_VERSION:
        return None  # another layout: start over, as on a first evaluation
    return data["files"]


def _write_cursor(entries: dict[str, dict[str, Any]]) -> str:
    return json.dumps({"version": CURSOR_VERSION, "files": entries}, sort_keys=True, separators=(",", ":"))


def _already_ingested(instance: dg.DagsterInstance, tables: Iterable[str]) -> dict[str, set[str]]:
    return {t: set(instance.get_materialized_partitions(dg.AssetKey(["raw", t]))) for t in set(tables)}


def run_requests(changes: Sequence[Change], keys_by_change: dict[str, set[str]],
                 partition_keys: Sequence[str]) -> list[dg.RunRequest]:
    """One run per stretch of the union of the changed files' sessions; the run key names the
    files' versions (digest and mtime) and the stretch, so it is stable across re-evaluations."""
    wanted = set().union(*keys_by_change.values()) if keys_by_change else set()
    if not wanted:
        return []
    used = [c for c in changes if keys_by_change.get(c.path)]
    versions = "\n".join(f"{c.path}|{c.fingerprint['sha256']}|{c.fingerprint['mtime_ns']}" for c in used)
    batch = hashlib.sha256(versions.encode()).hexdigest()[:16]
    names = ", ".join(sorted(c.name for c in used))
    tags = {TRIGGER_TAG: "drop_folder", FILES_TAG: names if len(names) <= 200 else names[:197] + "..."}
    out = []
    for first, last in stretches(wanted, partition_keys):
        run_key = f"drop:{batch}:{first}..{last}"
        if first == last:
            out.append(dg.RunRequest(run_key=run_key, partition_key=first, tags=tags))
        else:
            out.append(dg.RunRequest(run_key=run_key, tags={**tags, RANGE_START: first, RANGE_END: last}))
    return out


def drop_folder_sensor(job: UnresolvedAssetJobDefinition, minimum_interval_seconds: int = 60,
                       settle_seconds: float = 15.0, budget_seconds: float = 30.0) -> dg.SensorDefinition:
    """The sensor on the files source's drop folder, launching `job` (the `ingest` layer's)."""

    @dg.sensor(name="drop_folder", job=job, minimum_interval_seconds=minimum_interval_seconds,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="new or changed vendor files in the files source's folder -> ingest of exactly their "
                           "sessions (alvh_pipeline.sensors)")
    def drop_folder(context: dg.SensorEvaluationContext, source: MarketSource) -> dg.SensorResult | dg.SkipReason:
        if source.kind != "files":
            return dg.SkipReason(f"the source is {source.kind!r} (ALVH_SOURCE): this sensor watches the drop folder of "
                                 f"the 'files' source only")
        root = Path(source.files_root).absolute() if source.files_root else None
        if root is None or not root.is_dir():
            return dg.SkipReason(f"the files source's folder {source.files_root!r} (ALVH_FILES_ROOT) is not a "
                                 f"directory")
        previous = _read_cursor(context.cursor)
        result = scan(root, previous or {}, settle_seconds, budget_seconds)
        for message in result.refused:
            context.log.error(f"drop folder: refused, skipped until it changes: {message}")
        partition_keys = trading_days.get_partition_keys() if result.changes else []
        valid = set(partition_keys)
        done = _already_ingested(context.instance, (c.table for c in result.changes)) if previous is None else {}
        keys_by_change, later = {}, 0
        for change in result.changes:
            keys = {k for k in change.sessions if k in valid} - done.get(change.table, set())
            later += sum(k > partition_keys[-1] for k in change.sessions)
            keys_by_change[change.path] = keys
            context.log.info(f"drop folder: {'changed' if change.path in (previous or {}) else 'new'} {change.name}: "
                             f"{len(change.sessions)} sessions, {len(keys)} to ingest")
        requests = run_requests(result.changes, keys_by_change, partition_keys)
        cursor = _write_cursor(result.cursor)
        notes = ([f"{len(result.waiting)} file(s) still being written or left for the next tick"] * bool(result.waiting)
                 + [f"{len(result.refused)} file(s) refused (see the tick's log)"] * bool(result.refused)
                 + [f"{later} session(s) after the last partition, left to the nightly schedule"] * bool(later))
        if requests:
            return dg.SensorResult(run_requests=requests, cursor=cursor)
        what = "no new or changed vendor file" if not result.changes else "the changed files hold no session to ingest"
        return dg.SensorResult(skip_reason="; ".join([what, *notes]), cursor=cursor)

    return drop_folder
