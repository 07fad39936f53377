"""One-off converter: the real daily equity prices (../shared/data/real_equities) -> packaged Parquet.

Reads ``real_equities.csv.gz`` (columns date,symbol,sector,open,high,low,close,volume; source, licence
and caveats in its README.md, copied to ``alvh_pipeline/sources/data/LICENSE-real_equities``), checks
the published sha256 of the gzip, and writes every row, values untouched and in the published order
(date, then symbol), to ``alvh_pipeline/sources/data/real_equities.parquet`` (zstd): date as date32,
prices float64, volume int64. Also copies ``manifest.csv`` (per symbol: source file, git blob, first /
last date, missing sessions) beside it as ``real_equities_manifest.csv``.

The loader ``alvh_pipeline.sources.real_data.load_real_equities`` reads the Parquet file; the shipped
file's sha256 is pinned in tests/sources/test_real_data.py.

Usage: python scripts/convert_real_equities.py [SOURCE_DIR]
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

DEFAULT_SRC = Path("/work/shared/data/real_equities")
OUT_DIR = Path(__file__).resolve().parents[1] / "alvh_pipeline" / "sources" / "data"
CSV_SHA256 = "a1161cf768b3eb3d074ca3340c2e049fb20ed68fd94981c1f0b37b3224e6ded8"  # as its README states
SCHEMA = pa.schema([
    pa.field("date", pa.date32(), nullable=False),
    pa.field("symbol", pa.string(), nullable=False),
    pa.field("sector", pa.string(), nullable=False),
    *[pa.field(c, pa.float64(), nullable=False) for c in ("open", "high", "low", "close")],
    pa.field("volume", pa.int64(), nullable=False),
])
N_ROWS = 428_798


def convert(src: Path = DEFAULT_SRC, out_dir: Path = OUT_DIR) -> Path:
    gz = src / "real_equities.csv.gz"
    digest = hashlib.sha256(gz.read_bytes()).hexdigest()
    if digest != CSV_SHA256:
        raise ValueError(f"{gz}: sha256 {digest}, the README states {CSV_SHA256}")
    table = pacsv.read_csv(gz, convert_options=pacsv.ConvertOptions(column_types=SCHEMA, strings_can_be_null=False))
    if table.column_names != SCHEMA.names or table.num_rows != N_ROWS:
        raise ValueError(f"{gz}: columns {table.column_names}, {table.num_rows} rows; "
                         f"expected {SCHEMA.names}, {N_ROWS}")
    nulls = sum(c.null_count for c in table.columns)
    if nulls:
        raise ValueError(f"{gz}: {nulls} empty cells")
    table = table.cast(SCHEMA)
    out = out_dir / "real_equities.parquet"
    pq.write_table(table, out, compression="zstd", compression_level=19)
    shutil.copyfile(src / "manifest.csv", out_dir / "real_equities_manifest.csv")
    return out


if __name__ == "__main__":
    path = convert(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SRC)
    print(path, path.stat().st_size, "bytes, sha256", hashlib.sha256(path.read_bytes()).hexdigest())
