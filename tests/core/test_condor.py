"""SPX iron condor selection, payoff, margin and exits (alvh_pipeline.core.condor)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import calendar as cal
from alvh_pipeline.core.condor import (
    LEG_COLUMNS,
    CondorRules,
    break_evens,
    condor_credit,
    condor_margin,
    condor_payoff,
    condor_widths,
    exit_reason,
    is_monthly_expiry,
    max_loss_per_condor,
    select_condor,
)
from alvh_pipeline.core.option_marks import mark_chain
from alvh_pipeline.sources import synthetic

DAY = pd.Timestamp("2024-03-05")  # listed monthlies: 2024-03-15 (10 DTE), 2024-04-19 (45 DTE), ...


@pytest.fixture(scope="module")
def marked() -> pd.DataFrame:
    return mark_chain(synthetic.generate("spx_options", [DAY]), "spx")


@pytest.fixture(scope="module")
def legs(marked) -> pd.DataFrame:
    return select_condor(marked, CondorRules())


# ---- monthly expiries ----------------------------------------------------------------------------

def test_third_fridays_are_monthly_and_other_days_are_not():
    days = pd.to_datetime(["2024-03-15", "2024-04-19", "2023-12-15",   # third Fridays
                           "2024-03-22", "2024-03-08",                 # weekly Fridays
                           "2024-03-28",                               # Thursday before Good Friday 03-29, not monthly
                           "2024-03-14", "2024-04-18"])                # Thursdays before a regular third Friday
    np.testing.assert_array_equal(is_monthly_expiry(days), [True, True, True, False, False, False, False, False])
    # a Series (with NaT) works too; NaT is not an expiry
    s = pd.Series(pd.to_datetime(["2024-04-19", None]))
    np.testing.assert_array_equal(is_monthly_expiry(s), [True, False])


def test_holiday_third_fridays_move_to_the_thursday():
    """The months whose third Friday is an NYSE holiday (from the calendar, not a hand list):
    Good Fridays and Juneteenth 2026. Their Thursday is the monthly expiry, the Friday is not."""
    months = pd.period_range("1999-01", "2026-12", freq="M")
    friday = cal.third_friday(months.year, months.month)
    holiday = friday[~cal.is_session(friday)]
    assert list(holiday.strftime("%Y-%m-%d")) == ["2000-04-21", "2003-04-18", "2008-03-21", "2014-04-18",
                                                   "2019-04-19", "2022-04-15", "2025-04-18", "2026-06-19"]
    thursday = holiday - pd.Timedelta(days=1)
    assert is_monthly_expiry(thursday).all()
    assert not is_monthly_expiry(holiday).any()
    np.testing.assert_array_equal(is_monthly_expiry(pd.to_datetime(["2014-04-17", "2025-04-17", "2014-04-18"])),
                                  [True, True, False])


def test_exactly_one_monthly_expiry_per_month():
    every_day = pd.date_range("1999-01-01", "2026-12-31", freq="D")
    hits = every_day[is_monthly_expiry(every_day)]
    assert len(hits) == 28 * 12
    assert hits.to_period("M").is_unique
    assert set(hits.weekday) == {3, 4}  # Fridays, and Thursdays before a holiday Friday


# ---- leg selection -------------------------------------------------------------------------------

def test_select_condor_structure_and_fills(legs):
    assert list(legs.columns) == LEG_COLUMNS
    assert len(legs) == 4
    assert (legs["expiry"] == pd.Timestamp("2024-04-19")).all()  # the monthly at 45 DTE, not the 10-DTE March
    assert (legs["dte"] == 45).all()
    assert list(legs["option_type"]) == ["P", "P", "C", "C"]
    assert list(legs["side"]) == [1, -1, -1, 1]
    k = legs["strike"].to_numpy()
    assert k[0] < k[1] < k[2] < k[3]
    np.testing.assert_array_equal(legs["fill"], [legs["ask"][0], legs["bid"][1], legs["bid"][2], legs["ask"][3]])
    credit = condor_credit(legs)
    hand = legs["bid"][1] + legs["bid"][2] - legs["ask"][0] - legs["ask"][3]
    assert credit == pytest.approx(hand, rel=1e-15)
    assert credit > 0
    assert condor_widths(legs) == (k[1] - k[0], k[3] - k[2])


def test_shorts_and_wings_are_nearest_target_delta(marked, legs):
    """Brute force over the expiry's quotes: each leg has the |delta| nearest its target among
    the eligible strikes (shorts OTM with a bid; wings further OTM with an ask)."""
    chain = marked[marked["expiry"] == pd.Timestamp("2024-04-19")]
    fwd = chain["forward"].iloc[0]
    puts, calls = chain[chain["option_type"] == "P"], chain[chain["option_type"] == "C"]
    lp, sp, sc, lc = (legs.iloc[i] for i in range(4))
    assert sp["strike"] < fwd <= sc["strike"]

    def best(cands: pd.DataFrame, target: float) -> float:
        return float(cands.loc[(cands["delta"].abs() - target).abs().idxmin(), "strike"])

    assert sp["strike"] == best(puts[(puts["strike"] < fwd) & (puts["bid"] > 0)], 0.16)
    assert sc["strike"] == best(calls[(calls["strike"] >= fwd) & (calls["bid"] > 0)], 0.16)
    assert lp["strike"] == best(puts[(puts["strike"] < sp["strike"]) & (puts["ask"] > 0)], 0.05)
    assert lc["strike"] == best(calls[(calls["strike"] > sc["strike"]) & (calls["ask"] > 0)], 0.05)
    # the strikes are listed every 5 points, so the deltas land close to the targets
    assert abs(abs(sp["delta"]) - 0.16) < 0.01 and abs(abs(sc["delta"]) - 0.16) < 0.01
    assert abs(abs(lp["delta"]) - 0.05) < 0.005 and abs(abs(lc["delta"]) - 0.05) < 0.005
    # the legs carry the marked greeks of their rows
    row = chain[(chain["strike"] == sp["strike"]) & (chain["option_type"] == "P")].iloc[0]
    for c in ("iv", "delta", "gamma", "vega", "theta", "mid"):
        assert sp[c] == row[c]


@pytest.mark.parametrize(("width", "put_wing", "call_wing"), [
    (50.0, 50.0, 50.0),   # listed exactly
    (47.0, 45.0, 45.0),   # K_ps - 47 is nearest the strike 45 below (strikes every 5)
    (52.5, 50.0, 50.0),   # a tie between 50 and 55: the narrower spread
])
def test_fixed_wing_width(marked, legs, width, put_wing, call_wing):
    fixed = select_condor(marked, CondorRules(wing_width=width))
    assert fixed["strike"][1] == legs["strike"][1] and fixed["strike"][2] == legs["strike"][2]  # same shorts
    assert condor_widths(fixed) == (put_wing, call_wing)
    assert condor_credit(fixed) > 0


def test_empty_when_no_expiry_qualifies(marked):
    # 2024-04-19 is at 45 DTE and 2024-05-17 at 73: nothing monthly in 30-40 or 50-60 DTE
    for rules in (CondorRules(min_dte=30, max_dte=40), CondorRules(min_dte=50, max_dte=60)):
        empty = select_condor(marked, rules)
        assert empty.empty and list(empty.columns) == LEG_COLUMNS
    # without the monthly filter the 31-DTE weekly of 2024-04-05 is the nearest in 30-40
    weekly = select_condor(marked, CondorRules(min_dte=30, max_dte=40, monthly_only=False))
    assert (weekly["expiry"] == pd.Timestamp("2024-04-05")).all() and (weekly["dte"] == 31).all()
    # the nearest of several qualifying expiries
    wide = select_condor(marked, CondorRules(min_dte=20, max_dte=80))
    assert (wide["expiry"] == pd.Timestamp("2024-04-19")).all()


def test_empty_when_a_leg_is_missing(marked):
    no_calls_bid = marked.assign(bid=np.where(marked["option_type"] == "C", 0.0, marked["bid"]))
    assert select_condor(no_calls_bid, CondorRules()).empty
    # a short put with no listed strike below it has no wing
    chain = marked[marked["expiry"] == pd.Timestamp("2024-04-19")]
    sp = select_condor(marked, CondorRules())["strike"][1]
    assert select_condor(chain[chain["strike"] >= sp], CondorRules()).empty
    assert select_condor(marked.iloc[:0], CondorRules()).empty


def test_one_day_only(marked):
    two = pd.concat([marked, marked.assign(date=marked["date"] + pd.Timedelta(days=1))])
    with pytest.raises(ValueError, match="one day"):
        select_condor(two, CondorRules())


def test_opens_exactly_on_days_with_a_monthly_in_the_window():
    """Over six weeks of sessions: a condor is found iff a monthly expiry (from the calendar) is
    30-45 calendar days away, and then on the nearest such."""
    days = cal.sessions_between("2024-02-01", "2024-03-15")
    chains = mark_chain(synthetic.generate("spx_options", days), "spx")
    monthlies = cal.spx_monthly_expiry([2024] * 6, [2, 3, 4, 5, 6, 7])
    opened = []
    for day, chain in chains.groupby("date"):
        legs = select_condor(chain, CondorRules())
        dte = (monthlies - day).days
        expected = monthlies[(dte >= 30) & (dte <= 45)]
        if len(expected) == 0:
            assert legs.empty, day
        else:
            assert (legs["expiry"] == expected.min()).all() and condor_credit(legs) > 0, day
        opened.append(not legs.empty)
    assert 0 < sum(opened) < len(opened)  # 2024-02-15 .. 03-04 have no monthly 30-45 days out


# ---- payoff, loss, margin ------------------------------------------------------------------------

KPL, KPS, KCS, KCL = 3900.0, 4000.0, 4300.0, 4350.0  # put width 100, call width 50
CREDIT = 10.0


@pytest.mark.parametrize(("settle", "payoff"), [
    (4150.0, 0.0),     # between the shorts: the full credit is kept
    (4000.0, 0.0),     # exactly at the short put
    (4300.0, 0.0),     # exactly at the short call
    (3960.0, -40.0),   # inside the put spread
    (4320.0, -20.0),   # inside the call spread
    (3900.0, -100.0),  # exactly at the long put: the full put width
    (4350.0, -50.0),   # exactly at the long call
    (3000.0, -100.0),  # beyond the put wing
    (5000.0, -50.0),   # beyond the call wing
])
def test_condor_payoff_hand_checked(settle, payoff):
    assert float(condor_payoff(settle, KPL, KPS, KCS, KCL)) == payoff


def test_condor_payoff_equals_sum_of_leg_intrinsics():
    """Vectorized over settlements and strikes; equals Σ side × intrinsic over the four legs."""
    rng = np.random.default_rng(7)
    n = 500
    kps = rng.uniform(3500, 4500, n).round()
    kpl = kps - rng.integers(1, 40, n) * 5.0
    kcs = kps + rng.integers(1, 80, n) * 5.0
    kcl = kcs + rng.integers(1, 40, n) * 5.0
    s = rng.uniform(3000, 5200, n)
    legs = ((kpl, "P", 1), (kps, "P", -1), (kcs, "C", -1), (kcl, "C", 1))
    ref = sum(side * (np.maximum(k - s, 0) if typ == "P" else np.maximum(s - k, 0)) for k, typ, side in legs)
    np.testing.assert_allclose(condor_payoff(s, kpl, kps, kcs, kcl), ref, rtol=0, atol=1e-9)
    # the worst case is minus the wider spread
    grid = np.linspace(2000, 6000, 4001)
    assert condor_payoff(grid, KPL, KPS, KCS, KCL).min() == -100.0


def test_max_loss_and_break_evens():
    assert max_loss_per_condor(100.0, 50.0, CREDIT) == 9000.0  # (100 - 10) x $100
    assert max_loss_per_condor(50.0, 100.0, CREDIT) == 9000.0
    grid = np.linspace(2000, 6000, 40001)
    pnl_usd = (condor_payoff(grid, KPL, KPS, KCS, KCL) + CREDIT) * 100
    assert -pnl_usd.min() == pytest.approx(max_loss_per_condor(100.0, 50.0, CREDIT), abs=1e-9)
    assert pnl_usd.max() == pytest.approx(CREDIT * 100)
    lo, hi = break_evens(KPS, KCS, CREDIT)
    assert (lo, hi) == (3990.0, 4310.0)
    np.testing.assert_allclose(condor_payoff([lo, hi], KPL, KPS, KCS, KCL) + CREDIT, 0.0, atol=1e-12)
    np.testing.assert_allclose(max_loss_per_condor(np.array([100.0, 20.0]), np.array([50.0, 30.0]), 5.0),
                               [9500.0, 2500.0])


def test_condor_margin_cboe_rule():
    """max(put width, call width) x 100 x contracts, less the credit x 100 x contracts."""
    assert condor_margin(100.0, 50.0, CREDIT, 3) == 100 * 100 * 3 - 10 * 100 * 3  # 27,000
    assert condor_margin(25.0, 50.0, 2.5, 1) == 4750.0
    assert condor_margin(100.0, 50.0, CREDIT, -3) == 27000.0  # a short position counted by size
    assert condor_margin(10.0, 10.0, 12.0, 2) == 0.0  # never negative
    assert condor_margin(100.0, 50.0, CREDIT, 0) == 0.0
    np.testing.assert_allclose(condor_margin(100.0, 50.0, CREDIT, np.array([1, 2])), [9000.0, 18000.0])
    # per condor the margin is the max loss
    assert condor_margin(100.0, 50.0, CREDIT, 1) == max_loss_per_condor(100.0, 50.0, CREDIT)


def test_widths_and_credit_on_a_hand_frame():
    legs = pd.DataFrame({"strike": [3900.0, 4000.0, 4300.0, 4350.0], "option_type": ["P", "P", "C", "C"],
                         "side": [1, -1, -1, 1], "fill": [2.0, 8.5, 6.0, 2.5]})
    assert condor_widths(legs) == (100.0, 50.0)
    assert condor_credit(legs) == 10.0
    with pytest.raises(ValueError):
        condor_widths(legs.iloc[:3])


# ---- exits ----------------------------------------------------------------------------------------

def test_exit_reason_rules_vectorized():
    credit = 2.0
    cost = np.array([1.0, 1.05, 6.0, 5.9, 1.5, 1.5, 6.5, 0.5, np.nan, np.nan, 0.0])
    dte = np.array([30, 30, 30, 30, 21, 22, 10, 5, 30, 20, 40])
    expected = ["take_profit",   # cost 1.0 = 50 % of the credit: exactly at the target
                "",              # just short of the target
                "stop_loss",     # cost 6 = 3 x credit: loss 4 = 2 x credit
                "",              # loss 3.9 < 4
                "dte",           # 21 DTE
                "",              # 22 DTE, no price rule
                "stop_loss",     # the stop is reported even inside 21 DTE
                "take_profit",   # so is the take-profit
                "",              # no quote: no price rule
                "dte",           # no quote, but 20 DTE
                "take_profit"]   # worthless: the whole credit kept
    out = exit_reason(credit, cost, dte, CondorRules())
    assert out.shape == (11,)
    assert list(out) == expected


def test_exit_reason_follows_the_rules():
    rules = CondorRules(take_profit=0.25, stop_loss=1.0, exit_dte=7)
    out = exit_reason(np.array([4.0, 4.0, 4.0, 4.0]), np.array([3.0, 3.1, 8.0, 3.5]), np.array([30, 30, 30, 7]), rules)
    assert list(out) == ["take_profit", "", "stop_loss", "dte"]
