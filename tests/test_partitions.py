from datetime import datetime

import dagster as dg
import pandas as pd

from alvh_pipeline.partitions import trading_days


def test_2024_has_252_sessions_and_holidays_are_excluded():
    keys = trading_days.get_partition_keys(current_time=datetime(2025, 1, 10))
    assert len([k for k in keys if k.startswith("2024")]) == 252
    for holiday in ["2008-12-25", "2001-09-11", "2012-10-29", "2024-03-29", "2024-07-04"]:
        assert holiday not in keys
    assert keys[0] == "1999-01-04"
    assert all(pd.Timestamp(k).weekday() < 5 for k in keys)


def test_current_session_is_a_partition_for_the_nightly_run():
    keys = trading_days.get_partition_keys(current_time=datetime(2024, 3, 28, 19, 0))
    assert keys[-1] == "2024-03-28"


def test_day_local_assets_backfill_a_year_per_run_and_stateful_ones_in_one_run():
    from alvh_pipeline.assets import sweep
    from alvh_pipeline.definitions import defs
    from alvh_pipeline.layers import LAYERS

    graph = defs.resolve_asset_graph()
    stateful = {g for entry in LAYERS if entry.stateful for g in entry.groups}
    for key in graph.get_all_asset_keys():
        if graph.get(key).partitions_def is None:
            continue  # the range reports over everything the books hold
        policy = graph.get(key).backfill_policy
        if key.path[0] == "sweep":  # partitioned by scenario, not by day: runs of a few scenarios
            assert graph.get(key).partitions_def == sweep.SCENARIOS
            assert policy.max_partitions_per_run == sweep.RUN_SIZE, key
            continue
        if key.path[0] in stateful:
            assert policy == dg.BackfillPolicy.single_run(), key
        else:
            assert policy.max_partitions_per_run == 252, key
