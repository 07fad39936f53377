"""The ALVH ladder (alvh_pipeline.core.alvh): adaptive weights, leg selection, the L2 calendar and
its synthetic replica, VX betas to spot VIX and the blocking sizing rule.

Inputs come from the synthetic source, whose option mids are exact Black / Black-76 prices of a
known vol (`model_iv`), so put-call parity and the synthetic future's delta have closed forms.
Chains are marked here with a small local helper built on pricing.py and vol_surface._inputs
(independent of core.option_marks); betas are checked against statsmodels OLS.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from alvh_pipeline.core import alvh
from alvh_pipeline.core import market_sim as ms
from alvh_pipeline.core.alvh import LadderRules
from alvh_pipeline.core.calendar import sessions_between
from alvh_pipeline.core.pricing import black_delta, implied_vol
from alvh_pipeline.core.vol_surface import _inputs
from alvh_pipeline.sources import synthetic

DAY = pd.Timestamp("2024-03-05")
RULES = LadderRules()


def mark(chain: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The marked columns the ladder reads: mid, dte, t, forward, iv, delta (model_iv fallback)."""
    x = _inputs(chain, kind)
    t = x["t"].to_numpy()
    iv = implied_vol(x["mid"].to_numpy(), x["forward"].to_numpy(), x["strike"].to_numpy(), np.where(t > 0, t, 1.0),
                     x["discount"].to_numpy(), x["is_call"].to_numpy())
    iv = np.where(x["valid"].to_numpy(), iv, np.nan)
    vol = np.where(np.isfinite(iv), iv, chain["model_iv"].to_numpy(float))
    out = chain.copy()
    out["mid"] = x["mid"].to_numpy()
    out["dte"] = x["days"].to_numpy().astype(np.int64)
    out["t"] = t
    out["forward"] = x["forward"].to_numpy()
    out["iv"] = iv
    out["delta"] = black_delta(x["forward"].to_numpy(), x["strike"].to_numpy(), t, vol, x["delta_df"].to_numpy(),
                               x["is_call"].to_numpy())
    return out


@pytest.fixture(scope="module")
def state() -> ms.MarketState:
    return ms.market_state(ms.SimConfig())


@pytest.fixture(scope="module")
def futures_day(state) -> pd.DataFrame:
    return synthetic.generate_from_state(state, "vix_futures", [DAY])


@pytest.fixture(scope="module")
def vix_day(state) -> pd.DataFrame:
    return mark(synthetic.generate_from_state(state, "vix_options", [DAY]), "vix")


@pytest.fixture(scope="module")
def spx_day(state) -> pd.DataFrame:
    return mark(synthetic.generate_from_state(state, "spx_options", [DAY]), "spx")


# ---- adaptive weights ----------------------------------------------------------------------------

def regime_row(**kw) -> pd.Series:
    """A calm, contango, quiet-calendar, rising-breadth, liquid day; fields overridden by kw."""
    base = dict(date=DAY, regime="calm", vix=14.0, vx1=15.0, vx2=16.2, backwardation=False, slope_cm=2.5,
                roll_yield_cm30=-0.002, ad_line_252d=1500.0, days_to_FOMC=20.0, days_to_CPI=9.0, days_to_PPI=10.0,
                event_within_2d=False, depth_quick_ratio=3.0, participation_ok=True, evap_warning=False)
    return pd.Series({**base, **kw})


CALM = regime_row()
STRESSED = regime_row(regime="stressed", vix=38.0, vx1=34.0, vx2=30.0, backwardation=True, slope_cm=-6.0)
EVENT = regime_row(days_to_FOMC=1.0, event_within_2d=True)
FALLING_AD = regime_row(ad_line_252d=-2200.0)


@pytest.mark.parametrize("row", [CALM, STRESSED, EVENT, FALLING_AD, regime_row(regime="elevated", slope_cm=np.nan)])
@pytest.mark.parametrize("beta_rising", [False, True])
def test_layer_weights_are_a_partition(row, beta_rising):
    w = alvh.layer_weights(row, beta_rising, RULES)
    assert set(w) == {"L1", "L2", "L3"}
    assert sum(w.values()) == pytest.approx(1.0, abs=1e-15)
    assert all(0.0 <= v <= 1.0 for v in w.values())


def test_layer_weights_move_the_documented_way():
    calm = alvh.layer_weights(CALM, False, RULES)
    # hand-checked scores: calm contango (1, 2, 1) -> 1/4, 1/2, 1/4
    assert calm == pytest.approx({"L1": 0.25, "L2": 0.5, "L3": 0.25})
    assert max(calm, key=calm.get) == "L2"

    # stressed backwardation: scores (2, 0, 1) -> L2 out, exposure shifted to L1
    stressed = alvh.layer_weights(STRESSED, False, RULES)
    assert stressed == pytest.approx({"L1": 2 / 3, "L2": 0.0, "L3": 1 / 3})

    # event proximity: scores (2, 2, 1)
    event = alvh.layer_weights(EVENT, False, RULES)
    assert event == pytest.approx({"L1": 0.4, "L2": 0.4, "L3": 0.2})
    assert event["L1"] > calm["L1"]

    # falling A/D: scores (1, 2, 2)
    falling = alvh.layer_weights(FALLING_AD, False, RULES)
    assert falling == pytest.approx({"L1": 0.2, "L2": 0.4, "L3": 0.4})
    assert falling["L3"] > calm["L3"]

    # rising beta: scores (1.5, 2, 1) -> calls up, futures down
    rising = alvh.layer_weights(CALM, True, RULES)
    assert rising == pytest.approx({"L1": 1.5 / 4.5, "L2": 2 / 4.5, "L3": 1 / 4.5})
    assert rising["L1"] > calm["L1"] and rising["L2"] < calm["L2"]


def test_layer_weights_backwardation_from_the_curve_and_missing_fields():
    # VX1 == VX2 is backwardated for the ladder (never roll into it) even though the flag is strict
    flat = alvh.layer_weights(regime_row(vx1=17.0, vx2=17.0, backwardation=False, slope_cm=0.0), False, RULES)
    assert flat["L2"] == 0.0
    # elevated regime: no calm-contango bonus (scores 1, 1, 1)
    assert alvh.layer_weights(regime_row(regime="elevated"), False, RULES) == pytest.approx(
        {"L1": 1 / 3, "L2": 1 / 3, "L3": 1 / 3})
    # NaN is not evidence of anything: unknown breadth / event flag / slope fall back to neutral or the curve
    unknown = regime_row(ad_line_252d=np.nan, event_within_2d=np.nan, slope_cm=np.nan, days_to_FOMC=np.nan)
    calm_weights = {"L1": 0.25, "L2": 0.5, "L3": 0.25}
    assert alvh.layer_weights(unknown, False, RULES) == pytest.approx(calm_weights)
    # the event is also seen from the days-to fields when the flag is missing
    cpi_soon = regime_row(days_to_CPI=2.0, event_within_2d=np.nan)
    assert alvh.layer_weights(cpi_soon, False, RULES)["L1"] > calm_weights["L1"]


def test_vxth_budget_fraction_schedule():
    vx1 = np.array([10.0, 15.0, 15.01, 22.0, 30.0, 30.01, 50.0, 50.01, 80.0, np.nan])
    expect = np.array([0, 0, 0.01, 0.01, 0.01, 0.005, 0.005, 0, 0, 0])
    np.testing.assert_array_equal(alvh.vxth_budget_fraction(vx1), expect)


def test_liquidity_gates():
    assert alvh.liquidity_ok(CALM, RULES) == (True, "")
    ok, why = alvh.liquidity_ok(regime_row(depth_quick_ratio=0.6), RULES)
    assert not ok and "0.60 < 1" in why
    ok, why = alvh.liquidity_ok(regime_row(participation_ok=False), RULES)
    assert not ok and "participation" in why
    ok, why = alvh.liquidity_ok(regime_row(depth_quick_ratio=np.nan, participation_ok=np.nan), RULES)
    assert not ok and "unknown" in why and "participation" in why
    assert alvh.futures_blocked(CALM) == (False, "")
    blocked, why = alvh.futures_blocked(regime_row(evap_warning=True))
    assert blocked and "evaporation" in why
    assert alvh.futures_blocked(regime_row(evap_warning=np.nan)) == (False, "")


# ---- L1 calls and L3 puts ------------------------------------------------------------------------

def test_l1_target_dte_tilt():
    assert alvh.l1_target_dte(False, RULES) == 28  # the middle of the 2-6 week window
    assert alvh.l1_target_dte(True, RULES) == 42   # + 14, capped at l1_max_dte
    assert alvh.l1_target_dte(True, LadderRules(l1_long_dte_tilt=7)) == 35


def _brute_nearest(rows: pd.DataFrame, target: float) -> float:
    return float((rows["delta"].abs() - target).abs().min())


def test_select_l1_call_on_synthetic_chain(vix_day):
    pick = alvh.select_l1_call(vix_day, alvh.l1_target_dte(False, RULES), RULES)
    assert len(pick) == 1
    row = pick.iloc[0]
    # 2024-03-05: only the March expiry (15 days) is inside [14, 42]; April is 43 days out
    assert row["option_type"] == "C" and row["dte"] == 15 and row["fill"] == row["ask"] > 0 and row["side"] == 1
    same = vix_day[(vix_day["expiry"] == row["expiry"]) & (vix_day["option_type"] == "C")]
    assert abs(abs(row["delta"]) - RULES.l1_delta) == pytest.approx(_brute_nearest(same, RULES.l1_delta))
    assert abs(row["delta"] - RULES.l1_delta) < 0.05
    assert {"mid", "iv", "delta", "dte", "t", "forward", "fill"} <= set(pick.columns)


def test_select_l1_call_beta_tilt_lengthens_dte(state):
    # weekly-style expiries 21 and 40 days out (methodology: time-shifting with weekly VIX options)
    fut = pd.DataFrame({"month_index": [1, 2], "settle": [16.5, 17.4],
                        "expiry": pd.to_datetime(["2024-03-26", "2024-04-14"])})
    chain = mark(synthetic.vix_chain(DAY, fut, 0.05, 0.1, np.random.default_rng(7)), "vix")
    base = alvh.select_l1_call(chain, alvh.l1_target_dte(False, RULES), RULES)
    tilted = alvh.select_l1_call(chain, alvh.l1_target_dte(True, RULES), RULES)
    assert base["dte"].item() == 21 and tilted["dte"].item() == 40
    for pick in (base, tilted):
        same = chain[(chain["dte"] == pick["dte"].item()) & (chain["option_type"] == "C")]
        assert abs(abs(pick["delta"].item()) - 0.30) == pytest.approx(_brute_nearest(same, 0.30))
        assert abs(pick["delta"].item() - 0.30) < 0.05


def test_select_l1_call_empty_outside_window(vix_day):
    assert alvh.select_l1_call(vix_day[vix_day["dte"] > 42], 28, RULES).empty
    no_ask = vix_day.assign(ask=0.0)
    assert alvh.select_l1_call(no_ask, 28, RULES).empty


def test_select_l3_put_on_synthetic_chain(spx_day):
    pick = alvh.select_l3_put(spx_day, RULES)
    assert len(pick) == 1
    row = pick.iloc[0]
    assert row["option_type"] == "P" and RULES.l3_min_dte <= row["dte"] <= RULES.l3_max_dte
    assert row["dte"] == spx_day.loc[spx_day["dte"].between(60, 90), "dte"].max()
    same = spx_day[(spx_day["expiry"] == row["expiry"]) & (spx_day["option_type"] == "P") & (spx_day["ask"] > 0)]
    assert abs(abs(row["delta"]) - RULES.l3_delta) == pytest.approx(_brute_nearest(same, RULES.l3_delta))
    assert -0.07 < row["delta"] < -0.03 and row["strike"] < row["forward"]
    assert row["fill"] == row["ask"] > 0
    assert alvh.select_l3_put(spx_day[spx_day["dte"] < 60], RULES).empty


# ---- L2 calendar -------------------------------------------------------------------------------

def test_l2_calendar_contango(futures_day):
    fut = futures_day.set_index("month_index")
    assert fut.at[1, "settle"] < fut.at[2, "settle"]  # the synthetic day is in contango
    legs, reason = alvh.l2_calendar(futures_day, RULES)
    assert reason == ""
    assert legs["month_index"].tolist() == [2, 4] and legs["side"].tolist() == [1, -1]
    assert legs["fill"].tolist() == [fut.at[2, "ask"], fut.at[4, "bid"]]
    assert legs["contract"].tolist() == [fut.at[2, "contract"], fut.at[4, "contract"]]


@pytest.mark.parametrize("vx1_minus_vx2", [0.0, 1.5])
def test_l2_calendar_backwardation_blocks(futures_day, vx1_minus_vx2):
    f = futures_day.copy()
    vx2 = f.loc[f["month_index"] == 2, "settle"].item()
    f.loc[f["month_index"] == 1, "settle"] = vx2 + vx1_minus_vx2
    legs, reason = alvh.l2_calendar(f, RULES)
    assert legs.empty and reason == alvh.BACKWARDATION_REASON and reason.startswith("backwardation")


def test_l2_calendar_missing_month(futures_day):
    for broken in (futures_day[futures_day["month_index"] != 4],
                   futures_day.assign(settle=np.where(futures_day["month_index"] == 4, 0.0, futures_day["settle"])),
                   futures_day[futures_day["month_index"] != 1],
                   futures_day.assign(ask=np.where(futures_day["month_index"] == 2, np.nan, futures_day["ask"]))):
        legs, reason = alvh.l2_calendar(broken, RULES)
        assert legs.empty and reason == alvh.MISSING_MONTH_REASON


# ---- second engine: parity and synthetic futures ---------------------------------------------------

def test_parity_holds_on_synthetic_chains(vix_day, spx_day):
    for chain, kind in ((vix_day, "vix"), (spx_day, "spx")):
        rep = alvh.parity_report(chain, kind, RULES)
        assert list(rep.columns) == alvh.PARITY_COLUMNS
        n_pairs = chain.groupby(["expiry", "strike"])["option_type"].nunique().eq(2).sum()
        assert len(rep) == n_pairs > 0
        assert not rep["data_error"].any()
        # where both bids are positive the mids are the model prices: parity is exact
        bids = chain.pivot_table(index=["expiry", "strike"], columns="option_type", values="bid")
        quoted = (bids["C"] > 0) & (bids["P"] > 0)
        exact = rep.set_index(["expiry", "strike"]).loc[quoted[quoted].index, "parity_mid"]
        assert len(exact) > 20
        assert np.abs(exact).max() < 1e-9 * max(1.0, chain["forward"].max() / 100)


def test_synthetic_calendar_legs_and_delta(vix_day, futures_day):
    legs, rep = alvh.synthetic_calendar(vix_day, futures_day, RULES)
    fut = futures_day.set_index("month_index")
    assert rep["month_index"].tolist() == [2, 4] and not rep["data_error"].any()
    assert (rep["parity_mid"].abs() < 1e-9).all()
    # cost band = option half-spreads + the future's half-spread
    assert (rep["cost_band"] > 0.5 * (fut.loc[[2, 4], "ask"] - fut.loc[[2, 4], "bid"]).to_numpy()).all()
    assert len(legs) == 4
    for month, sign in ((2, 1), (4, -1)):
        pair = legs[legs["month_index"] == month]
        assert pair["expiry"].nunique() == 1 and pair["expiry"].iloc[0] == fut.at[month, "expiry"]
        assert pair["strike"].nunique() == 1
        f = fut.at[month, "settle"]
        listed = vix_day.loc[vix_day["expiry"] == fut.at[month, "expiry"], "strike"]
        assert abs(pair["strike"].iloc[0] - f) == pytest.approx((listed - f).abs().min())
        call, put = pair[pair["option_type"] == "C"].iloc[0], pair[pair["option_type"] == "P"].iloc[0]
        assert (call["side"], put["side"]) == (sign, -sign)
        for leg in (call, put):
            assert leg["fill"] == (leg["ask"] if leg["side"] > 0 else leg["bid"])
        # synthetic future: delta(C) - delta(P) = D = e^{-rT} exactly (Black-76)
        d = np.exp(-call["rate"] * call["t"])
        assert (pair["side"] * pair["delta"]).sum() == pytest.approx(sign * d, abs=1e-12)
        assert abs((pair["side"] * pair["delta"]).sum()) == pytest.approx(1.0, abs=0.01)


def test_synthetic_calendar_planted_parity_break(vix_day, futures_day):
    legs, _ = alvh.synthetic_calendar(vix_day, futures_day, RULES)
    strike_m2 = legs.loc[legs["month_index"] == 2, "strike"].iloc[0]
    expiry_m2 = legs.loc[legs["month_index"] == 2, "expiry"].iloc[0]
    broken = vix_day.copy()
    at = (broken["expiry"] == expiry_m2) & (broken["strike"] == strike_m2) & (broken["option_type"] == "C")
    broken.loc[at, ["bid", "ask"]] += 3.0
    legs, rep = alvh.synthetic_calendar(broken, futures_day, RULES)
    bad = rep.set_index("month_index")
    assert bool(bad.at[2, "data_error"]) and not bool(bad.at[4, "data_error"])
    assert bad.at[2, "parity_mid"] == pytest.approx(3.0, abs=1e-9)
    assert bad.at[2, "strike"] == strike_m2
    assert legs["month_index"].tolist() == [4, 4] and (legs["expiry"] != expiry_m2).all()
    # the full-chain report flags the same pair and nothing else
    full = alvh.parity_report(broken, "vix", RULES)
    assert full.loc[full["data_error"], ["expiry", "strike"]].values.tolist() == [[expiry_m2, strike_m2]]


def test_synthetic_calendar_missing_expiry(vix_day, futures_day):
    m4 = futures_day.loc[futures_day["month_index"] == 4, "expiry"].item()
    legs, rep = alvh.synthetic_calendar(vix_day[vix_day["expiry"] != m4], futures_day, RULES)
    assert legs["month_index"].unique().tolist() == [2] and rep["month_index"].tolist() == [2]


# ---- VX beta to spot VIX ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def history(state) -> tuple[pd.DataFrame, pd.Series]:
    dates = sessions_between("2023-09-01", "2024-03-05")
    fut = synthetic.generate_from_state(state, "vix_futures", dates)
    idx = synthetic.generate_from_state(state, "index_levels", dates)
    vix = idx[idx["index"] == "VIX"].set_index("date")["close"]
    return fut, vix


def _ols_beta(fut: pd.DataFrame, vix: pd.Series, day: pd.Timestamp, month: int, window: int) -> tuple[float, float]:
    """Independent: walk the window session by session, same contract day over day; statsmodels OLS.
    Also returns the naive beta of the month_index series (which mixes contracts across rolls)."""
    dates = pd.DatetimeIndex(sorted(fut["date"].unique()))
    end = dates.get_loc(day)
    settle = fut.set_index(["date", "contract"])["settle"]
    by_month = fut.set_index(["date", "month_index"])["settle"]
    dx, dy, naive = [], [], []
    for i in range(end - window + 1, end + 1):
        today, prev = dates[i], dates[i - 1]
        contract = fut.loc[(fut["date"] == today) & (fut["month_index"] == month), "contract"].item()
        if (prev, contract) not in settle.index:
            continue
        dy.append(settle[(today, contract)] - settle[(prev, contract)])
        naive.append(by_month[(today, month)] - by_month[(prev, month)])
        dx.append(vix[today] - vix[prev])
    x = sm.add_constant(np.array(dx))
    return float(sm.OLS(np.array(dy), x).fit().params[1]), float(sm.OLS(np.array(naive), x).fit().params[1])


@pytest.mark.parametrize("month", [1, 2, 4])
def test_vx_beta_matches_statsmodels(history, month):
    fut, vix = history
    day = pd.Timestamp("2024-02-21")  # the window spans several rolls
    out = alvh.vx_beta_to_spot(fut, vix, window=60)
    got = out.loc[(out["date"] == day) & (out["month_index"] == month), "beta"].item()
    want, naive = _ols_beta(fut, vix, day, month, 60)
    assert 0.0 < want < alvh.BETA_CAP  # inside the clip, so the comparison is of the OLS itself
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert abs(naive - want) > 1e-4  # mixing contracts across a roll would give another number


def test_vx_beta_no_look_ahead_and_warm_up(history):
    fut, vix = history
    day = pd.Timestamp("2024-01-18")
    out = alvh.vx_beta_to_spot(fut, vix, window=40)
    rng = np.random.default_rng(11)
    later_f = pd.to_datetime(fut["date"]) > day
    fut2 = fut.copy()
    fut2.loc[later_f, "settle"] = fut2.loc[later_f, "settle"] * np.exp(0.2 * rng.standard_normal(later_f.sum()))
    vix2 = vix.copy()
    vix2[vix2.index > day] = vix2[vix2.index > day] + 5 * rng.standard_normal((vix2.index > day).sum())
    out2 = alvh.vx_beta_to_spot(fut2, vix2, window=40)
    upto = out["date"] <= day
    pd.testing.assert_frame_equal(out[upto], out2[upto])
    assert out.loc[upto, "beta"].notna().any()
    assert not np.allclose(out.loc[~upto, "beta"], out2.loc[~upto, "beta"], equal_nan=True)  # the edit mattered
    # NaN until 40 sessions of changes exist; then M1..M7 defined, in [0, cap]
    dates = pd.DatetimeIndex(sorted(fut["date"].unique()))
    assert out.loc[out["date"] < dates[40], "beta"].isna().all()
    first = out[(out["date"] == dates[40]) & (out["month_index"] <= 7)]["beta"]
    assert first.notna().all() and first.between(0, alvh.BETA_CAP).all()
    assert list(out.columns) == ["date", "month_index", "beta"]


def test_vx_beta_clips():
    dates = pd.DatetimeIndex(sessions_between("2024-01-02", "2024-03-01"))
    dv = np.random.default_rng(3).standard_normal(len(dates))
    vix = pd.Series(15 + np.cumsum(dv), index=dates)
    rows = [pd.DataFrame({"date": dates, "contract": "VXA", "month_index": 1, "settle": 20 + 3 * np.cumsum(dv)}),
            pd.DataFrame({"date": dates, "contract": "VXB", "month_index": 2, "settle": 30 - np.cumsum(dv)})]
    out = alvh.vx_beta_to_spot(pd.concat(rows), vix, window=10)
    last = out[out["date"] == dates[-1]].set_index("month_index")["beta"]
    assert last[1] == alvh.BETA_CAP and last[2] == 0.0  # true slopes 3 and -1


def test_beta_fallback():
    np.testing.assert_allclose(alvh.beta_fallback(np.array([1, 4, 9])), [1.0, 0.5, 1 / 3])


# ---- sizing rule ------------------------------------------------------------------------------------

