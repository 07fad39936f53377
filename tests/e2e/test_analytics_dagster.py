"""features/* and signals/* through Dagster: a multi-month single-run range with every check
passing, and the no-look-ahead proof: perturb every validated input after day t (prices,
fundamentals, option chains, futures, breadth, rates, calendar) and every feature and signal for
days <= t is unchanged."""

import shutil
import warnings

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core.calendar import all_sessions
from alvh_pipeline.core.market_sim import SimConfig
from alvh_pipeline.definitions import defs
from alvh_pipeline.lake import Lake
from alvh_pipeline.resources import LakeResource
from alvh_pipeline.schemas import CONTRACTS, RAW_TABLES
from alvh_pipeline.sources import synthetic
from alvh_pipeline.sources.resource import MarketSource

warnings.filterwarnings("ignore", category=dg.BetaWarning)
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
CUT = pd.Timestamp("2023-06-30")
S = all_sessions()
FIRST = S[S.get_loc(CUT) - 80]  # analytics range: ~4 months, so the walk-forward model trains before CUT
LAST = S[S.get_loc(CUT) + 10]
HISTORY = S[S.get_loc(FIRST) - 280]
CFG = SimConfig(n_equities=40)
PRICE_COLS = {"open", "high", "low", "close", "bid", "ask", "settle", "underlying", "future_price",
              "eps_ttm", "cfps_ttm", "dps_ttm", "tbill_3m", "reer_index", "rate_differential", "surprise"}
COUNT_COLS = {"advancers", "decliners", "volume", "bid_size", "ask_size"}


def build_validated(root, start, end) -> Lake:
    """The validated layer as the ingest job would leave it (ingest itself is tested elsewhere)."""
    lake = Lake(str(root))
    days = S[(S >= start) & (S <= end)]
    for t in RAW_TABLES:
        frame = synthetic.generate(t, days, CFG)
        lake.write_range("validated", t, frame.sort_values(list(CONTRACTS[t].keys)), days, CONTRACTS[t].schema)
    return lake


def perturb_after(lake: Lake, cut: pd.Timestamp) -> None:
    rng = np.random.default_rng(3)
    for t in RAW_TABLES:
        for key in lake.partitions("validated", t):
            if pd.Timestamp(key) <= cut:
                continue
            f = lake.read_partition("validated", t, key)
            for c in f.columns:
                if c in PRICE_COLS:
                    f[c] = f[c] * (1 + 0.2 * rng.random(len(f)))
                elif c in COUNT_COLS:
                    f[c] = f[c] * 2
            lake.write_partition("validated", t, key, f, CONTRACTS[t].schema)


def run_analytics(root):
    return defs.resolve_job_def("analytics").execute_in_process(
        run_config=QUIET, raise_on_error=False,
        resources={"lake": LakeResource(root=str(root)), "source": MarketSource()},
        tags={"dagster/asset_partition_range_start": FIRST.strftime("%Y-%m-%d"),
              "dagster/asset_partition_range_end": LAST.strftime("%Y-%m-%d")})


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    a = tmp_path_factory.mktemp("lake_a")
    b = tmp_path_factory.mktemp("lake_b")
    build_validated(a, HISTORY, LAST)
    shutil.copytree(a, b, dirs_exist_ok=True)
    perturb_after(Lake(str(b)), CUT)
    return (a, run_analytics(a)), (b, run_analytics(b))


OUTPUTS = [("features", n) for n in ("pairs", "pair_inputs", "baskets", "technicals", "fundamentals", "vol_surface",
                                     "term_structure", "liquidity", "macro_regime")] + [("signals", "statarb"),
                                                                                       ("signals", "regime")]


def test_all_features_and_signals_materialize_with_checks_passing(lakes):
    (root, res), _ = lakes
    assert res.success
    checks = res.get_asset_check_evaluations()
    assert len(checks) == len(OUTPUTS) and all(c.passed for c in checks), [c.description for c in checks if not c.passed]
    lake = Lake(str(root))
    days = S[(S >= FIRST) & (S <= LAST)]
    for layer, name in OUTPUTS:
        assert len(lake.partitions(layer, name)) == len(days), (layer, name)
    sig = lake.read_range("signals", "statarb", FIRST, LAST)
    assert sig["model_trained"].any()  # the walk-forward model was fitted inside the range


@pytest.mark.parametrize("layer, name", OUTPUTS)
def test_no_look_ahead(lakes, layer, name):
    (a_root, _), (b_root, res_b) = lakes
    assert res_b.success
    a = Lake(str(a_root)).read_range(layer, name, FIRST, LAST)
    b = Lake(str(b_root)).read_range(layer, name, FIRST, LAST)
    before_a, before_b = (pd.to_datetime(x["date"]) <= CUT for x in (a, b))
    pd.testing.assert_frame_equal(a[before_a].reset_index(drop=True), b[before_b].reset_index(drop=True))
    # and the perturbation did reach the days after the cut
    assert not a[~before_a].reset_index(drop=True).equals(b[~before_b].reset_index(drop=True))
