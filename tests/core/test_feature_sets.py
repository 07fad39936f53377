"""The feature-set registry without Dagster: each set computes rows for exactly the asked days
from its declared look-back, and the blocking check's rules catch a missing day, a non-finite
value, an out-of-bounds value and a duplicated key, naming the rows."""

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import feature_sets as fsets
from alvh_pipeline.core.calendar import all_sessions, window_start
from alvh_pipeline.core.market_sim import SimConfig
from alvh_pipeline.sources import synthetic

S = all_sessions()
DAYS = S[(S >= "2023-06-01") & (S <= "2023-06-07")]
CFG = SimConfig(n_equities=20)


@pytest.fixture(scope="module")
def computed():
    out = {}
    for name in ("vol_surface", "term_structure", "liquidity", "macro_regime"):
        fs = fsets.FEATURE_SETS[name]
        history = S[(S >= window_start(DAYS[0], fs.lookback)) & (S <= DAYS[-1])]
        frames = {t: synthetic.generate(t, history, CFG) for t in fs.tables}
        out[name] = fs.compute(frames, DAYS)
    return out


@pytest.mark.parametrize("name", ["vol_surface", "term_structure", "liquidity", "macro_regime"])
def test_a_feature_set_gives_one_row_per_asked_day_and_passes_its_check(computed, name):
    fs = fsets.FEATURE_SETS[name]
    out = computed[name]
    assert pd.DatetimeIndex(out["date"]).equals(DAYS)
    assert fsets.feature_problems(fs, out, DAYS) == []


def test_the_check_rules_catch_each_defect(computed):
    fs = fsets.FEATURE_SETS["vol_surface"]
    good = computed["vol_surface"]
    bad = good.copy()
    bad.loc[1, "iv_atm"] = np.nan  # non-finite and (NaN) not out of bounds
    bad.loc[2, "iv_atm"] = 7.0  # out of bounds [0.01, 3]
    bad = pd.concat([bad.drop(index=4), bad.iloc[[0]]])  # a missing day and a duplicated key
    rules = {(p.rule, p.column): p for p in fsets.feature_problems(fs, bad, DAYS)}
    assert set(rules) == {("rows_every_day", "date"), ("finite", "iv_atm"), ("bounds", "iv_atm"),
                          ("unique_keys", "date")}
    assert rules[("rows_every_day", "date")].partitions == [DAYS[4].strftime("%Y-%m-%d")]
    assert rules[("bounds", "iv_atm")].sample[0]["iv_atm"] == 7.0
    assert rules[("finite", "iv_atm")].partitions == [DAYS[1].strftime("%Y-%m-%d")]


def test_inputs_declare_the_look_back_of_every_table():
    for fs in fsets.FEATURE_SETS.values():
        assert [i.table for i in fs.inputs] == list(fs.tables)
        assert all(i.layer == "validated" and i.first_day(DAYS) == window_start(DAYS[0], fs.lookback)
                   for i in fs.inputs)
    assert fsets.history_start(DAYS[0]) == window_start(DAYS[0], fsets.MAX_LOOKBACK)


def test_pairs_summary_counts_the_last_days_selections():
    fs = fsets.FEATURE_SETS["pairs"]
    out = pd.DataFrame({"date": DAYS[-2:].repeat(2), "selected": [True, True, True, False]})
    assert fs.summary(out, DAYS[-2:]) == {"selected_pairs_last_day": 1}
