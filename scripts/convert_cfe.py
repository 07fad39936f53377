"""One-off converter: CFE VIX futures settlements and the 13-week T-bill CSVs -> packaged Parquet.

Reads the public CSVs in ``../shared/data/cfe_vix_futures`` (see its README and LICENSE) and writes
compact zstd Parquet files into ``alvh_pipeline/sources/data/``:

- ``cfe_vix_futures.parquet``: every published row, parsed but otherwise untouched (no 10x fix,
  untraded Settle-0 rows kept, publication order kept). Blank price / change cells become nulls.
- ``tbill_13week.parquet``: Date (date32), Value (float64 fraction), as published (newest first).

The loaders in ``alvh_pipeline.sources.real_data`` apply the fixes, so they stay visible in code.

Usage: python scripts/convert_cfe.py [SOURCE_DIR]
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_SRC = Path("/work/shared/data/cfe_vix_futures")
OUT_DIR = Path(__file__).resolve().parents[1] / "alvh_pipeline" / "sources" / "data"

HEADER = [
    "Trade Date", "Futures", "Open", "High", "Low", "Close", "Settle", "Change",
    "Total Volume", "EFP", "Open Interest",
]
FLOAT_COLS = ["open", "high", "low", "close", "settle", "change"]
INT_COLS = ["total_volume", "efp", "open_interest"]
NULLABLE = {"open", "high", "low", "close", "change"}  # blank cells occur in the publication
CFE_SCHEMA = pa.schema(
    [pa.field("trade_date", pa.date32(), nullable=False), pa.field("futures", pa.string(), nullable=False)]
    + [pa.field(c, pa.float64(), nullable=c in NULLABLE) for c in FLOAT_COLS]
    + [pa.field(c, pa.int64(), nullable=False) for c in INT_COLS]
)
TBILL_SCHEMA = pa.schema(
    [pa.field("date", pa.date32(), nullable=False), pa.field("value", pa.float64(), nullable=False)]
)
_FUTURES_RE = re.compile(r"[FGHJKMNQUVXZ] \((Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d\d\)")
_DATE_RE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def _date(s: str, where: str) -> dt.date:
    m = _DATE_RE.fullmatch(s)
    if not m:
        raise ValueError(f"{where}: bad date {s!r}")
    month, day, year = map(int, m.groups())
    return dt.date(year, month, day)


def _float(s: str, col: str, where: str) -> float | None:
    if s == "":
        if col not in NULLABLE:
            raise ValueError(f"{where}: blank {col}")
        return None
    return float(s)


def _int(s: str, col: str, where: str) -> int:
    if not re.fullmatch(r"-?\d+", s):
        raise ValueError(f"{where}: {col}={s!r} is not an integer")
    return int(s)


def read_cfe(path: Path) -> pa.Table:
    cols: dict[str, list] = {f.name: [] for f in CFE_SCHEMA}
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        if next(reader) != HEADER:
            raise ValueError(f"{path}: unexpected header")
        trailing = 0
        for lineno, row in enumerate(reader, start=2):
            where = f"{path.name}:{lineno}"
            if len(row) == 12 and row[11] == "":  # publication quirk: trailing comma
                row = row[:11]
                trailing += 1
            if len(row) != 11:
                raise ValueError(f"{where}: {len(row)} fields")
            if not _FUTURES_RE.fullmatch(row[1]):
                raise ValueError(f"{where}: bad futures code {row[1]!r}")
            cols["trade_date"].append(_date(row[0], where))
            cols["futures"].append(row[1])
            for c, s in zip(FLOAT_COLS, row[2:8]):
                cols[c].append(_float(s, c, where))
            for c, s in zip(INT_COLS, row[8:11]):
                cols[c].append(_int(s, c, where))
    print(f"{path.name}: {len(cols['futures'])} rows, {trailing} with a trailing comma")
    return pa.table(cols, schema=CFE_SCHEMA)


def read_tbill(path: Path) -> pa.Table:
    dates, values = [], []
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        if next(reader) != ["Date", "Value"]:
            raise ValueError(f"{path}: unexpected header")
        for row in reader:
            dates.append(dt.date.fromisoformat(row[0]))
            values.append(float(row[1]))
    print(f"{path.name}: {len(dates)} rows")
    return pa.table({"date": dates, "value": values}, schema=TBILL_SCHEMA)


def write(table: pa.Table, path: Path) -> None:
    pq.write_table(
        table, path, compression="zstd", compression_level=19,
        use_dictionary=["futures"] if "futures" in table.column_names else True,
    )
    assert pq.read_table(path).equals(table)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")


def main(argv: list[str]) -> None:
    src = Path(argv[1]) if len(argv) > 1 else DEFAULT_SRC
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write(read_cfe(src / "vix_futures.csv"), OUT_DIR / "cfe_vix_futures.parquet")
    write(read_tbill(src / "tbill13week.csv"), OUT_DIR / "tbill_13week.parquet")


if __name__ == "__main__":
    main(sys.argv)
