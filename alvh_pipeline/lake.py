"""The Parquet lake: `<root>/<layer>/<table>/date=YYYY-MM-DD/part-0.parquet` (hive style, zstd).

- Writes are atomic: a temp file in the same folder, fsync, then `os.replace` (a reader never sees
  a half-written partition; a crash mid-write leaves the previous file intact).
- Re-runs are byte-identical: fixed schema per table, no pandas index, no timestamps in metadata.
- A date range of a table is read in one pyarrow dataset scan with a partition filter.
- Root: a local path or `file://` URI (default `./data_lake`; `resources.LakeResource`). Any other
  scheme (e.g. `s3://`) is refused until the object-store lake exists, rather than written to a
  local folder named `s3:`.
- Every file the pipeline touches goes through this class (Parquet partitions, raw bytes with
  their digest, verdict JSON, quarantine copies), so another storage backend changes one class.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

DEFAULT_LAKE = "data_lake"
DateLike = str | date | pd.Timestamp  # a partition day: "YYYY-MM-DD", a date or a timestamp
PARTITION_FILE = "part-0.parquet"
_HIVE = ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")


class LakeReadError(RuntimeError):
    """A lake file exists but cannot be read (corrupt, truncated, wrong format)."""


class LakeWriteError(OSError):
    """A write failed (disk full, permissions); the message names the path, no temp file is left."""


def local_root(uri: str) -> str:
    """The local folder of a lake URI: a plain path or `file://` URI; other schemes are refused."""
    if uri.startswith("file://"):
        return uri[len("file://"):]
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]+)://", uri)
    if scheme:
        raise ValueError(f"lake URI {uri!r}: scheme '{scheme.group(1)}://' is not supported (only a local path or "
                         f"file:// URI); refusing rather than writing to a local folder named '{scheme.group(1)}:'")
    return uri


def atomic_write_bytes(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write through `write(fh)` into a temp file beside `path`, fsync, then rename over `path`.
    On any failure the temp file is removed and the error names `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise LakeWriteError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _date_str(date: DateLike) -> str:
    return pd.Timestamp(date).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Lake:
    root: str

    @classmethod
    def from_uri(cls, uri: str) -> Lake:
        return cls(local_root(uri))

    def table_dir(self, layer: str, table: str) -> Path:
        return Path(self.root) / layer / table

    def partition_path(self, layer: str, table: str, date: DateLike) -> Path:
        return self.table_dir(layer, table) / f"date={_date_str(date)}" / PARTITION_FILE

    def exists(self, layer: str, table: str, date: DateLike) -> bool:
        return self.partition_path(layer, table, date).exists()

    # ---- writes --------------------------------------------------------------------------
    def write_partition(
        self, layer: str, table: str, date: DateLike, frame: pd.DataFrame, schema: pa.Schema | None = None
    ) -> Path:
        """Atomically write one day's rows. With `schema`, columns are cast to it (the contract);
        without, the frame's own dtypes are kept (raw layer: as delivered)."""
        arrow = to_arrow(frame, schema)
        return self.write_arrow(layer, table, date, arrow)

    def write_arrow(self, layer: str, table: str, date: DateLike, arrow: pa.Table) -> Path:
        return atomic_write_bytes(self.partition_path(layer, table, date), lambda fh: pq.write_table(
            arrow, fh, compression="zstd", write_statistics=True, store_schema=True, use_dictionary=True))

    # ---- unpartitioned tables (reports over a whole range) ----------------------------------
    def table_path(self, layer: str, table: str) -> Path:
        return self.table_dir(layer, table) / "table.parquet"

    def write_table(self, layer: str, table: str, frame: pd.DataFrame) -> Path:
        """Atomically write a whole unpartitioned table (`<layer>/<table>/table.parquet`)."""
        return atomic_write_bytes(self.table_path(layer, table), lambda fh: pq.write_table(
            to_arrow(frame), fh, compression="zstd", store_schema=True))

    def read_table(self, layer: str, table: str) -> pd.DataFrame:
        path = self.table_path(layer, table)
        if not path.exists():
            raise FileNotFoundError(f"{layer}/{table}: no table at {path}")
        return pq.read_table(path).to_pandas()

    # ---- documents beside the partitions (verdicts, quarantine copies) ----------------------
    def document_path(self, layer: str, table: str, name: str) -> Path:
        return self.table_dir(layer, table) / name

    def write_json(self, layer: str, table: str, name: str, payload: dict) -> Path:
        """Atomically write a JSON document (sorted keys: re-runs are byte-identical)."""
        data = json.dumps(payload, sort_keys=True).encode()
        return atomic_write_bytes(self.document_path(layer, table, name), lambda fh: fh.write(data))

    def read_json(self, layer: str, table: str, name: str) -> dict | None:
        path = self.document_path(layer, table, name)
        return json.loads(path.read_text()) if path.exists() else None

    def write_document(self, layer: str, table: str, name: str, data: bytes) -> Path:
        return atomic_write_bytes(self.document_path(layer, table, name), lambda fh: fh.write(data))

    def copy_partition(self, src_layer: str, table: str, date: DateLike, dest_layer: str, name: str) -> Path | None:
        """Copy one partition's file, as it is, to `<dest_layer>/<table>/date=D/<name>` (quarantine)."""
        src = self.partition_path(src_layer, table, date)
        if not src.exists():
            return None
        data = src.read_bytes()
        dest = self.partition_path(dest_layer, table, date).parent / name
        return atomic_write_bytes(dest, lambda fh: fh.write(data))

    def write_partition_text(self, layer: str, table: str, date: DateLike, name: str, text: str) -> Path:
        dest = self.partition_path(layer, table, date).parent / name
        return atomic_write_bytes(dest, lambda fh: fh.write(text.encode()))

    def write_range(self, layer: str, table: str, frame: pd.DataFrame, dates: Iterable,
                    schema: pa.Schema | None = None) -> dict[str, Path]:
        """Split a multi-day frame by its `date` column into daily files (one per date in
        `dates`, an empty file where a day has no rows)."""
        by_day = dict(iter(frame.groupby(pd.to_datetime(frame["date"]).dt.normalize(), sort=True)))
        out = {}
        for d in dates:
            part = by_day.get(pd.Timestamp(d), frame.iloc[0:0])
            out[_date_str(d)] = self.write_partition(layer, table, d, part, schema)
        return out

    # ---- reads ---------------------------------------------------------------------------
    def read_partition_bytes(self, layer: str, table: str, date: DateLike) -> tuple[str, bytes]:
        """(sha256, bytes) of one partition file, from a single read."""
        path = self.partition_path(layer, table, date)
        if not path.exists():
            raise FileNotFoundError(f"{layer}/{table}: no partition {_date_str(date)} at {path}")
        data = path.read_bytes()
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
        path = self.partition_path(layer, table, date)
        if not path.exists():
            raise FileNotFoundError(f"{layer}/{table}: no partition {_date_str(date)} at {path}")
        try:
            return pq.read_table(path, columns=columns).to_pandas()
        except (pa.ArrowInvalid, OSError) as exc:
            raise LakeReadError(f"{layer}/{table} partition {_date_str(date)}: cannot read {path}: {exc}") from exc

    def read_range(self, layer: str, table: str, start: DateLike, end: DateLike, columns: list[str] | None = None,
                   schema: pa.Schema | None = None) -> pd.DataFrame:
        """All rows of `table` with start <= date <= end in one dataset scan."""
        base = self.table_dir(layer, table)
        if not base.exists():
            raise FileNotFoundError(f"{layer}/{table}: no data under {base}")
        dataset = ds.dataset(str(base), format="parquet", partitioning=_HIVE, schema=schema,
                             exclude_invalid_files=False)
        flt = (ds.field("date") >= pa.scalar(pd.Timestamp(start).date(), pa.date32())) & (
            ds.field("date") <= pa.scalar(pd.Timestamp(end).date(), pa.date32()))
        try:
            return dataset.to_table(columns=columns, filter=flt).to_pandas()
        except (pa.ArrowInvalid, OSError) as exc:
            raise LakeReadError(f"{layer}/{table} [{_date_str(start)}..{_date_str(end)}]: {exc}") from exc

    def partitions(self, layer: str, table: str) -> list[str]:
        base = self.table_dir(layer, table)
        if not base.exists():
            return []
        return sorted(p.name[5:] for p in base.glob("date=*") if (p / PARTITION_FILE).exists())


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
