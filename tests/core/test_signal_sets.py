"""The signal-set registry and its check rules, without Dagster: each rule of the statarb and
regime checks fails on a row that breaks it and names the row; the declared inputs give the
history the planner materializes."""

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import signal_sets as ss
from alvh_pipeline.core import walk_forward as wf
from alvh_pipeline.core.calendar import all_sessions, window_start

DAYS = pd.DatetimeIndex(["2024-03-04", "2024-03-05"])


def _signals(**over) -> pd.DataFrame:
    base = {"date": DAYS, "symbol_y": ["A", "A"], "symbol_x": ["B", "B"], "zscore": [2.5, 0.3],
            "direction": [-1, 0], "conviction": [0.7, 0.0], "selected": [True, True], "pvalue": [0.01, 0.02],
            "vote_cointegration": [True, False], "vote_pcf": [True, False], "vote_skew": [True, True]}
    base.update(over)
    return pd.DataFrame(base)


def test_clean_signals_pass():
    assert ss.statarb_problems(_signals(), DAYS) == []


@pytest.mark.parametrize("over, rule", [
    ({"zscore": [np.nan, 0.3]}, "finite"),
    ({"direction": [-1, 2], "vote_pcf": [True, True], "vote_cointegration": [True, True]}, "direction_values"),
    ({"conviction": [1.2, 0.0]}, "conviction_bounds"),
    ({"pvalue": [0.5, 0.02]}, "no_signal_on_broken_pair"),
    ({"selected": [False, True]}, "no_signal_on_broken_pair"),
    ({"vote_pcf": [False, False]}, "three_inputs_agree"),
])
def test_each_statarb_rule_fails_and_names_the_row(over, rule):
    problems = ss.statarb_problems(_signals(**over), DAYS)
    assert [p.rule for p in problems] == [rule]
    assert problems[0].rows == 1 and problems[0].sample


def test_a_day_without_signal_rows_fails():
    (gap,) = ss.statarb_problems(_signals().iloc[:1], DAYS)
    assert gap.rule == "rows_every_day" and gap.partitions == ["2024-03-05"]


def _regime(**over) -> pd.DataFrame:
    base = {"date": DAYS, "regime": ["calm", "stressed"], "vix": [14.0, 35.0], "vx1": [15.0, 33.0],
            "vx2": [16.0, 30.0]}
    base.update(over)
    return pd.DataFrame(base)


def test_regime_rules():
    assert ss.regime_problems(_regime(), DAYS) == []
    assert [p.rule for p in ss.regime_problems(_regime(regime=["calm", "panic"]), DAYS)] == ["regime_label"]
    assert [p.column for p in ss.regime_problems(_regime(vx2=[16.0, np.nan]), DAYS)] == ["vx2"]
    dup = pd.concat([_regime(), _regime().iloc[[0]]])
    assert [p.rule for p in ss.regime_problems(dup, DAYS)] == ["one_row_per_day"]


def test_history_is_the_training_window_before_the_first_refit_in_force():
    start = pd.Timestamp("2024-03-14")
    refit = wf.refit_dates(all_sessions())
    first_refit = refit[refit <= start][-1]
    assert first_refit == pd.Timestamp("2024-03-01")
    assert ss.training_start(pd.DatetimeIndex([start])) == window_start(first_refit, ss.TRAIN_WINDOW)
    # vol surface: a full curvature year behind every training row, the earliest input of all
    assert ss.history_start(start) == window_start(ss.training_start(pd.DatetimeIndex([start])), ss.CURVATURE_WINDOW)
    # a run starting later in the same month reads the same history: its refit is the same
    assert ss.history_start("2024-03-28") == ss.history_start(start)


def test_registry_declares_inputs_keys_and_rules():
    assert set(ss.SIGNAL_SETS) == {"statarb", "regime"}
    for s in ss.SIGNAL_SETS.values():
        assert "date" in s.keys and s.inputs and callable(s.compute) and callable(s.problems)
    statarb_reads = {(i.layer, i.table) for i in ss.SIGNAL_SETS["statarb"].inputs}
    assert ("validated", "equity_bars") in statarb_reads and ("features", "vol_surface") in statarb_reads


def test_regime_compute_joins_its_three_inputs():
    macro = pd.DataFrame({"date": DAYS, "regime": ["calm", "elevated"], "vix": [14.0, 22.0], "days_to_FOMC": [5, 1],
                          "days_to_CPI": [9, 8], "days_to_PPI": [10, 9], "ad_line_252d": [100.0, 90.0]})
    term = pd.DataFrame({"date": DAYS, "vx1": [15.0, 21.0], "vx2": [16.0, 21.5], "backwardation": [False, False],
                         "slope_cm": [0.1, 0.02], "roll_yield_cm30": [-0.001, -0.0005]})
    liq = pd.DataFrame({"date": DAYS, "depth_quick_ratio": [2.0, 0.5], "participation_ok": [True, False],
                        "evap_warning": [False, True]})
    out, summary = ss.compute_regime({"macro_regime": macro, "term_structure": term, "liquidity": liq}, DAYS)
    assert out["event_within_2d"].tolist() == [False, True]
    assert summary == {"regimes": {"calm": 1, "elevated": 1}}
    assert ss.regime_problems(out, DAYS) == []
