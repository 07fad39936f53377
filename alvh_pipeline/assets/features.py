"""features/<name>: one asset per feature set of `core.feature_sets`, each reading its look-back
window of validated tables from the lake in one dataset scan per table, writing one Parquet
file per day, and gated by a blocking check (rows for every day, finite values after warm-up,
bounds, unique keys)."""

import dagster as dg
import pandas as pd

from alvh_pipeline.core.calendar import window_start
from alvh_pipeline.core.feature_sets import FEATURE_SETS, FeatureSet, feature_problems
from alvh_pipeline.lake import Lake
from alvh_pipeline.partitions import backfill_policy, trading_days
from alvh_pipeline.resources import LakeResource
from alvh_pipeline.schemas import CONTRACTS



def read_validated(lake: Lake, tables, dates: pd.DatetimeIndex, lookback: int) -> dict[str, pd.DataFrame]:
    start = window_start(dates[0], lookback)
    return {t: lake.read_range("validated", t, start, dates[-1], schema=CONTRACTS[t].schema) for t in tables}


def write_days(lake: Lake, layer: str, name: str, frame: pd.DataFrame, dates: pd.DatetimeIndex, keys) -> int:
    frame = frame.sort_values(list(keys), kind="stable").reset_index(drop=True)
    frame["date"] = pd.to_datetime(frame["date"]).dt.date  # date32, like the hive partition key
    lake.write_range(layer, name, frame, dates)
    return len(frame)


def read_days(lake: Lake, layer: str, name: str, dates: pd.DatetimeIndex) -> pd.DataFrame:
    return lake.read_range(layer, name, dates[0], dates[-1])


def problems_result(problems: list[str], prefix: str = "", **metadata) -> dg.AssetCheckResult:
    """A blocking check's verdict from the list of problems it found (empty = pass)."""
    return dg.AssetCheckResult(
        passed=not problems,
        description=(prefix + "; ".join(problems))[:1000] if problems else "ok",
        metadata={"problems": dg.MetadataValue.json(problems), **metadata},
    )


def partition_dates(context) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(list(context.partition_keys)))


def build_feature_asset(fs: FeatureSet):
    key = dg.AssetKey(["features", fs.name])

    @dg.asset(key=key, deps=[dg.AssetKey(["validated", t]) for t in fs.tables], partitions_def=trading_days,
              backfill_policy=backfill_policy, group_name="features", kinds={"parquet"},
              description=f"{fs.description}. Reads {fs.lookback} sessions of look-back from validated/*.")
    def feature_asset(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        dates = partition_dates(context)
        frames = read_validated(lake.lake, fs.tables, dates, fs.lookback)
        out = fs.compute(frames, dates)
        rows = write_days(lake.lake, "features", fs.name, out, dates, fs.keys)
        meta = {"rows": rows, "partitions": len(dates), "lookback_sessions": fs.lookback,
                "path": str(lake.lake.table_dir("features", fs.name))}
        if fs.name == "pairs" and rows:
            meta["selected_pairs_last_day"] = int(out.loc[pd.to_datetime(out["date"]) == dates[-1], "selected"].sum())
        return dg.MaterializeResult(metadata=meta)

    @dg.asset_check(asset=key, name="feature_check", blocking=True, partitions_def=trading_days,
                    description="rows for every day, finite values after warm-up, bounds, unique keys")
    def feature_check(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        dates = partition_dates(context)
        problems = feature_problems(fs, read_days(lake.lake, "features", fs.name, dates), dates)
        return problems_result(problems, f"features/{fs.name}: ", partitions=len(dates))

    return feature_asset, feature_check


_BUILT = [build_feature_asset(fs) for fs in FEATURE_SETS.values()]
feature_assets = [a for a, _ in _BUILT]
feature_checks = [c for _, c in _BUILT]
