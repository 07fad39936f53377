"""Stress windows, the synthetic shock and the verdict's sentences on hand-made inputs: window
figures are hand-computed, a window the books do not cover is 'not evaluated' (never 'holds'),
the claims flip at their thresholds, the shock's condor loss stops at its wings."""

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import stress, verdict
from alvh_pipeline.core.calendar import all_sessions
from alvh_pipeline.core.condor import max_loss_per_condor
from alvh_pipeline.core.metrics import xirr
from alvh_pipeline.core.pricing import black

S = all_sessions()


def _daily(start: str, end: str, mode: str, equity: np.ndarray, calls_vx=()) -> pd.DataFrame:
    days = S[(S >= start) & (S <= end)][: len(equity)]
    eq = np.asarray(equity, dtype=float)
    prev = np.r_[100_000.0, eq[:-1]]
    n = len(days)
    return pd.DataFrame({
        "date": days, "mode": mode, "equity": eq, "equity_change": eq - prev,
        "pnl_condor": np.r_[np.zeros(n - 1), -5_000.0], "pnl_L1": np.r_[np.zeros(n - 1), 2_000.0],
        "pnl_L2": 0.0, "pnl_L3": 500.0 / n, "pnl_synthetic": 0.0,
        "margin_calls": [1 if i in calls_vx else 0 for i in range(n)], "margin_call_size": 0.0,
        "margin_call_vx_alone": [i in calls_vx for i in range(n)],
        "vx_delta_dollars": 1_000.0, "cap_dollars": 2_000.0, "provenance": "index=real futures=real options=model"})


def test_window_figures_are_the_hand_computed_ones():
    eq = np.array([100_000, 101_000, 95_000, 97_000, 99_000.0])
    daily = _daily("2008-09-02", "2008-09-08", "steward", eq)
    (row,) = stress.window_stats(daily, S, "w", "2008-09-02", "2008-09-08")
    assert row["evaluated"] and row["coverage"] == 1.0
    assert row["max_drawdown"] == pytest.approx(95_000 / 101_000 - 1)
    assert row["worst_day"] == "2008-09-04" and row["worst_day_return"] == pytest.approx(95_000 / 101_000 - 1)
    assert row["hedge_payoff_over_condor_loss"] == pytest.approx(2_500 / 5_000)
    assert row["max_sizing_cap_use"] == pytest.approx(0.5)
    assert row["irr"] == pytest.approx(xirr([pd.Timestamp("2008-09-01"), pd.Timestamp("2008-09-08")],
                                            [-100_000, 99_000]))


def test_a_window_the_books_do_not_cover_is_not_evaluated():
    daily = _daily("2008-09-02", "2008-09-08", "steward", np.full(5, 100_000.0))
    (row,) = stress.window_stats(daily, S, "Aug 2011", "2011-07-25", "2011-08-31")
    assert not row["evaluated"] and row["provenance"] == "not materialized"
    table = verdict.verdict_table(pd.DataFrame([row]), pd.DataFrame())
    claims = verdict.claims(table, {"steward": 0.01, "promoter": 0.02})
    assert list(claims["status"][:2]) == ["not evaluated", "not evaluated"]


@pytest.mark.parametrize("trough, calls, expected", [(95_000, (), "holds"), (90_000, (), "does not hold"),
                                                       (95_000, (2,), "does not hold")])
def test_the_steward_claim_flips_at_nine_percent_or_a_margin_call(trough, calls, expected):
    eq = np.array([100_000, 100_000, trough, 99_000.0])
    daily = pd.concat([_daily("2008-09-02", "2008-09-05", "steward", eq, calls),
                       _daily("2008-09-02", "2008-09-05", "promoter", eq)])
    window = ("2008 crisis (Sep-Dec 2008)", "2008-09-02", "2008-09-05")
    table = verdict.verdict_table(pd.DataFrame(stress.window_stats(daily, S, *window)), pd.DataFrame())
    claims = verdict.claims(table, {"steward": 0.0, "promoter": 0.0}).set_index("claim")
    assert claims.loc[verdict.CLAIM_STEWARD, "status"] == expected
    assert "index=real futures=real" in claims.loc[verdict.CLAIM_STEWARD, "provenance"]


def test_the_promoter_claim_needs_frequent_calls_on_the_vx_leg_alone():
    eq = np.full(4, 100_000.0)
    window = ("2008 crisis (Sep-Dec 2008)", "2008-09-02", "2008-09-05")
    for calls, expected in (((1,), "does not hold"), ((1, 2), "holds")):
        daily = pd.concat([_daily("2008-09-02", "2008-09-05", "promoter", eq, calls),
                           _daily("2008-09-02", "2008-09-05", "steward", eq)])
        table = verdict.verdict_table(pd.DataFrame(stress.window_stats(daily, S, *window)), pd.DataFrame())
        status = verdict.claims(table, {}).set_index("claim").loc[verdict.CLAIM_PROMOTER, "status"]
        assert status == expected


def test_the_shock_reprices_options_fully_so_a_condors_loss_stops_at_its_wings():
    day = pd.Timestamp("2024-03-05")
    expiry = pd.Timestamp("2024-04-19")
    strikes, rights, qty = [1900.0, 2000.0, 2400.0, 2500.0], ["P", "P", "C", "C"], [1.0, -1.0, -1.0, 1.0]
    t = (expiry - day).days / 365.0
    marks = black(2200.0, np.array(strikes), t, 0.15, 1.0, np.array(rights))
    legs = pd.DataFrame({"date": day, "mode": "steward", "book": "condor", "layer": "condor", "instrument": "SPX",
                         "kind": "option", "right": rights, "strike": strikes, "expiry": expiry, "quantity": qty,
                         "multiplier": 100.0, "mark": marks, "underlying": 2200.0, "iv": 0.15,
                         "beta_to_vix": np.nan, "delta": 0.0, "gamma": 0.0, "vega": 0.0, "theta": 0.0})
    account = pd.DataFrame({"date": [day], "mode": ["steward"], "equity": [100_000.0], "margin_requirement": [10_000.0],
                            "margin_vx": [0.0], "vx_delta_dollars": [0.0], "cap_dollars": [2_000.0],
                            "provenance": ["synthetic"]})
    crash = stress.shock_scenario(legs, account, stress.Shock(vix_points=30, spx_return=-0.5))
    credit = float(-(np.array(qty) * marks).sum())
    worst = -max_loss_per_condor(100.0, 100.0, credit)
    assert crash["pnl_condor"].iloc[0] == pytest.approx(worst, rel=1e-3)  # deep through the put wing
    assert crash["pnl_condor"].iloc[0] >= worst - 1e-6
    calm = stress.shock_scenario(legs, account, stress.Shock(vix_points=0, spx_return=0.0, sessions=0))
    assert calm["pnl_condor"].iloc[0] == pytest.approx(0.0, abs=1e-6)
