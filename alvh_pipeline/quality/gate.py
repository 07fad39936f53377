"""The raw -> validated gate, without Dagster: read raw partitions from the lake, validate them
with the table's GE suite, keep offending rows in quarantine (with a reason), and record a
verdict per partition bound to the raw file's content hash, so `validated/*` only ever publishes
a raw file that passed exactly as it is now.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alvh_pipeline.core.calendar import previous_session
from alvh_pipeline.lake import Lake, LakeReadError
from alvh_pipeline.quality.validate import Failure, ValidationReport, validate_frame
from alvh_pipeline.schemas import CONTRACTS

def _suite_version() -> str:
    """Hash of the quality code: a verdict from an older suite or rule set never publishes."""
    here = Path(__file__).parent
    src = "".join((here / f).read_text() for f in ("rules.py", "suites.py", "validate.py"))
    return hashlib.sha256(src.encode()).hexdigest()[:16]


SUITE_VERSION = _suite_version()
STALE_THRESHOLD = float(os.environ.get("ALVH_STALE_THRESHOLD", "0.2"))


class NotValidatedError(RuntimeError):
    pass


def read_raw(lake: Lake, table: str, partition: str) -> tuple[str, pd.DataFrame]:
    """(sha256, rows) of one raw file from a single read of its bytes, so the hash a verdict
    records is the hash of exactly the rows that were validated (or published)."""
    path = lake.partition_path("raw", table, partition)
    if not path.exists():
        raise FileNotFoundError(f"raw/{table}: no partition {partition} at {path}")
    data = path.read_bytes()
    try:
        frame = pq.read_table(pa.BufferReader(data)).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise LakeReadError(f"raw/{table} partition {partition}: cannot read {path}: {exc}") from exc
    return hashlib.sha256(data).hexdigest(), frame


def verdict_path(lake: Lake, table: str, partition: str):
    return lake.table_dir("_verdicts", table) / f"date={partition}.json"


def _write_json_atomic(path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(payload, sort_keys=True))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass
class GateResult:
    report: ValidationReport
    unreadable: dict[str, str]  # partition -> error (corrupt / missing raw file)

    @property
    def passed(self) -> bool:
        return self.report.passed and not self.unreadable

    def message(self) -> str:
        lines = [self.report.message()]
        lines += [f"  - unreadable raw file for partition {p}: {e}" for p, e in self.unreadable.items()]
        return "\n".join(lines)


def read_raw_partitions(lake: Lake, table: str, partitions: list[str]):
    """(rows of all readable partitions, each row's partition, sha256 per partition, unreadable)."""
    frames, row_parts, hashes, unreadable = [], [], {}, {}
    for p in partitions:  # per file: a raw file keeps its delivered dtypes, which may be wrong
        try:
            hashes[p], f = read_raw(lake, table, p)
        except (LakeReadError, FileNotFoundError) as exc:
            unreadable[p] = str(exc)
            continue
        frames.append(f)
        row_parts.append(np.full(len(f), p, dtype=object))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CONTRACTS[table].column_names)
    parts = np.concatenate(row_parts) if row_parts else np.array([], dtype=object)
    return frame, parts, hashes, unreadable


def _history(lake: Lake, table: str, first_partition: str) -> pd.DataFrame | None:
    prev = previous_session([pd.Timestamp(first_partition)], inclusive=False)[0]
    try:
        return lake.read_partition("raw", table, prev)
    except (LakeReadError, FileNotFoundError):
        return None


def quarantine_unreadable(lake: Lake, table: str, partition: str, error: str) -> None:
    src = lake.partition_path("raw", table, partition)
    dest = lake.partition_path("quarantine", table, partition).parent
    dest.mkdir(parents=True, exist_ok=True)
    if src.exists():
        shutil.copyfile(src, dest / "unreadable-part-0.parquet")
    (dest / "reason.txt").write_text(error + "\n")


def run_gate(lake: Lake, table: str, partitions: list[str], stale_threshold: float = STALE_THRESHOLD) -> GateResult:
    partitions = sorted(partitions)
    frame, row_parts, hashes, unreadable = read_raw_partitions(lake, table, partitions)
    readable = [p for p in partitions if p not in unreadable]
    report = validate_frame(table, frame, readable, _history(lake, table, partitions[0]), stale_threshold,
                            row_partitions=row_parts)
    if unreadable:
        report.failures.append(Failure("read_parquet", "*", "corrupt or missing raw file", 0, sorted(unreadable)))
    for p, err in unreadable.items():
        quarantine_unreadable(lake, table, p, err)
    for p, rows in report.quarantine_rows().items():
        lake.write_partition("quarantine", table, p, rows.astype({c: str for c in rows.columns if rows[c].dtype == object}))
    failed = set(report.failed_partitions)
    for p in readable:
        _write_json_atomic(verdict_path(lake, table, p), {
            "table": table, "partition": p, "passed": p not in failed, "suite_version": SUITE_VERSION,
            "raw_sha256": hashes[p],
        })
    return GateResult(report, unreadable)


def publish_validated(lake: Lake, table: str, partitions: list[str]) -> dict[str, int]:
    """Write validated/<table> for partitions whose raw file carries a passing verdict for its
    current content; raise NotValidatedError naming every partition that does not."""
    contract = CONTRACTS[table]
    refused, frames = [], {}
    for p in partitions:  # the bytes hashed are the bytes published: no window for a raw rewrite
        vp = verdict_path(lake, table, p)
        verdict = json.loads(vp.read_text()) if vp.exists() else None
        try:
            digest, frames[p] = read_raw(lake, table, p)
        except (LakeReadError, FileNotFoundError):
            digest = None
        if digest is None or verdict is None or not verdict["passed"] or verdict["suite_version"] != SUITE_VERSION \
                or verdict["raw_sha256"] != digest:
            refused.append(p)
    if refused:
        raise NotValidatedError(
            f"validated/{table}: {len(refused)} partition(s) have no passing GE verdict for their current raw "
            f"file (failed check, raw changed since, or suite changed since): {', '.join(refused[:10])}")
    rows = {}
    for p in partitions:
        frame = frames[p].sort_values(list(contract.keys), kind="stable").reset_index(drop=True)
        lake.write_partition("validated", table, p, frame, contract.schema)
        rows[p] = len(frame)
    return rows
