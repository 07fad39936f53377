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
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alvh_pipeline.core.calendar import previous_session
from alvh_pipeline.lake import Lake, LakeReadError
from alvh_pipeline.quality.validate import Failure, ValidationReport, validate_frame
from alvh_pipeline.schemas import CONTRACTS

SUITE_VERSION = "1"
STALE_THRESHOLD = float(os.environ.get("ALVH_STALE_THRESHOLD", "0.2"))


class NotValidatedError(RuntimeError):
    pass


def file_sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def verdict_path(lake: Lake, table: str, partition: str):
    return lake.table_dir("_verdicts", table) / f"date={partition}.json"


def _write_json_atomic(path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, sort_keys=True))
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
    frames, row_parts, unreadable = [], [], {}
    for p in partitions:  # per file: a raw file keeps its delivered dtypes, which may be wrong
        try:
            f = lake.read_partition("raw", table, p)
        except (LakeReadError, FileNotFoundError) as exc:
            unreadable[p] = str(exc)
            continue
        frames.append(f)
        row_parts.append(np.full(len(f), p, dtype=object))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CONTRACTS[table].column_names)
    parts = np.concatenate(row_parts) if row_parts else np.array([], dtype=object)
    return frame, parts, unreadable


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
    frame, row_parts, unreadable = read_raw_partitions(lake, table, partitions)
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
        raw = lake.partition_path("raw", table, p)
        _write_json_atomic(verdict_path(lake, table, p), {
            "table": table, "partition": p, "passed": p not in failed, "suite_version": SUITE_VERSION,
            "raw_sha256": file_sha256(raw),
        })
    return GateResult(report, unreadable)


def publish_validated(lake: Lake, table: str, partitions: list[str]) -> dict[str, int]:
    """Write validated/<table> for partitions whose raw file carries a passing verdict for its
    current content; raise NotValidatedError naming every partition that does not."""
    contract = CONTRACTS[table]
    refused = []
    for p in partitions:
        vp = verdict_path(lake, table, p)
        raw = lake.partition_path("raw", table, p)
        verdict = json.loads(vp.read_text()) if vp.exists() else None
        if not raw.exists() or verdict is None or not verdict["passed"] or verdict["raw_sha256"] != file_sha256(raw) \
                or verdict["suite_version"] != SUITE_VERSION:
            refused.append(p)
    if refused:
        raise NotValidatedError(
            f"validated/{table}: {len(refused)} partition(s) have no passing GE verdict for their current raw "
            f"file (failed check, or raw changed since): {', '.join(refused[:10])}")
    rows = {}
    for p in partitions:
        frame = lake.read_partition("raw", table, p)
        frame = frame.sort_values(list(contract.keys), kind="stable").reset_index(drop=True)
        lake.write_partition("validated", table, p, frame, contract.schema)
        rows[p] = len(frame)
    return rows
