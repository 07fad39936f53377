"""features/<name>: one asset per feature set of `core.feature_sets`, each reading its look-back
window of validated tables in one dataset scan per table, writing one Parquet file per day, and
gated by a blocking check (rows for every day, finite values after warm-up, bounds, unique keys)."""

import dagster as dg

from alvh_pipeline.assets._shell import (
    check_result,
    input_keys,
    layer_table,
    metadata,
    partition_dates,
    read_inputs,
)
from alvh_pipeline.core.check_report import CheckReport
from alvh_pipeline.core.feature_sets import FEATURE_SETS, FeatureSet, feature_problems
from alvh_pipeline.layers import layer
from alvh_pipeline.partitions import trading_days
from alvh_pipeline.resources import LakeResource

LAYER = layer("features")


def build_feature_asset(fs: FeatureSet) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    table = layer_table("features", fs.name)

    @dg.asset(key=table.key, deps=input_keys(fs.inputs), partitions_def=trading_days,
              backfill_policy=LAYER.backfill_policy, group_name=table.layer, kinds={"parquet"},
              description=f"{fs.description}. Reads {fs.lookback} sessions of look-back from validated/*.")
    def feature_asset(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        dates = partition_dates(context)
        out = fs.compute(read_inputs(lake.lake, fs.inputs, dates), dates)
        rows = table.write_days(lake.lake, out, dates, fs.keys)
        extra = fs.summary(out, dates) if fs.summary else {}
        return dg.MaterializeResult(metadata=metadata({
            "rows": rows, "partitions": len(dates), "lookback_sessions": fs.lookback,
            "path": str(table.path(lake.lake)), **extra}))

    @dg.asset_check(asset=table.key, name="feature_check", blocking=True, partitions_def=trading_days,
                    description="rows for every day, finite values after warm-up, bounds, unique keys")
    def feature_check(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        dates = partition_dates(context)
        frame = table.read_days(lake.lake, dates)
        report = CheckReport(table.label, len(frame), feature_problems(fs, frame, dates))
        return check_result(report, partitions=len(dates))

    return feature_asset, feature_check


_BUILT = [build_feature_asset(fs) for fs in FEATURE_SETS.values()]
assets = [a for a, _ in _BUILT]
checks = [c for _, c in _BUILT]
