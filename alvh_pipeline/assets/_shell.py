"""What every layer's assets share: the partition dates of a run, one `layer_table` that gives both
the asset key and the lake location (so the two cannot drift apart), reading a computation's
declared inputs, writing a layer's days, and rendering a `CheckReport` as an asset check result
(the same metadata for every gate).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa

from alvh_pipeline.core.check_report import CheckReport, RuleFailure
from alvh_pipeline.core.inputs import Input
from alvh_pipeline.lake import DateLike, Lake, Location
from alvh_pipeline.schemas import CONTRACTS

TYPED_LAYERS = ("validated",)  # lake layers whose tables are read with their contract's schema


def partition_dates(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> pd.DatetimeIndex:
    """The run's trading days, in order."""
    return pd.DatetimeIndex(pd.to_datetime(sorted(context.partition_keys)))


@dataclass(frozen=True)
class LayerTable:
    layer: str  # lake layer = asset key prefix = asset group
    name: str

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey([self.layer, self.name])

    @property
    def label(self) -> str:
        return f"{self.layer}/{self.name}"

    def path(self, lake: Lake) -> Location:
        return lake.table_dir(self.layer, self.name)

    def read(self, lake: Lake, start: DateLike, end: DateLike, columns: Sequence[str] | None = None,
             reuse: bool = False) -> pd.DataFrame:
        """Rows of start..end; `reuse`: through the lake's history cache (reads of the whole history)."""
        schema = CONTRACTS[self.name].schema if self.layer in TYPED_LAYERS else None
        return lake.read_range(self.layer, self.name, start, end, columns=list(columns) if columns else None,
                               schema=schema, reuse=reuse)

    def read_days(self, lake: Lake, dates: pd.DatetimeIndex) -> pd.DataFrame:
        return self.read(lake, dates[0], dates[-1])

    def write_days(self, lake: Lake, frame: pd.DataFrame, dates: pd.DatetimeIndex, keys: Iterable[str],
                   schema: pa.Schema | None = None) -> int:
        """One file per day of `dates` (an empty file for a day without rows), sorted by `keys`;
        with `schema`, every file has exactly its types (else they are inferred from the rows)."""
        frame = frame.sort_values(list(keys), kind="stable").reset_index(drop=True)
        frame["date"] = pd.to_datetime(frame["date"]).dt.date  # date32, like the hive partition key
        lake.write_range(self.layer, self.name, frame, dates, schema)
        return len(frame)

    def days_present(self, lake: Lake, start: DateLike | None = None, end: DateLike | None = None) -> pd.DatetimeIndex:
        """The days with a partition file (start..end, inclusive, when given)."""
        return pd.DatetimeIndex(pd.to_datetime(lake.partitions(self.layer, self.name, start, end)))


def layer_table(layer: str, name: str) -> LayerTable:
    return LayerTable(layer, name)


def input_keys(inputs: Iterable[Input]) -> list[dg.AssetKey]:
    return [layer_table(i.layer, i.table).key for i in inputs]


# A run of a few sessions (the nightly's one, a catch-up) reads a look-back of hundreds of daily files
# that the last such run read too: it reads them through the lake's history cache (`Lake.read_range`,
# `reuse`): one file, and the files it does not hold yet. A backfill's range reads its files once;
# keeping a cache of every range it read would only cost disk.
SHORT_RUN_SESSIONS = 5


def is_short_run(dates: pd.DatetimeIndex) -> bool:
    return len(dates) <= SHORT_RUN_SESSIONS


def read_inputs(lake: Lake, inputs: Iterable[Input], dates: pd.DatetimeIndex) -> dict[str, pd.DataFrame]:
    """Each input's rows from its first day to the run's last, in one dataset scan per table (a
    short run: through the lake's history cache)."""
    reuse = is_short_run(dates)
    return {i.table: layer_table(i.layer, i.table).read(lake, i.first_day(dates), dates[-1], i.columns, reuse=reuse)
            for i in inputs}


def missing_inputs(lake: Lake, inputs: Iterable[Input], dates: pd.DatetimeIndex) -> list[RuleFailure]:
    """One failure per required input whose days are not all in the lake, saying what to run."""
    out = []
    for i in inputs:
        if not i.required:
            continue
        need = i.days(dates)
        gap = need.difference(layer_table(i.layer, i.table).days_present(lake, need[0], need[-1]) if len(need)
                              else pd.DatetimeIndex([]))
        if len(gap):
            out.append(RuleFailure(
                "input_history", f"{i.layer}/{i.table}",
                f"missing for {len(gap)} of the {len(need)} sessions read ({gap[0].date()}..{gap[-1].date()}): "
                f"materialize {i.layer}/{i.table} over that range first", 0,
                [d.strftime("%Y-%m-%d") for d in gap]))
    return out


def metadata(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values as Dagster metadata: numbers and text as they are, dicts/lists as JSON, keys
    ending in `_md` as markdown (the suffix dropped)."""
    out = {}
    for k, v in values.items():
        if k.endswith("_md"):
            out[k[:-3]] = dg.MetadataValue.md(str(v))
        elif isinstance(v, dict | list | tuple):
            out[k] = dg.MetadataValue.json(v if not isinstance(v, tuple) else list(v))
        else:
            out[k] = v
    return out


def check_result(report: CheckReport, **extra: Any) -> dg.AssetCheckResult:
    """Every gate's result, rendered the same way: pass/fail, one line, per-rule counts, failing
    partitions, sample offending rows."""
    return dg.AssetCheckResult(
        passed=report.passed,
        description=report.description[:1000],
        metadata={
            "rows_checked": report.n_rows,
            **({"rules": report.n_rules} if report.n_rules is not None else {}),
            "failed_rules": len(report.failures),
            "failures": dg.MetadataValue.md(report.failure_table_md()),
            "failures_by_rule": dg.MetadataValue.json({f"{f.rule}:{f.column}": f.rows for f in report.failures}),
            "failed_partitions": dg.MetadataValue.json(report.failed_partitions),
            "sample_rows": dg.MetadataValue.json(report.samples()),
            **metadata(extra),
        },
    )


def table_md(frame: pd.DataFrame, digits: int = 4) -> str:
    """A frame as a markdown table for check / asset metadata (numbers to `digits` significant)."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if v != v else f"{v:.{digits}g}"
        return str(v).replace("|", "/")

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])
