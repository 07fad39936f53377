"""Implied vols and SPX / VIX surface features (alvh_pipeline.core.vol_surface).

Ground truth comes from the synthetic source, which prices every quote from a known vol
(`model_iv`) and a known parametric smile (`chain_model.spx_smile`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.special import ndtr

from alvh_pipeline.core import chain_model
from alvh_pipeline.core import market_sim as ms
from alvh_pipeline.core.pricing import black, black_delta, black_vega
from alvh_pipeline.core.vol_surface import (
    implied_vols,
    smile_points,
    spx_surface,
    term_interpolate,
    vix_option_atm_iv,
)
from alvh_pipeline.sources import synthetic

CALM, OTHER = pd.Timestamp("2015-06-03"), pd.Timestamp("2008-11-17")


@pytest.fixture(scope="module")
def state() -> ms.MarketState:
    return ms.market_state(ms.SimConfig())


@pytest.fixture(scope="module")
def dates(state) -> list[pd.Timestamp]:
    """A calm day, an arbitrary day and the most stressed day of the synthetic history."""
    stress = ms.stress_level(state.variance, state.config)
    return [CALM, OTHER, pd.Timestamp(state.dates[int(np.argmax(stress))])]


@pytest.fixture(scope="module")
def spx(dates) -> pd.DataFrame:
    return synthetic.generate("spx_options", dates)


@pytest.fixture(scope="module")
def vix(dates) -> pd.DataFrame:
    return synthetic.generate("vix_options", dates)


def _years(chain):
    return (pd.to_datetime(chain["expiry"]) - pd.to_datetime(chain["date"])).dt.days.to_numpy() / 365.0


def _spx_inputs(chain):
    t = _years(chain)
    r, q = chain["rate"].to_numpy(), chain["dividend_yield"].to_numpy()
    return chain["underlying"].to_numpy() * np.exp((r - q) * t), t, np.exp(-r * t)


# ---- inversion ---------------------------------------------------------------------------------

def test_spx_inversion_exact_on_model_mids(spx):
    """With mids equal to the Black-Scholes price at the table's own inputs, the inversion
    recovers model_iv to 1e-6 (in fact ~1e-10)."""
    f, t, d = _spx_inputs(spx)
    price = black(f, spx["strike"].to_numpy(), t, spx["model_iv"].to_numpy(), d, spx["option_type"].to_numpy())
    chain = spx.assign(bid=price, ask=price)
    ok = price > 1e-3  # deep OTM prices below a tenth of a tick carry no vol information
    iv = implied_vols(chain, "spx")
    assert np.isfinite(iv[ok]).all()
    assert np.max(np.abs(iv - spx["model_iv"].to_numpy())[ok]) < 1e-6


def test_spx_inversion_on_raw_quotes_within_rounding(spx):
    """Raw synthetic quotes: the source rounds bid/ask to 4 dp (mid error <= 5e-5) and the
    underlying to 2 dp (price error <= |Δ| * 0.005), so 1e-6 is out of reach on raw quotes (the
    bound never falls below ~5e-6); the IV error stays within that rounding propagated through
    vega."""
    f, t, d = _spx_inputs(spx)
    k, ot, true = spx["strike"].to_numpy(), spx["option_type"].to_numpy(), spx["model_iv"].to_numpy()
    iv = implied_vols(spx, "spx")
    bid_ok = spx["bid"].to_numpy() > 0
    assert np.isnan(iv[~bid_ok]).all()
    vega = black_vega(f, k, t, true, d)
    delta = np.abs(black_delta(f, k, t, true, np.exp(-spx["dividend_yield"].to_numpy() * t), ot))
    bound = (5e-5 + delta * 0.005) / vega
    err = np.abs(iv - true)
    # NaN only where the rounded mid fell outside the no-arbitrage bounds (deep ITM, tiny vega)
    assert np.isfinite(iv[bid_ok & (bound < 1e-2)]).all()
    fin = bid_ok & np.isfinite(iv)
    assert (err[fin] <= 1.5 * bound[fin] + 1e-9).all()
    assert np.median(err[fin]) < 1e-5


def test_vix_inversion_black76(vix):
    t = _years(vix)
    f, k, ot = vix["future_price"].to_numpy(), vix["strike"].to_numpy(), vix["option_type"].to_numpy()
    true, d = vix["model_iv"].to_numpy(), np.exp(-vix["rate"].to_numpy() * t)
    price = black(f, k, t, true, d, ot)
    iv_exact = implied_vols(vix.assign(bid=price, ask=price), "vix")
    ok = price > 1e-3
    assert np.max(np.abs(iv_exact - true)[ok]) < 1e-6
    # raw quotes: mid rounding (<= 5e-5) / vega, the future is the settle used to price
    iv = implied_vols(vix, "vix")
    bid_ok = vix["bid"].to_numpy() > 0
    bound = 5e-5 / black_vega(f, k, t, true, d)
    assert (np.abs(iv - true)[bid_ok] <= 1.5 * bound[bid_ok] + 1e-9).all()
    assert np.isnan(iv[~bid_ok]).all()


def test_inversion_matches_quantlib(spx):
    ql = pytest.importorskip("QuantLib")
    f, t, d = _spx_inputs(spx)
    iv = implied_vols(spx, "spx")
    rows = np.flatnonzero(np.isfinite(iv))[::97][:40]
    mid = 0.5 * (spx["bid"].to_numpy() + spx["ask"].to_numpy())
    for i in rows:  # an independent implementation, a few rows only
        typ = ql.Option.Call if spx["option_type"].iat[i] == "C" else ql.Option.Put
        sd = ql.blackFormulaImpliedStdDev(typ, float(spx["strike"].iat[i]), float(f[i]), float(mid[i]),
                                          float(d[i]), 0.0, ql.nullDouble(), 1e-12, 200)
        assert sd / np.sqrt(t[i]) == pytest.approx(iv[i], abs=1e-7)


# ---- smile points ------------------------------------------------------------------------------

def _true_points(state, date, days):
    """25Δ put / ATM / 25Δ call IV of the synthetic smile, by a fine root find on the continuous
    smile with the model's own (unrounded) forward."""
    i = state.index_of([date])[0]
    v, q, tau = state.variance[i], synthetic.SPX_DIV_YIELD, days / 365.0
    stress = ms.stress_level(v, state.config)
    atm = float(ms.spx_atm_vol(np.array(v), np.array(tau), state.config, chain_model.CALIBRATED.atm_to_vix))
    fwd = state.spx[i] * np.exp((state.tbill[i] - q) * tau)

    def sig(k):
        return float(chain_model.spx_smile(atm, np.log(k / fwd), tau, stress))

    def delta(k, call):
        s = sig(k)
        d1 = (np.log(fwd / k) + 0.5 * s * s * tau) / (s * np.sqrt(tau))
        return np.exp(-q * tau) * (ndtr(d1) if call else ndtr(d1) - 1.0)

    width = 6 * atm * np.sqrt(tau)
    kp = brentq(lambda k: delta(k, False) + 0.25, fwd * np.exp(-width), fwd, xtol=1e-12)
    kc = brentq(lambda k: delta(k, True) - 0.25, fwd, fwd * np.exp(width), xtol=1e-12)
    return sig(kp), atm, sig(kc)


def test_smile_points_match_true_smile(state, spx, dates):
    """Tolerance 3e-4 vol (0.03 vol pt) for expiries >= 7 days: linear interpolation of IV in
    delta between adjacent 5-point strikes (error ~ h²/8 · d²σ/dΔ², measured <= 1.7e-4 over
    50 dates 2000-2018 incl. the most stressed) plus the raw-quote inversion error (~1e-5)."""
    pts = smile_points(spx)
    pts = pts[pts["days"] >= 7]
    assert set(pd.DatetimeIndex(pts["date"])) == set(dates)
    for row in pts.itertuples():  # ~25 expiries; the root find is the slow, independent part
        p25, atm, c25 = _true_points(state, pd.Timestamp(row.date), row.days)
        assert row.iv_25p == pytest.approx(p25, abs=3e-4), row
        assert row.iv_atm == pytest.approx(atm, abs=1e-4), row
        assert row.iv_25c == pytest.approx(c25, abs=3e-4), row


def test_surface_definitions_and_put_skew(spx, dates):
    s = spx_surface(spx)
    assert list(s.index) == sorted(dates)
    assert {"iv_25p", "iv_atm", "iv_25c", "skew_slope", "skew_curvature", "iv_atm_60", "iv_atm_90"} <= set(s)
    assert s.notna().all().all()
    np.testing.assert_allclose(s["skew_slope"], s["iv_25p"] - s["iv_25c"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(s["skew_curvature"], s["iv_25p"] + s["iv_25c"] - 2 * s["iv_atm"], rtol=0, atol=1e-15)
    assert (s["iv_25p"] > s["iv_atm"]).all() and (s["iv_atm"] > s["iv_25c"]).all()


def test_surface_30d_is_total_variance_interpolation(spx):
    pts = smile_points(spx)
    pts = pts[(pts["date"] == CALM) & (pts["days"] >= 7)].sort_values("days")
    lo, hi = pts[pts["days"] <= 30].iloc[-1], pts[pts["days"] > 30].iloc[0]
    span = hi.days - lo.days
    w = lo.iv_atm**2 * lo.days * (hi.days - 30) / span + hi.iv_atm**2 * hi.days * (30 - lo.days) / span
    assert spx_surface(spx).loc[CALM, "iv_atm"] == pytest.approx(np.sqrt(w / 30), abs=1e-14)


def test_term_interpolate_hand_example():
    pts = pd.DataFrame({"date": pd.to_datetime(["2020-01-02"] * 3), "days": [5.0, 20.0, 50.0],
                        "iv": [0.9, 0.20, 0.30]})
    # 5-day expiry ignored (< 7 days); σ²(30)·30 = 0.04·20·(20/30) + 0.09·50·(10/30)
    expect = np.sqrt((0.04 * 20 * 20 / 30 + 0.09 * 50 * 10 / 30) / 30)
    assert term_interpolate(pts, "iv", 30).iat[0] == pytest.approx(expect, abs=1e-15)
    assert term_interpolate(pts, "iv", 10).iat[0] == pytest.approx(0.20)  # before first: flat vol
    assert term_interpolate(pts, "iv", 90).iat[0] == pytest.approx(0.30)  # beyond last: flat vol
    assert term_interpolate(pts, "iv", 20).iat[0] == pytest.approx(0.20)


def test_vix_front_atm_iv(state, vix, dates):
    out = vix_option_atm_iv(vix)
    assert list(out.index) == sorted(dates)
    for d, row in out.iterrows():
        i = state.index_of([d])[0]
        stress = ms.stress_level(state.variance[i], state.config)
        tau = max(row.days, 1) / 365.0
        atm = chain_model.vix_option_atm_vol(stress, tau)  # synthetic.vix_chain's ATM level
        front = vix[(vix["date"] == d)]["expiry"].min()
        assert row.expiry == front
        assert row.iv_atm == pytest.approx(atm, rel=2e-3)  # 1-point strikes, linear in ln K


def test_feature_inversion_recovers_synthetic_vols_on_raw_quotes_to_1e6():
    """The synthetic quotes' mids are the model prices: the feature's own inversion (the one
    features/vol_surface runs) must give back the source's known vols."""
    from alvh_pipeline.core.vol_surface import implied_vols
    from alvh_pipeline.sources import synthetic as syn

    for kind, table in (("spx", "spx_options"), ("vix", "vix_options")):
        chain = syn.generate(table, ["2008-10-10", "2019-06-03"])
        iv = implied_vols(chain, kind)
        quoted = (chain["bid"] > 0).to_numpy()
        assert np.isfinite(iv[quoted]).all()
        assert np.max(np.abs(iv[quoted] - chain["model_iv"].to_numpy()[quoted])) < 1e-6
