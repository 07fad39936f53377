"""signals/<name>: one asset per signal set of `core.signal_sets`, each reading its declared
inputs, writing one Parquet file per day, and gated by a blocking check (its rules, plus: every
day of history it reads is in the lake)."""

import dagster as dg

from alvh_pipeline.assets._day_sets import build_day_set_asset
from alvh_pipeline.assets._shell import missing_inputs
from alvh_pipeline.core.signal_sets import SIGNAL_SETS, SignalSet


def build_signal_asset(ss: SignalSet) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    return build_day_set_asset(
        "signals", ss.name, ss.inputs, ss.keys, description=ss.description, compute=ss.compute,
        check_name="signal_check", check_description=ss.check_description,
        problems=lambda lake, frame, dates: missing_inputs(lake, ss.inputs, dates) + ss.problems(frame, dates))


_BUILT = [build_signal_asset(ss) for ss in SIGNAL_SETS.values()]
assets = [a for a, _ in _BUILT]
checks = [c for _, c in _BUILT]
inputs = {f"signals/{ss.name}": ss.inputs for ss in SIGNAL_SETS.values()}  # for `layers.table_plan`
