"""The `files` source: a drop folder with one CSV or Parquet file per raw table
(`<root>/<table>.csv|.parquet`, or several files under `<root>/<table>/`), in the documented raw
contracts (`schemas.CONTRACTS`). A file of the wrong shape raises `FilesSourceError` naming the
file, the column and the (1-based data) row.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from alvh_pipeline.schemas import CONTRACTS, type_family


class FilesSourceError(ValueError):
    pass


def table_files(root: str | Path, table: str) -> list[Path]:
    root = Path(root)
    found = [p for ext in ("csv", "parquet") for p in [root / f"{table}.{ext}"] if p.exists()]
    if (root / table).is_dir():
        found += sorted([*(root / table).glob("*.csv"), *(root / table).glob("*.parquet")])
    return found


def _coerce(frame: pd.DataFrame, table: str, path: Path) -> pd.DataFrame:
    contract = CONTRACTS[table]
    cols = list(frame.columns)
    missing = [c for c in contract.column_names if c not in cols]
    extra = [c for c in cols if c not in contract.column_names]
    if missing or extra:
        raise FilesSourceError(
            f"{path}: columns do not match the raw contract of '{table}' (header row): "
            f"missing {missing}, unexpected {extra}")
    out = {}
    for name, typ, _ in contract.columns:
        fam = type_family(typ)
        raw = frame[name]
        if fam == "str":
            out[name] = raw.astype("str").where(raw.notna(), None)
            continue
        if fam == "date":
            conv = pd.to_datetime(raw, errors="coerce", format="ISO8601")
        else:
            conv = pd.to_numeric(raw, errors="coerce")
        blank = raw.isna() | (raw.astype(str).str.strip() == "")
        bad = conv.isna() & ~blank
        if fam == "date" and name not in contract.nullable:
            bad |= blank  # a row without a date could never reach a partition: refuse, don't drop
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
            raise FilesSourceError(
                f"{path}: column '{name}' row {row}: cannot read {raw.iloc[row - 1]!r} as {fam} "
                f"({int(bad.sum())} bad rows)")
        if fam == "int":
            if conv.isna().any() and name not in contract.nullable:
                row = int(np.flatnonzero(conv.isna().to_numpy())[0]) + 1
                raise FilesSourceError(f"{path}: column '{name}' row {row}: empty value in an integer column")
            conv = conv.astype("int64")
        out[name] = conv
    return pd.DataFrame(out)


def read_table_files(root: str | Path, table: str) -> pd.DataFrame:
    files = table_files(root, table)
    if not files:
        raise FilesSourceError(f"files source: no file for table '{table}' under {root} "
                               f"(expected {table}.csv, {table}.parquet or {table}/*.csv)")
    parts = []
    for path in files:
        try:
            raw = pd.read_csv(path, dtype=str, keep_default_na=True) if path.suffix == ".csv" else pd.read_parquet(path)
        except (pa.ArrowInvalid, OSError, pd.errors.ParserError) as exc:
            raise FilesSourceError(f"{path}: cannot read file: {exc}") from exc
        parts.append(_coerce(raw, table, path))
    return pd.concat(parts, ignore_index=True)


def generate(table: str, dates: Sequence, root: str | Path) -> pd.DataFrame:
    frame = read_table_files(root, table)
    wanted = pd.DatetimeIndex(pd.to_datetime(list(dates))).normalize()
    return frame[frame["date"].dt.normalize().isin(wanted)].reset_index(drop=True)
