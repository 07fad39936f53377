"""features/<name>: one asset per feature set of `core.feature_sets`, each reading its look-back
window of validated tables in one dataset scan per table, writing one Parquet file per day, and
gated by a blocking check (rows for every day, finite values after warm-up, bounds, unique keys)."""

import dagster as dg

from alvh_pipeline.assets._day_sets import build_day_set_asset
from alvh_pipeline.core.feature_sets import FEATURE_SETS, FeatureSet, feature_problems


def build_feature_asset(fs: FeatureSet) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    def compute(frames, dates):
        out = fs.compute(frames, dates)
        return out, {"lookback_sessions": fs.lookback, **(fs.summary(out, dates) if fs.summary else {})}

    return build_day_set_asset(
        "features", fs.name, fs.inputs, fs.keys,
        description=f"{fs.description}. Reads {fs.lookback} sessions of look-back from validated/*.",
        compute=compute, check_name="feature_check",
        check_description="rows for every day, finite values after warm-up, bounds, unique keys",
        problems=lambda lake, frame, dates: feature_problems(fs, frame, dates))


_BUILT = [build_feature_asset(fs) for fs in FEATURE_SETS.values()]
assets = [a for a, _ in _BUILT]
checks = [c for _, c in _BUILT]
inputs = {f"features/{fs.name}": fs.inputs for fs in FEATURE_SETS.values()}  # for `layers.table_plan`
