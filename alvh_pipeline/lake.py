"""The Parquet lake: `<root>/<layer>/<table>/date=YYYY-MM-DD/part-0.parquet` (hive style, zstd).

- Root: a local path or `file://` URI (default `./data_lake`), or `s3://bucket/prefix` for an
  object store (`resources.LakeResource`). Any other scheme is refused, rather than written to a
  local folder named `gs:`. Reads and listings go through one `pyarrow.fs` filesystem
  (`LocalFileSystem` or `S3FileSystem`); only the way a file is written differs by backend.
- Writes are all-or-nothing: locally a temp file, fsync, then `os.replace` (a reader never sees a
  half-written partition; a crash mid-write leaves the previous file intact). Temp files are staged
  in `<root>/_staging/<host>-<pid>-<start>/` as `*.tmp`, never beside the partitions: a process
  killed mid-write (kill -9, OOM) leaves them where no reader's glob of a table
  (`raw/spx_options/*/*.parquet` in DuckDB) can see them, and `clean_staging` (at every run's start,
  `recovery.recover`) removes the folders of processes that are gone.
  Inside `with lake.batch():` (a range of partitions) the temp files are written, synced once
  (`os.sync`: one flush for the batch instead of an fsync per file, which cost 5-15 ms each on a
  VM disk: ~0.1 s per ingested session), then renamed; an error before that removes them all;
  on S3 the bytes are serialized in memory first, then sent as one PUT (an object appears whole
  or not at all; no temp object, no rename; pyarrow switches to a multipart upload above its
  10 MiB part size, which S3 also publishes only on completion).
- Re-runs are byte-identical: fixed schema per table, no pandas index, no timestamps in metadata.
- A date range of a table is read in one pyarrow dataset scan with a partition filter.
- Every file the pipeline touches goes through this class (Parquet partitions, raw bytes with
  their digest, verdict JSON, documents, quarantine copies), so the backend is this class's concern.
- Locations returned (`partition_path`, `write_*`, ...) are a `pathlib.Path` on a local lake and
  an `s3://` URI string on S3: for metadata and messages; read them back through the methods.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from alvh_pipeline.processes import process_alive, process_start_time, this_host

DEFAULT_LAKE = "data_lake"
DateLike = str | date | pd.Timestamp  # a partition day: "YYYY-MM-DD", a date or a timestamp
Location = Path | str  # a lake file or folder: a local Path, or an s3:// URI string
PARTITION_FILE = "part-0.parquet"
STAGING = "_staging"  # <root>/_staging/<host>-<pid>-<start>/*.tmp: writes before their rename (module doc)
LEGACY_SWEPT = ".legacy-temp-swept"  # in STAGING: the lake was searched once for temp files staged in place
_HIVE = ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
_PARTITION_KEY = re.compile(r"^date=(\d{4}-\d{2}-\d{2})/" + re.escape(PARTITION_FILE) + "$")


class LakeReadError(RuntimeError):
    """A lake file exists but cannot be read (corrupt, truncated, wrong format)."""


class LakeUnreachable(RuntimeError):
    """An s3:// lake whose store does not answer (no such host, refused, no credentials)."""


class LakeWriteError(OSError):
    """A write failed (disk full, permissions, store refused); the message names the path, and
    nothing is left behind (no temp file, no partial object)."""


def normalize_root(uri: str) -> str:
    """The root of a lake URI: a plain path, a `file://` URI (as a path) or an `s3://` URI (as is);
    any other scheme is refused."""
    if uri.startswith("file://"):
        return uri[len("file://"):]
    scheme = _SCHEME.match(uri)
    if scheme and scheme.group(1) != "s3":
        raise ValueError(f"lake URI {uri!r}: scheme '{scheme.group(1)}://' is not supported (only a local path, "
                         f"file:// or s3:// URI); refusing rather than writing to a local folder named "
                         f"'{scheme.group(1)}:'")
    return uri


def staging_folder_name() -> str:
    """This process's staging folder: host, pid and start time, so `clean_staging` can tell a dead
    writer's folder from a live one's (a forked or spawned worker has its own)."""
    pid = os.getpid()
    name = _STAGING_NAMES.get(pid)
    if name is None:
        name = _STAGING_NAMES[pid] = f"{this_host()}-{pid}-{int(process_start_time(pid) or 0)}"
    return name


_STAGING_NAMES: dict[int, str] = {}


_TEMP_NAMES = itertools.count()


def _open_temp(staging: Path) -> tuple[int, str]:
    """(fd, name) of a new temp file in `staging`, this process's own folder (`staging_folder_name`):
    a sequence number is unique there, so no random name and existence check per file as mkstemp
    makes (0.2 ms: ~20 s of a decade's 140,000 files); mkstemp only if the name is taken. Mode
    0600, as mkstemp's."""
    tmp = os.path.join(staging, f"{next(_TEMP_NAMES)}.tmp")
    try:
        return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600), tmp
    except FileNotFoundError:  # the folder's first file (or it was removed): make it
        staging.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        pass
    return tempfile.mkstemp(suffix=".tmp", dir=staging)


def write_temp(path: Path, write: Callable[[BinaryIO], object], staging: Path, sync: bool = False) -> str:
    """Write through `write(fh)` into a temp file in the `staging` folder (fsync'd if `sync`); its
    name. On any failure the temp file is removed and the error names `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _open_temp(staging)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise LakeWriteError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: Path, write: Callable[[BinaryIO], object], staging: Path) -> Path:
    """Write through `write(fh)` into a temp file in `staging` (on the same filesystem), fsync, then
    rename over `path`. On any failure the temp file is removed and the error names `path`."""
    tmp = write_temp(path, write, staging, sync=True)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise LakeWriteError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def file_version(path: str | Path) -> tuple[int, int, int, int]:
    """(device, inode, size, mtime in ns): one version of a file under any of its names (a hard
    link per folder reads the same). Caches of parsed files key on it: the lake never rewrites a
    file in place (temp file + rename), so a new version always has a new inode or mtime."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


_BATCH_STATE = threading.local()


def _batches() -> dict[str, list[tuple[str, Path]]]:
    """The open `Lake.batch` of each root in this thread: its pending (temp file, final path) pairs."""
    if not hasattr(_BATCH_STATE, "by_root"):
        _BATCH_STATE.by_root = {}
    return _BATCH_STATE.by_root


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_str(date: DateLike) -> str:
    if isinstance(date, str) and _ISO_DAY.fullmatch(date):  # a partition key already: no Timestamp parse
        return date
    return pd.Timestamp(date).strftime("%Y-%m-%d")


def _partition_dir(layer: str, table: str, date: DateLike) -> str:
    return f"{layer}/{table}/date={_date_str(date)}"


def _write_parquet(arrow: pa.Table, **options: object) -> Callable[[BinaryIO], object]:
    def write(fh: BinaryIO) -> None:
        # encoded in memory, then one write: Arrow writes to a Python file object in many small calls
        # (a sixth of the cost of encoding a day's file); the bytes are the same
        sink = pa.BufferOutputStream()
        pq.write_table(arrow, sink, compression="zstd", store_schema=True, **options)
        fh.write(sink.getvalue())

    return write


@dataclass(frozen=True)
class Lake:
    root: str  # a local folder, or s3://bucket/prefix
    s3_endpoint: str | None = None  # an S3-compatible server (http://host:port); None: AWS's own

    def __post_init__(self) -> None:
        normalize_root(self.root)  # refuses an unsupported scheme however the Lake is built
        if self.on_s3 and not self.root[len("s3://"):].strip("/"):
            raise ValueError(f"lake URI {self.root!r}: name a bucket (s3://bucket/prefix)")

    @classmethod
    def from_uri(cls, uri: str, s3_endpoint: str | None = None) -> Lake:
        return cls(normalize_root(uri), s3_endpoint or None)

    # ---- where things are -------------------------------------------------------------------
    @property
    def on_s3(self) -> bool:
        return self.root.startswith("s3://")

    @property
    def uri(self) -> str:
        """The root as a reader outside the project would name it (absolute path or s3:// URI)."""
        return self.root.rstrip("/") if self.on_s3 else os.path.abspath(self.root)

    @cached_property
    def filesystem(self) -> pafs.FileSystem:
        """The pyarrow filesystem every read and listing goes through. S3 credentials and region
        come from the AWS SDK's own chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
        AWS_DEFAULT_REGION, ~/.aws, instance metadata); pyarrow does not read AWS_ENDPOINT_URL,
        so the endpoint is passed in. Delayed open: a small object is one PutObject at close."""
        if not self.on_s3:
            return pafs.LocalFileSystem()
        return pafs.S3FileSystem(endpoint_override=self.s3_endpoint, allow_delayed_open=True)

    def check_reachable(self) -> None:
        """An s3:// lake: one request to its store, no retries, short timeouts; LakeUnreachable in
        one line if it does not answer (the SDK's retries made a wrong endpoint a 21 s wait and a
        pyarrow traceback). A local lake: nothing to check."""
        if not self.on_s3:
            return
        probe = pafs.S3FileSystem(endpoint_override=self.s3_endpoint, connect_timeout=3, request_timeout=5,
                                  retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1))
        try:
            probe.get_file_info(self._fs_path("").rstrip("/"))
        except OSError as exc:
            where = self.s3_endpoint or "AWS's own endpoint (AWS_ENDPOINT_URL is not set)"
            detail = str(exc).split("; Details:")[0].strip()
            raise LakeUnreachable(f"lake {self.uri}: the object store at {where} does not answer: {detail}") from None

    def _fs_path(self, rel: str) -> str:
        """`rel` (posix, below the root) as a path of `filesystem`: `bucket/prefix/rel` on S3."""
        base = self.root[len("s3://"):].rstrip("/") if self.on_s3 else self.root
        return f"{base}/{rel}"

    def _location(self, rel: str) -> Location:
        return f"{self.uri}/{rel}" if self.on_s3 else Path(self.root) / rel

    def _is_file(self, rel: str) -> bool:
        return self.filesystem.get_file_info(self._fs_path(rel)).type == pafs.FileType.File

    def table_dir(self, layer: str, table: str) -> Location:
        return self._location(f"{layer}/{table}")

    def partition_path(self, layer: str, table: str, date: DateLike) -> Location:
        return self._location(f"{_partition_dir(layer, table, date)}/{PARTITION_FILE}")

    @property
    def staging_dir(self) -> Path:
        """Where this process stages its local writes (module doc)."""
        return Path(self.root) / STAGING / staging_folder_name()

    def clean_staging(self) -> list[str]:
        """Remove what killed writers left (a local lake; S3 has no temp objects): the staging
        folders of this host's processes that are gone, and, once per lake, temp files that older
        versions staged inside partition folders (`.tmp-*`). Returns what was removed."""
        if self.on_s3:
            return []
        staging, removed = Path(self.root) / STAGING, []
        host = this_host()
        for folder in sorted(staging.iterdir()) if staging.is_dir() else []:
            owner, _, rest = folder.name.rpartition("-")
            owner, _, pid = owner.rpartition("-")
            if not (folder.is_dir() and owner == host and pid.isdigit() and rest.isdigit()):
                continue  # another machine's writer (a shared lake), or not a staging folder
            if not process_alive(int(pid), started_by=float(rest) or None):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(str(folder))
        if not (staging / LEGACY_SWEPT).exists() and Path(self.root).is_dir():
            for folder, subfolders, files in os.walk(self.root):
                subfolders[:] = [d for d in subfolders if d != STAGING]
                for name in files:
                    if name.startswith(".tmp-"):
                        Path(folder, name).unlink(missing_ok=True)
                        removed.append(os.path.join(folder, name))
            staging.mkdir(parents=True, exist_ok=True)
            (staging / LEGACY_SWEPT).touch()
        return removed

    def exists(self, layer: str, table: str, date: DateLike) -> bool:
        return self._is_file(f"{_partition_dir(layer, table, date)}/{PARTITION_FILE}")

    # ---- the two ways a file is written ------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Local writes inside are published together at the end (module doc): temp files, one
        sync, then the renames in order; on an error inside, none is published. Nested batches
        join the outer one; on S3 every PUT is already atomic and this changes nothing."""
        batches = _batches()
        if self.on_s3 or self.root in batches:
            yield
            return
        pending: list[tuple[str, Path]] = []
        batches[self.root] = pending  # per root, so every Lake object of this root in this thread joins
        try:
            yield
            if pending:
                os.sync()
            for tmp, path in pending:
                os.replace(tmp, path)
        except BaseException:
            for tmp, _ in pending:
                Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            del batches[self.root]

    def _write(self, rel: str, write: Callable[[BinaryIO], object]) -> Location:
        """All-or-nothing write of `rel`: temp file + rename locally, one PUT on S3."""
        if not self.on_s3:
            pending = _batches().get(self.root)
            if pending is not None:
                path = Path(self.root) / rel
                pending.append((write_temp(path, write, self.staging_dir), path))
                return path
            return atomic_write_bytes(Path(self.root) / rel, write, self.staging_dir)
        where = self._location(rel)
        try:
            sink = io.BytesIO()
            write(sink)  # serialize first: a failure here sends nothing to the store
            data = sink.getvalue()
            with self.filesystem.open_output_stream(self._fs_path(rel)) as out:
                out.write(data)  # buffered (delayed open); the PUT happens at close
        except OSError as exc:
            raise LakeWriteError(f"cannot write {where}: {exc}") from exc
        return where

    def _read(self, rel: str) -> bytes:
        """The bytes of `rel` (FileNotFoundError if there is no such file)."""
        with self.filesystem.open_input_stream(self._fs_path(rel)) as fh:
            return fh.read()

    # ---- writes --------------------------------------------------------------------------
    def write_partition(
        self, layer: str, table: str, date: DateLike, frame: pd.DataFrame, schema: pa.Schema | None = None
    ) -> Location:
        """Atomically write one day's rows. With `schema`, columns are cast to it (the contract);
        without, the frame's own dtypes are kept (raw layer: as delivered)."""
        arrow = to_arrow(frame, schema)
        return self.write_arrow(layer, table, date, arrow)

    def write_arrow(self, layer: str, table: str, date: DateLike, arrow: pa.Table) -> Location:
        return self._write(f"{_partition_dir(layer, table, date)}/{PARTITION_FILE}",
                           _write_parquet(arrow, write_statistics=True, use_dictionary=True))

    # ---- unpartitioned tables (reports over a whole range) ----------------------------------
    def table_path(self, layer: str, table: str) -> Location:
        return self._location(f"{layer}/{table}/table.parquet")

    def write_table(self, layer: str, table: str, frame: pd.DataFrame) -> Location:
        """Atomically write a whole unpartitioned table (`<layer>/<table>/table.parquet`)."""
        return self._write(f"{layer}/{table}/table.parquet", _write_parquet(to_arrow(frame)))

    def read_table(self, layer: str, table: str) -> pd.DataFrame:
        try:
            data = self._read(f"{layer}/{table}/table.parquet")
        except FileNotFoundError:
            raise FileNotFoundError(f"{layer}/{table}: no table at {self.table_path(layer, table)}") from None
        return pq.read_table(pa.BufferReader(data)).to_pandas()

    # ---- documents beside the partitions (verdicts, reports, quarantine copies) --------------
    def document_path(self, layer: str, table: str, name: str) -> Location:
        return self._location(f"{layer}/{table}/{name}")

    def write_json(self, layer: str, table: str, name: str, payload: dict) -> Location:
        """Atomically write a JSON document (sorted keys: re-runs are byte-identical)."""
        data = json.dumps(payload, sort_keys=True).encode()
        return self._write(f"{layer}/{table}/{name}", lambda fh: fh.write(data))

    def read_json(self, layer: str, table: str, name: str) -> dict | None:
        """The document, or None if it was never written."""
        try:
            return json.loads(self._read(f"{layer}/{table}/{name}"))
        except FileNotFoundError:
            return None

    def write_document(self, layer: str, table: str, name: str, data: bytes) -> Location:
        return self._write(f"{layer}/{table}/{name}", lambda fh: fh.write(data))

    def read_document(self, layer: str, table: str, name: str) -> bytes:
        """A document's bytes; FileNotFoundError naming its location if it was never written."""
        try:
            return self._read(f"{layer}/{table}/{name}")
        except FileNotFoundError:
            raise FileNotFoundError(f"{layer}/{table}: no document {self.document_path(layer, table, name)}") from None

    def modified(self, layer: str, table: str, name: str) -> pd.Timestamp | None:
        """When a document was last written (UTC), None if it never was."""
        info = self.filesystem.get_file_info(self._fs_path(f"{layer}/{table}/{name}"))
        return None if info.type == pafs.FileType.NotFound else pd.Timestamp(info.mtime).tz_localize(None)

    def copy_partition(self, src_layer: str, table: str, date: DateLike, dest_layer: str,
                       name: str) -> Location | None:
        """Copy one partition's file, as it is, to `<dest_layer>/<table>/date=D/<name>` (quarantine)."""
        try:
            data = self._read(f"{_partition_dir(src_layer, table, date)}/{PARTITION_FILE}")
        except FileNotFoundError:
            return None
        return self._write(f"{_partition_dir(dest_layer, table, date)}/{name}", lambda fh: fh.write(data))

    def write_partition_text(self, layer: str, table: str, date: DateLike, name: str, text: str) -> Location:
        return self._write(f"{_partition_dir(layer, table, date)}/{name}", lambda fh: fh.write(text.encode()))

    def write_range(self, layer: str, table: str, frame: pd.DataFrame, dates: Iterable,
                    schema: pa.Schema | None = None) -> dict[str, Location]:
        """Split a multi-day frame by its `date` column into daily files (one per date in
        `dates`, an empty file where a day has no rows), each day's rows in the frame's order.
        The range is converted to Arrow once and each file written from a slice of it: the bytes
        of converting each day on its own (`same_as_own_conversion` says when a day must be)."""
        dates = list(dates)
        day = pd.to_datetime(frame["date"]).dt.normalize().to_numpy("datetime64[D]")
        in_order = bool((day[1:] >= day[:-1]).all())  # rows already by day (sorted by keys from date): no copy
        order = np.arange(len(day)) if in_order else np.argsort(day, kind="stable")
        want, by_day = pd.DatetimeIndex(pd.to_datetime(dates)).to_numpy("datetime64[D]"), day[order]
        first, last = np.searchsorted(by_day, want, "left"), np.searchsorted(by_day, want, "right")
        whole = range_arrow(frame, schema)
        if whole is not None:
            whole = (whole if in_order else whole.take(order)).combine_chunks()
        out, objects = {}, object_columns(frame)
        with self.batch():
            for d, a, b in zip(dates, first, last):
                piece = whole.slice(a, b - a) if whole is not None else None
                if piece is None or not same_as_own_conversion(piece, objects, schema):
                    piece = to_arrow(frame.iloc[order[a:b]], schema)
                out[_date_str(d)] = self.write_arrow(layer, table, d, piece)
        return out

    # ---- reads ---------------------------------------------------------------------------
    def read_partition_bytes(self, layer: str, table: str, date: DateLike) -> tuple[str, bytes]:
        """(sha256, bytes) of one partition file, from a single read."""
        try:
            data = self._read(f"{_partition_dir(layer, table, date)}/{PARTITION_FILE}")
        except FileNotFoundError:
            raise FileNotFoundError(f"{layer}/{table}: no partition {_date_str(date)} at "
                                    f"{self.partition_path(layer, table, date)}") from None
        return hashlib.sha256(data).hexdigest(), data

    def read_partition_with_digest(self, layer: str, table: str, date: DateLike) -> tuple[str, pd.DataFrame]:
        """(sha256, rows) of one partition from one read of its bytes: the digest is the digest
        of exactly the rows returned."""
        digest, data = self.read_partition_bytes(layer, table, date)
        try:
            return digest, pq.read_table(pa.BufferReader(data)).to_pandas()
        except (pa.ArrowInvalid, OSError) as exc:
            raise LakeReadError(f"{layer}/{table} partition {_date_str(date)}: cannot read "
                                f"{self.partition_path(layer, table, date)}: {exc}") from exc

    def read_partition(self, layer: str, table: str, date: DateLike, columns: list[str] | None = None) -> pd.DataFrame:
        rel = f"{_partition_dir(layer, table, date)}/{PARTITION_FILE}"
        path = self.partition_path(layer, table, date)
        if not self._is_file(rel):
            raise FileNotFoundError(f"{layer}/{table}: no partition {_date_str(date)} at {path}")
        try:
            return pq.read_table(self._fs_path(rel), columns=columns, filesystem=self.filesystem).to_pandas()
        except (pa.ArrowInvalid, OSError) as exc:
            raise LakeReadError(f"{layer}/{table} partition {_date_str(date)}: cannot read {path}: {exc}") from exc

    def read_range(self, layer: str, table: str, start: DateLike, end: DateLike, columns: list[str] | None = None,
                   schema: pa.Schema | None = None, reuse: bool = False) -> pd.DataFrame:
        """All rows of `table` with start <= date <= end in one dataset scan; `reuse` (a local lake):
        through the table's history cache (`_history_rows`), for reads of years of days that
        mostly repeat the last one."""
        base = self._fs_path(f"{layer}/{table}")
        if self.filesystem.get_file_info(base).type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"{layer}/{table}: no data under {self.table_dir(layer, table)}")
        try:
            files = None if self.on_s3 else _files_between(base, start, end)
            if files:  # a local lake: the range's files only, not a discovery of every partition
                if schema is None:  # as a discovery of the whole table infers it: from its first file
                    schema = ds.dataset(_files_between(base, None, None, first=True), format="parquet",
                                        partitioning=_HIVE, partition_base_dir=base).schema
                if reuse:
                    return self._history_rows(layer, table, base, files, columns, schema).to_pandas()
                return _scan(self.filesystem, base, files, schema, columns).to_pandas()
            dataset = ds.dataset(base, filesystem=self.filesystem, format="parquet", partitioning=_HIVE,
                                 schema=schema, exclude_invalid_files=False)
            flt = (ds.field("date") >= pa.scalar(pd.Timestamp(start).date(), pa.date32())) & (
                ds.field("date") <= pa.scalar(pd.Timestamp(end).date(), pa.date32()))
            return dataset.to_table(columns=columns, filter=flt).to_pandas()
        except (pa.ArrowInvalid, OSError) as exc:
            raise LakeReadError(f"{layer}/{table} [{_date_str(start)}..{_date_str(end)}]: {exc}") from exc

    def _history_rows(self, layer: str, table: str, base: str, files: list[str], columns: list[str] | None,
                      schema: pa.Schema) -> pa.Table:
        """`_scan` of `files`, from `<root>/_history/<layer>/<table>/<key>.arrow` where it can be:
        the rows of the files it was built from, each file named with its version (inode, size,
        mtime: the lake never changes a file in place, so a rewritten day has a new version). The
        requested files are looked up in the cache from the first one on (a look-back that slides
        a day each night starts inside it); the longest run of them whose versions equal the
        cache's comes from it, the rest is scanned, and the cache is rewritten when that changed
        anything: the requested files, after as many of the files it held before them as the range
        has (so reads of one table over look-backs of different lengths share it, and a look-back
        sliding a day a night keeps it at most twice the range). A nightly report reads ~2,700
        daily files of a decade at ~1 ms each (6 s); this reads one file and the new day. Arrow
        IPC (not .parquet: no glob of the lake's Parquet files counts these rows twice)."""
        key = hashlib.sha256(repr((columns, schema.serialize().to_pybytes())).encode()).hexdigest()[:16]
        rel = f"{HISTORY}/{layer}/{table}/{key}.arrow"
        versions = [[os.path.relpath(f, base), st.st_ino, st.st_size, st.st_mtime_ns]
                    for f, st in ((f, os.stat(f)) for f in files)]
        held, cached = _read_history_cache(Path(self.root) / rel)
        first = next((i for i, h in enumerate(held) if h[0] == versions[0][0]), None)
        if first is None:  # the range starts outside the cache: read whole, the cache becomes the range
            held, first = [], 0
        before = sum(h[4] for h in held[:first])  # the cache's rows ahead of the range
        drop = max(0, first - len(files))  # leading files beyond as many as the range has leave the cache
        dropped = sum(h[4] for h in held[:drop])
        same, rows = 0, before
        for mine, theirs in zip(versions, held[first:]):
            if mine != theirs[:4]:
                break
            same, rows = same + 1, rows + theirs[4]
        if same == len(files):  # every file from the cache (its first rows kept)
            return cached if (before, same) == (0, len(held)) else cached.slice(before, rows - before)
        parts = [cached.slice(dropped, rows - dropped)] if first + same > drop else []
        counts = [h[4] for h in held[drop:first + same]]
        fresh = _scan(self.filesystem, base, files[same:], schema, [*(columns or schema.names), "__fragment_index"])
        counts += np.bincount(fresh.column("__fragment_index").to_numpy(), minlength=len(files) - same).tolist()
        parts.append(fresh.drop_columns(["__fragment_index"]))
        whole = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        manifest = [h[:4] + [n] for h, n in zip(held[drop:first] + versions, counts)]
        meta = {**(whole.schema.metadata or {}), HISTORY_FILES: json.dumps(manifest).encode()}
        tagged = whole.replace_schema_metadata(meta)

        def write(fh: BinaryIO) -> None:
            with pa.ipc.new_file(fh, tagged.schema) as out:
                out.write_table(tagged)

        try:
            self._write(rel, write)
        except (LakeWriteError, OSError):  # a cache: a lake that cannot take it is read in full next time
            pass
        return whole.slice(before - dropped) if before > dropped else whole

    def partitions(self, layer: str, table: str, start: DateLike | None = None,
                   end: DateLike | None = None) -> list[str]:
        """The days (start..end, inclusive, when given) that have a partition file. Locally one
        listing of the table's folder and one of each folder in the range (a recursive listing
        of a decade's table stats 3,300 folders: 50 ms, paid by every check of every run); on S3
        one recursive listing (a handful of LIST requests: there are no folders to walk)."""
        base = self._fs_path(f"{layer}/{table}")
        if not self.on_s3:
            if not os.path.isdir(base):
                return []
            days = [folder[len("date="):] for folder in _partition_folders(base, start, end)]
            return [d for d in days if _ISO_DAY.fullmatch(d) and os.path.isfile(f"{base}/date={d}/{PARTITION_FILE}")]
        found = self.filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        days = (_PARTITION_KEY.match(f.path[len(base) + 1:]) for f in found if f.type == pafs.FileType.File)
        lo = _date_str(start) if start is not None else ""
        hi = _date_str(end) if end is not None else "~"
        return sorted(m.group(1) for m in days if m and lo <= m.group(1) <= hi)


HISTORY = "_history"  # <root>/_history/<layer>/<table>/<key>.arrow: `Lake._history_rows`'s cache
HISTORY_FILES = b"alvh_history_files"  # its schema metadata: [[file, inode, size, mtime_ns, rows], ...]


def _scan(filesystem: pafs.FileSystem, base: str, files: list[str], schema: pa.Schema,
          columns: list[str] | None) -> pa.Table:
    """The rows of a local table's `files` (hive `date=` folders under `base`) in one dataset scan."""
    dataset = ds.dataset(files, filesystem=filesystem, format="parquet", partitioning=_HIVE,
                         partition_base_dir=base, schema=schema, exclude_invalid_files=False)
    return dataset.to_table(columns=columns)


def _read_history_cache(path: Path) -> tuple[list, pa.Table | None]:
    """(manifest, rows without the manifest) of a history cache file; ([], None) if there is none or
    it cannot be read (it is rebuilt)."""
    try:
        with pa.OSFile(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
        meta = dict(table.schema.metadata or {})
        held = json.loads(meta.pop(HISTORY_FILES))
        return held, table.replace_schema_metadata(meta or None)
    except (OSError, KeyError, ValueError, pa.ArrowInvalid):
        return [], None


def _partition_folders(base: str, start: DateLike | None, end: DateLike | None) -> list[str]:
    """The `date=YYYY-MM-DD` folders of a local table dated start..end (None: unbounded), sorted."""
    lo = f"date={_date_str(start)}" if start is not None else ""
    hi = f"date={_date_str(end)}" if end is not None else "date=~"
    with os.scandir(base) as entries:
        return sorted(e.name for e in entries if e.name.startswith("date=") and lo <= e.name <= hi and e.is_dir())


def _files_between(base: str, start: DateLike | None, end: DateLike | None, first: bool = False) -> list[str]:
    """The data files of a local table's partitions dated start..end (None: unbounded), in path
    order, as a dataset discovery lists them (names starting with "." or "_" are not data: staged
    temp files); `first`: only the first such file of the table. A listing of one folder and of
    the range's own, where discovering the whole table reads every partition folder (3,000+)."""
    out = []
    for folder in _partition_folders(base, start, end):
        out += [f"{base}/{folder}/{f}" for f in sorted(os.listdir(f"{base}/{folder}")) if not f.startswith((".", "_"))]
        if first and out:
            return out[:1]
    return out


# Arrow types inferred from an object column's values that a day's own rows infer the same way
# whenever the day has a value (a day without one infers `null`)
_STABLE_INFERRED = (pa.types.is_string, pa.types.is_large_string, pa.types.is_date32, pa.types.is_boolean)


def range_arrow(frame: pd.DataFrame, schema: pa.Schema | None) -> pa.Table | None:
    """`to_arrow` of a whole range, or None where a day's own conversion could type a column
    differently (an object column inferred as anything but text, dates or booleans, or values
    Arrow cannot convert together)."""
    try:
        whole = to_arrow(frame, schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return None
    if schema is None and not all(any(ok(whole.schema.field(c).type) for ok in _STABLE_INFERRED)
                                  for c in object_columns(frame)):
        return None
    return whole


def object_columns(frame: pd.DataFrame) -> list[str]:
    """The columns whose Arrow type is inferred from their values (dtype object)."""
    return [c for c, dtype in frame.dtypes.items() if pd.api.types.is_object_dtype(dtype)]


def same_as_own_conversion(piece: pa.Table, objects: list[str], schema: pa.Schema | None) -> bool:
    """Whether a day's slice of `range_arrow` equals converting the day's rows alone: always with
    a schema; without, unless an object column (`objects`: `object_columns` of the frame) has no
    value that day (its own type: null)."""
    return schema is not None or all(piece.column(c).null_count < piece.num_rows for c in objects)


def to_arrow(frame: pd.DataFrame, schema: pa.Schema | None = None) -> pa.Table:
    if schema is None:
        return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    cols = {}
    for field in schema:
        values = frame[field.name]
        if pa.types.is_date32(field.type):
            values = pd.to_datetime(values).dt.date
        cols[field.name] = pa.array(values, type=field.type, from_pandas=True)
    return pa.table(cols, schema=schema)
