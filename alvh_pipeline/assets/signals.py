"""signals/<name>: one asset per signal set of `core.signal_sets`, each reading its declared
inputs, writing one Parquet file per day, and gated by a blocking check (its rules, plus: every
day of history it reads is in the lake)."""

import dagster as dg

from alvh_pipeline.assets._shell import (
    check_result,
    input_keys,
    layer_table,
    metadata,
    missing_inputs,
    partition_dates,
    read_inputs,
)
from alvh_pipeline.core.check_report import CheckReport
from alvh_pipeline.core.signal_sets import SIGNAL_SETS, SignalSet
from alvh_pipeline.layers import layer
from alvh_pipeline.partitions import trading_days
from alvh_pipeline.resources import LakeResource

LAYER = layer("signals")


def build_signal_asset(ss: SignalSet) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    table = layer_table("signals", ss.name)

    @dg.asset(key=table.key, deps=input_keys(ss.inputs), partitions_def=trading_days,
              backfill_policy=LAYER.backfill_policy, group_name=table.layer, kinds={"parquet"},
              description=ss.description)
    def signal_asset(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        dates = partition_dates(context)
        out, summary = ss.compute(read_inputs(lake.lake, ss.inputs, dates), dates)
        rows = table.write_days(lake.lake, out, dates, ss.keys)
        return dg.MaterializeResult(metadata=metadata({
            "rows": rows, "partitions": len(dates), "path": str(table.path(lake.lake)), **summary}))

    @dg.asset_check(asset=table.key, name="signal_check", blocking=True, partitions_def=trading_days,
                    description=ss.check_description)
    def signal_check(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        dates = partition_dates(context)
        frame = table.read_days(lake.lake, dates)
        failures = missing_inputs(lake.lake, ss.inputs, dates) + ss.problems(frame, dates)
        return check_result(CheckReport(table.label, len(frame), failures), partitions=len(dates))

    return signal_asset, signal_check


_BUILT = [build_signal_asset(ss) for ss in SIGNAL_SETS.values()]
assets = [a for a, _ in _BUILT]
checks = [c for _, c in _BUILT]
