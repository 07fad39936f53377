"""One asset per entry of a day-local registry (`core.feature_sets`, `core.signal_sets`): it reads
the entry's declared inputs over the run's days and their look-back, writes one Parquet file per
day, and is gated by a blocking check rendering the entry's rules as a `CheckReport`.

No `from __future__ import annotations` here: Dagster reads the asset functions' annotations.
"""

from collections.abc import Callable
from typing import Any

import dagster as dg
import pandas as pd

from alvh_pipeline.assets._shell import check_result, input_keys, layer_table, metadata, partition_dates, read_inputs
from alvh_pipeline.core.check_report import CheckReport, RuleFailure
from alvh_pipeline.core.inputs import Input
from alvh_pipeline.lake import Lake
from alvh_pipeline.partitions import DAY_LOCAL, trading_days
from alvh_pipeline.resources import LakeResource

Compute = Callable[[dict[str, pd.DataFrame], pd.DatetimeIndex], tuple[pd.DataFrame, dict[str, Any]]]
Problems = Callable[[Lake, pd.DataFrame, pd.DatetimeIndex], list[RuleFailure]]


def build_day_set_asset(layer_name: str, name: str, inputs: tuple[Input, ...], keys: tuple[str, ...],
                        description: str, compute: Compute, check_name: str, check_description: str,
                        problems: Problems) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    """`compute(frames, dates)` -> (rows of every day, extra run metadata); `problems(lake, frame,
    dates)` -> the check's failures on the rows written."""
    table = layer_table(layer_name, name)

    @dg.asset(key=table.key, deps=input_keys(inputs), partitions_def=trading_days,
              backfill_policy=DAY_LOCAL, group_name=table.layer, kinds={"parquet"},
              description=description)
    def day_set_asset(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        dates = partition_dates(context)
        out, extra = compute(read_inputs(lake.lake, inputs, dates), dates)
        rows = table.write_days(lake.lake, out, dates, keys)
        return dg.MaterializeResult(metadata=metadata({
            "rows": rows, "partitions": len(dates), "path": str(table.path(lake.lake)), **extra}))

    @dg.asset_check(asset=table.key, name=check_name, blocking=True, partitions_def=trading_days,
                    description=check_description)
    def day_set_check(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        dates = partition_dates(context)
        frame = table.read_days(lake.lake, dates)
        report = CheckReport(table.label, len(frame), problems(lake.lake, frame, dates))
        return check_result(report, partitions=len(dates))

    return day_set_asset, day_set_check
