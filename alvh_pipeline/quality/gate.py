"""The raw -> validated gate, without Dagster: read raw partitions from the lake, validate them
with the table's GE suite, keep offending rows in quarantine (with a reason), and record a
verdict per partition bound to the raw file's content hash, so `validated/*` only ever publishes
a raw file that passed exactly as it is now.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alvh_pipeline.core.check_report import CheckReport, RuleFailure
from alvh_pipeline.lake import Lake, LakeReadError, file_version
from alvh_pipeline.quality.validate import (
    PEER_TABLES,
    ValidationReport,
    history_columns,
    history_sessions,
    validate_frame,
)
from alvh_pipeline.schemas import CONTRACTS, RAW_TABLES

DEFAULT_STALE_THRESHOLD = 0.2  # the gate's own default; the pipeline passes StrategyConfig's value
VERDICTS = "_verdicts"
QUARANTINE = "quarantine"


@lru_cache(maxsize=8)
def suite_version(stale_threshold: float = DEFAULT_STALE_THRESHOLD) -> str:
    """Hash of what a verdict depends on: every table's built expectation suite (so a change in
    `schemas.CONTRACTS`, a bound or a threshold changes it) and the source of the rule and
    validation code (the flag columns' arithmetic is not visible in the suite itself). A verdict
    from another version never publishes."""
    from alvh_pipeline.quality.suites import build_expectations

    here = Path(__file__).parent
    parts = [(here / f).read_text() for f in ("rules.py", "suites.py", "validate.py")]
    for table in RAW_TABLES:
        suite = [e.configuration.to_json_dict() for e in build_expectations(table, stale_threshold)]
        parts.append(json.dumps({"table": table, "suite": suite}, sort_keys=True, default=str))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class NotValidatedError(RuntimeError):
    pass


def read_raw(lake: Lake, table: str, partition: str) -> tuple[str, pd.DataFrame]:
    """(sha256, rows) of one raw file from a single read of its bytes, so the hash a verdict
    records is the hash of exactly the rows that were validated (or published)."""
    return lake.read_partition_with_digest("raw", table, partition)


# Raw files a process has read lately, by file identity: the gate reads a partition for its rules,
# its peers' rules and the next batch's history, and `publish_validated` reads it again to publish
# exactly the bytes the verdict hashed. A file is only ever replaced (temp file + rename: a new
# inode), never changed in place, so (inode, size, mtime) names its bytes. Local lakes only.
_RAW_READS: OrderedDict[tuple, tuple[str, pa.Table]] = OrderedDict()
_RAW_READS_BYTES = 256 * 2**20
_RAW_READ_SIZE = [0]  # bytes held


def _file_identity(lake: Lake, table: str, partition: str) -> tuple | None:
    if lake.on_s3:
        return None
    try:
        return file_version(lake.partition_path("raw", table, partition))
    except OSError:
        return None


def read_raw_arrow(lake: Lake, table: str, partition: str,
                   columns: list[str] | None = None) -> tuple[str, pa.Table]:
    """`read_raw` without the pandas conversion: (sha256, Arrow rows) from one read of the bytes,
    the same errors as `Lake.read_partition_with_digest` (a file is parsed once, converted once
    per batch by `_frame_of`); a file read before in this process with the same identity and
    columns is not read again."""
    identity = _file_identity(lake, table, partition)
    key = (lake.root, table, partition, identity, tuple(columns) if columns is not None else None)
    if identity is not None and key in _RAW_READS:
        _RAW_READS.move_to_end(key)
        return _RAW_READS[key]
    digest, data = lake.read_partition_bytes("raw", table, partition)
    try:
        out = digest, _parse(data, columns)
    except (pa.ArrowInvalid, OSError) as exc:
        raise LakeReadError(f"raw/{table} partition {partition}: cannot read "
                            f"{lake.partition_path('raw', table, partition)}: {exc}") from exc
    if identity is not None and identity == _file_identity(lake, table, partition):  # not replaced meanwhile
        _RAW_READS[key] = out
        _RAW_READ_SIZE[0] += out[1].nbytes
        while _RAW_READ_SIZE[0] > _RAW_READS_BYTES and len(_RAW_READS) > 1:
            _RAW_READ_SIZE[0] -= _RAW_READS.popitem(last=False)[1][1].nbytes
    return out


def forget_raw_reads(lake: Lake, table: str, partitions: list[str]) -> None:
    """Drop the kept reads of these partitions (published: the batch's checks, which read them
    whole and as peers, have run), so the cache holds about one table's batch at a time."""
    done = {(lake.root, table, p) for p in partitions}
    for key in [k for k in _RAW_READS if k[:3] in done]:
        _RAW_READ_SIZE[0] -= _RAW_READS.pop(key)[1].nbytes


def _parse(data: bytes, columns: list[str] | None) -> pa.Table:
    """The rows of one Parquet file's bytes, as `pq.read_table` reads them. `ParquetFile` is a
    fraction of the cost for a small file (no dataset to set up); it ignores an absent column
    instead of failing, so that and any error go through `pq.read_table`, whose error is the one
    reported."""
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        if columns is None or set(columns) <= set(parquet.schema_arrow.names):
            return parquet.read(columns=columns, use_threads=False)
    except (pa.ArrowInvalid, OSError):
        pass
    return pq.read_table(pa.BufferReader(data), columns=columns, use_threads=False)


def _frame_of(tables: list[pa.Table]) -> pd.DataFrame:
    """The files' rows as one frame, equal to concatenating each file's own frame: one pandas
    conversion when every file has the same schema and no pandas metadata (an index to restore),
    else file by file as delivered."""
    first = tables[0].schema
    if first.metadata is None and all(t.schema.equals(first, check_metadata=True) for t in tables[1:]):
        return pa.concat_tables(tables).to_pandas()
    return pd.concat([t.to_pandas() for t in tables], ignore_index=True)


def verdict_name(partition: str) -> str:
    return f"date={partition}.json"


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

    def check_report(self) -> CheckReport:
        """The gate's result in the report shape every check shares."""
        return CheckReport(f"raw/{self.report.table}", self.report.n_rows, list(self.report.failures),
                           self.report.n_expectations)


def read_raw_partitions(lake: Lake, table: str, partitions: list[str]
                        ) -> tuple[pd.DataFrame, np.ndarray, dict[str, str], dict[str, str]]:
    """(rows of all readable partitions, each row's partition, sha256 per partition, unreadable)."""
    tables, row_parts, hashes, unreadable = [], [], {}, {}
    for p in partitions:  # per file: a raw file keeps its delivered dtypes, which may be wrong
        try:
            hashes[p], t = read_raw_arrow(lake, table, p)
        except (LakeReadError, FileNotFoundError) as exc:
            unreadable[p] = str(exc)
            continue
        tables.append(t)
        row_parts.append(np.full(t.num_rows, p, dtype=object))
    frame = _frame_of(tables) if tables else pd.DataFrame(columns=CONTRACTS[table].column_names)
    parts = np.concatenate(row_parts) if row_parts else np.array([], dtype=object)
    return frame, parts, hashes, unreadable


def _history(lake: Lake, table: str, first_partition: str) -> pd.DataFrame | None:
    """The table's raw rows of the sessions before the batch (oldest first), for the jump,
    completeness and stale-quote rules; only the columns those rules read."""
    tables = _read_columns(lake, table, history_sessions(first_partition), history_columns(table))
    return _frame_of(tables) if tables else None


def _read_columns(lake: Lake, table: str, partitions: list[str], columns: list[str] | None) -> list[pa.Table]:
    """`columns` of each readable raw file of `partitions` (a missing file or column skips that file)."""
    out = []
    for p in partitions:
        try:
            out.append(read_raw_arrow(lake, table, p, columns)[1])
        except (LakeReadError, OSError, KeyError):  # OSError: as `Lake.read_partition` wraps it
            continue
    return out


def _peers(lake: Lake, table: str, partitions: list[str]) -> dict[str, pd.DataFrame]:
    """Other tables' raw rows of the same partitions, for the cross-table rules (a rule whose
    peer is absent passes that day)."""
    out = {}
    for peer, cols in PEER_TABLES.get(table, {}).items():
        tables = _read_columns(lake, peer, partitions, cols)  # a missing column raises LakeReadError too
        if tables:
            out[peer] = _frame_of(tables)
    return out


def quarantine_unreadable(lake: Lake, table: str, partition: str, error: str) -> None:
    lake.copy_partition("raw", table, partition, QUARANTINE, "unreadable-part-0.parquet")
    lake.write_partition_text(QUARANTINE, table, partition, "reason.txt", error + "\n")


def run_gate(lake: Lake, table: str, partitions: list[str],
             stale_threshold: float = DEFAULT_STALE_THRESHOLD) -> GateResult:
    partitions = sorted(partitions)
    frame, row_parts, hashes, unreadable = read_raw_partitions(lake, table, partitions)
    readable = [p for p in partitions if p not in unreadable]
    report = validate_frame(table, frame, readable, _history(lake, table, partitions[0]), stale_threshold,
                            row_partitions=row_parts, peers=_peers(lake, table, readable))
    if unreadable:
        report.failures.append(RuleFailure("read_parquet", "*", "corrupt or missing raw file", 0, sorted(unreadable)))
    with lake.batch():  # quarantine copies and verdicts of the range, published together
        for p, err in unreadable.items():
            quarantine_unreadable(lake, table, p, err)
        for p, rows in report.quarantine_rows().items():
            as_text = {c: str for c in rows.columns if rows[c].dtype == object}
            lake.write_partition(QUARANTINE, table, p, rows.astype(as_text))
        failed = set(report.failed_partitions)
        version = suite_version(stale_threshold)
        for p in readable:
            lake.write_json(VERDICTS, table, verdict_name(p), {
                "table": table, "partition": p, "passed": p not in failed, "suite_version": version,
                "stale_threshold": stale_threshold, "raw_sha256": hashes[p],
            })
    return GateResult(report, unreadable)


def _castable(raw: pa.DataType, contract: pa.DataType) -> bool:
    """Whether Arrow's cast of `raw` to `contract` equals the pandas round trip of `lake.to_arrow`:
    same type, a string of either width, or a naive timestamp to a date (its calendar day)."""
    return raw == contract or (pa.types.is_string(contract) and pa.types.is_large_string(raw)) \
        or (pa.types.is_date32(contract) and pa.types.is_timestamp(raw) and raw.tz is None)


def contract_table(raw: pa.Table, table: str) -> pa.Table | None:
    """Raw rows sorted by the contract keys (stable) and cast to the contract schema in Arrow: the
    table `lake.write_partition(frame.sort_values(keys, kind="stable"), schema)` writes from the
    same rows, without two pandas conversions. None when a column needs pandas' coercions (other
    types, or NaN that pandas would store as null): publish it through pandas."""
    contract = CONTRACTS[table]
    types = dict(zip(raw.schema.names, raw.schema.types))
    if raw.schema.metadata is not None or any(f.name not in types or not _castable(types[f.name], f.type)
                                              for f in contract.schema):
        return None
    if any(pa.types.is_floating(t) and pc.any(pc.is_nan(raw.column(n))).as_py() for n, t in types.items()
           if n in contract.column_names):
        return None
    order = pc.sort_indices(raw, sort_keys=[(k, "ascending") for k in contract.keys])  # stable, like pandas'
    rows = raw.take(order)
    return pa.table({f.name: rows.column(f.name).cast(f.type).combine_chunks() for f in contract.schema},
                    schema=contract.schema)


def publish_validated(lake: Lake, table: str, partitions: list[str]) -> dict[str, int]:
    """Write validated/<table> for partitions whose raw file carries a passing verdict for its
    current content, from the suite as it is now; raise NotValidatedError naming every partition
    that does not."""
    contract = CONTRACTS[table]
    refused, raws = [], {}
    for p in partitions:  # the bytes hashed are the bytes published: no window for a raw rewrite
        verdict = lake.read_json(VERDICTS, table, verdict_name(p))
        try:
            digest, raws[p] = read_raw_arrow(lake, table, p)
        except (LakeReadError, FileNotFoundError):
            digest = None
        if digest is None or verdict is None or not verdict["passed"] \
                or verdict["suite_version"] != suite_version(verdict.get("stale_threshold", DEFAULT_STALE_THRESHOLD)) \
                or verdict["raw_sha256"] != digest:
            refused.append(p)
    if refused:
        raise NotValidatedError(
            f"validated/{table}: {len(refused)} partition(s) have no passing GE verdict for their current raw "
            f"file (failed check, raw changed since, or suite changed since): {', '.join(refused[:10])}")
    rows = {}
    with lake.batch():
        for p in partitions:
            arrow = contract_table(raws[p], table)
            if arrow is None:
                frame = raws[p].to_pandas().sort_values(list(contract.keys), kind="stable").reset_index(drop=True)
                lake.write_partition("validated", table, p, frame, contract.schema)
            else:
                lake.write_arrow("validated", table, p, arrow)
            rows[p] = raws[p].num_rows
    forget_raw_reads(lake, table, partitions)
    return rows
