"""benchmarks/* through Dagster on the replay's validated tables: the daily indexes with their check
passing, a range split in two runs writing the same files as one run, a gap refused, the
comparison with Cboe's published returns and its tolerance check, and the verdict's label."""

import warnings

import dagster as dg
import pandas as pd
import pytest

from alvh_pipeline.assets import benchmarks as assets
from alvh_pipeline.core import benchmarks as bm
from alvh_pipeline.core.calendar import sessions_between
from alvh_pipeline.lake import Lake
from alvh_pipeline.resources import LakeResource
from alvh_pipeline.schemas import CONTRACTS
from alvh_pipeline.sources import replay
from alvh_pipeline.sources.resource import MarketSource

warnings.filterwarnings("ignore", category=dg.BetaWarning)
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
START, END = pd.Timestamp("2007-12-03"), pd.Timestamp("2009-01-09")  # the whole of 2008 and its year-ends
DAYS = sessions_between(START, END)


def build_validated(root) -> Lake:
    lake = Lake(str(root))
    for t in ("spx_options", "index_levels", "rates"):
        frame = replay.generate(t, DAYS)
        lake.write_range("validated", t, frame.sort_values(list(CONTRACTS[t].keys)), DAYS, CONTRACTS[t].schema)
    return lake


def run(root, start, end, selection):
    """The benchmarks layer's `selection` (asset keys) with their checks, over [start, end]."""
    return dg.materialize(
        [*assets.assets, *assets.checks], selection=selection, run_config=QUIET, raise_on_error=False,
        resources={"lake": LakeResource(root=str(root)), "source": MarketSource(kind="replay")},
        tags={"dagster/asset_partition_range_start": start.strftime("%Y-%m-%d"),
              "dagster/asset_partition_range_end": end.strftime("%Y-%m-%d")})


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    whole, split = tmp_path_factory.mktemp("whole"), tmp_path_factory.mktemp("split")
    for root in (whole, split):
        build_validated(root)
    daily = [assets.INDEXES.key]
    res = run(whole, START, END, daily)
    cut = pd.Timestamp("2008-06-30")
    res1 = run(split, START, cut, daily)
    res2 = run(split, DAYS[DAYS > cut][0], END, daily)
    return whole, split, res, (res1, res2)


def test_daily_indexes_and_check_pass(lakes):
    whole, _, res, _ = lakes
    assert res.success
    checks = res.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    f = assets.INDEXES.read(Lake(str(whole)), START, END)
    first_roll = bm.roll_dates(START, END)[0]
    assert set(f["index"]) == set(bm.INDEXES)
    assert pd.to_datetime(f["date"]).min() == first_roll  # an index starts on a roll date
    assert (f.groupby("index").size() == len(DAYS[DAYS >= first_roll])).all()


def test_split_runs_write_the_same_files_as_one(lakes):
    whole, split, _, (res1, res2) = lakes
    assert res1.success and res2.success
    a = assets.INDEXES.read(Lake(str(whole)), START, END)
    b = assets.INDEXES.read(Lake(str(split)), START, END)
    pd.testing.assert_frame_equal(a, b)


def test_a_gap_is_refused(lakes, tmp_path):
    _, split, _, _ = lakes
    res = run(split, pd.Timestamp("2009-01-06"), END, [assets.INDEXES.key])  # continues from 2009-01-05: fine
    assert res.success
    gap = Lake(str(tmp_path))
    build_validated(tmp_path)
    assert run(tmp_path, START, pd.Timestamp("2008-03-31"), [assets.INDEXES.key]).success
    with pytest.raises(assets.MissingBenchmarkStateError, match="2008-04-30"):
        assets.initial_states(gap, pd.Timestamp("2008-05-01"))


def test_comparison_names_2008_and_its_tolerance_check_can_fail(lakes):
    whole, _, _, _ = lakes
    res = run(whole, START, END, [assets.COMPARISON.key])
    assert res.success
    table = Lake(str(whole)).read_table("benchmarks", "comparison")
    assert set(table["period"]) == {"2008"} and set(table["index"]) == set(bm.INDEXES)
    evaluation = res.get_asset_check_evaluations()[0]
    failures = assets.tolerance_failures(table)
    assert evaluation.passed == (not failures)
    off = table.assign(error_pts=table["error_pts"] + 50.0)  # a model far off the published figures fails
    assert assets.tolerance_failures(off)[0].rows == len(table)
    label = assets.fit_label(Lake(str(whole)))
    assert label.startswith("model calibrated (") and "CNDR 2008 error" in label and "this lake" in label
