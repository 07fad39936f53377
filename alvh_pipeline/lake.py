"""The Parquet lake: `<root>/<layer>/<table>/date=YYYY-MM-DD/part-0.parquet` (hive style, zstd).

- Writes are atomic: a temp file in the same folder, fsync, then `os.replace` (a reader never sees
  a half-written partition; a crash mid-write leaves the previous file intact).
- Re-runs are byte-identical: fixed schema per table, no pandas index, no timestamps in metadata.
- A date range of a table is read in one pyarrow dataset scan with a partition filter.
- Root from `ALVH_LAKE_URI` (a local path; `file://` URIs accepted), default `./data_lake`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

DEFAULT_LAKE = "data_lake"
PARTITION_FILE = "part-0.parquet"
_HIVE = ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")


class LakeReadError(RuntimeError):
    """A lake file exists but cannot be read (corrupt, truncated, wrong format)."""


def lake_root_from_env() -> str:
    uri = os.environ.get("ALVH_LAKE_URI", DEFAULT_LAKE)
    return uri[len("file://"):] if uri.startswith("file://") else uri


def _date_str(date) -> str:
    return pd.Timestamp(date).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Lake:
    root: str

    @classmethod
    def from_env(cls) -> "Lake":
        return cls(lake_root_from_env())

    def table_dir(self, layer: str, table: str) -> Path:
        return Path(self.root) / layer / table

    def partition_path(self, layer: str, table: str, date) -> Path:
        return self.table_dir(layer, table) / f"date={_date_str(date)}" / PARTITION_FILE

    def exists(self, layer: str, table: str, date) -> bool:
        return self.partition_path(layer, table, date).exists()

    # ---- writes --------------------------------------------------------------------------
    def write_partition(
        self, layer: str, table: str, date, frame: pd.DataFrame, schema: pa.Schema | None = None
    ) -> Path:
        """Atomically write one day's rows. With `schema`, columns are cast to it (the contract);
        without, the frame's own dtypes are kept (raw layer: as delivered)."""
        arrow = to_arrow(frame, schema)
        return self.write_arrow(layer, table, date, arrow)

    def write_arrow(self, layer: str, table: str, date, arrow: pa.Table) -> Path:
        path = self.partition_path(layer, table, date)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                pq.write_table(arrow, fh, compression="zstd", write_statistics=True,
                               store_schema=True, use_dictionary=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

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
    def read_partition(self, layer: str, table: str, date, columns: list[str] | None = None) -> pd.DataFrame:
        path = self.partition_path(layer, table, date)
        if not path.exists():
            raise FileNotFoundError(f"{layer}/{table}: no partition {_date_str(date)} at {path}")
        try:
            return pq.read_table(path, columns=columns).to_pandas()
        except (pa.ArrowInvalid, OSError) as exc:
            raise LakeReadError(f"{layer}/{table} partition {_date_str(date)}: cannot read {path}: {exc}") from exc

    def read_range(self, layer: str, table: str, start, end, columns: list[str] | None = None,
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
