"""Black-Scholes / Black-76 (alvh_pipeline.core.pricing) vs. QuantLib, parity, implied vols."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import QuantLib as ql

from alvh_pipeline.core.pricing import (
    VOL_CAP,
    black,
    black76,
    black_delta,
    black_scholes,
    black_vega,
    implied_vol,
    no_arbitrage_bounds,
)

REL = 1e-10
TODAY = ql.Date(15, 3, 2021)
DAYS = (7, 30, 91, 365, 730)  # maturities, Actual/365 days
VOLS = (0.08, 0.2, 0.45, 1.1)
MONEYNESS = (0.7, 0.9, 1.0, 1.1, 1.35)  # K / S
SPOT, RATE, DIV = 4000.0, 0.021, 0.015


def _ql_bs(spot, strike, days, vol, rate, div, is_call) -> float:
    dc = ql.Actual365Fixed()
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, div, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, rate, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(TODAY, ql.NullCalendar(), vol, dc)),
    )
    option = ql.VanillaOption(
        ql.PlainVanillaPayoff(ql.Option.Call if is_call else ql.Option.Put, strike),
        ql.EuropeanExercise(TODAY + days),
    )
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return option.NPV(), option.delta(), option.vega()


@pytest.fixture(autouse=True, scope="module")
def _ql_today():
    ql.Settings.instance().evaluationDate = TODAY
    yield


@pytest.fixture(scope="module")
def bs_grid():
    rows = list(itertools.product(MONEYNESS, DAYS, VOLS, (True, False)))
    m, days, vol, call = (np.array(c) for c in zip(*rows))
    strike = SPOT * m
    ref = np.array([_ql_bs(SPOT, k, int(d), v, RATE, DIV, c) for k, d, v, c in zip(strike, days, vol, call)])
    return strike, days / 365.0, vol, call, ref


def test_black_scholes_matches_quantlib(bs_grid):
    strike, t, vol, call, ref = bs_grid
    ours = black_scholes(SPOT, strike, t, vol, RATE, DIV, np.where(call, "C", "P"))
    assert len(ours) == 200
    # D(F N(d1) - K N(d2)) cancels for far-OTM options: a price p carries a rounding error of
    # ~eps·max(F, K), so 1e-10 relative is meaningful only where p > 1e-4·max(F, K).
    scale = np.maximum(SPOT, strike)
    meaningful = ref[:, 0] > 1e-4 * scale
    assert meaningful.sum() >= 150
    np.testing.assert_allclose(ours[meaningful], ref[meaningful, 0], rtol=REL, atol=0)
    assert np.all(np.abs(ours - ref[:, 0]) <= 1e-14 * scale)


def test_black_scholes_delta_and_vega_match_quantlib(bs_grid):
    strike, t, vol, call, ref = bs_grid
    fwd = SPOT * np.exp((RATE - DIV) * t)
    delta = black_delta(fwd, strike, t, vol, np.exp(-DIV * t), call)
    np.testing.assert_allclose(delta, ref[:, 1], rtol=REL, atol=1e-14)
    # QuantLib's vega is w.r.t. sigma in the BS-on-spot parametrisation; Black vega on the forward
    # with discount exp(-rT) is the same number.
    vega = black_vega(fwd, strike, t, vol, np.exp(-RATE * t))
    np.testing.assert_allclose(vega, ref[:, 2], rtol=REL, atol=1e-10)


@pytest.mark.parametrize("fut", [12.5, 21.3, 48.0])
def test_black76_matches_quantlib_black_formula(fut):
    strikes = np.array([8.0, 11.0, 15.0, 20.0, 25.0, 35.0, 55.0, 80.0])
    taus = np.array([5, 19, 33, 61, 124, 180]) / 365.0
    vols = np.array([0.5, 0.85, 1.3])
    k, t, v = (a.ravel() for a in np.meshgrid(strikes, taus, vols, indexing="ij"))
    rate = 0.0375
    for is_call, code, qtype in ((True, "C", ql.Option.Call), (False, "P", ql.Option.Put)):
        ours = black76(fut, k, t, v, rate, code)
        ref = np.array([ql.blackFormula(qtype, float(kk), fut, float(vv * np.sqrt(tt)), float(np.exp(-rate * tt)))
                        for kk, tt, vv in zip(k, t, v)])
        scale = np.maximum(fut, k)  # see test_black_scholes_matches_quantlib
        big = ref > 1e-4 * scale
        assert big.sum() >= 80
        np.testing.assert_allclose(ours[big], ref[big], rtol=REL, atol=0)
        assert np.all(np.abs(ours - ref) <= 1e-14 * scale)
        # bool option_type is accepted and equivalent to 'C'/'P'
        np.testing.assert_array_equal(black76(fut, k, t, v, rate, is_call), ours)


def test_put_call_parity_exact():
    rng = np.random.default_rng(3)
    n = 2000
    f = rng.uniform(10, 5000, n)
    k = f * np.exp(rng.uniform(-1.0, 1.0, n))
    t = rng.uniform(1 / 365, 3.0, n)
    vol = rng.uniform(0.05, 1.5, n)
    d = np.exp(-rng.uniform(0.0, 0.08, n) * t)
    c = black(f, k, t, vol, d, "C")
    p = black(f, k, t, vol, d, "P")
    # C - P = D (F - K): exact up to floating-point rounding of the operands' magnitude
    np.testing.assert_allclose(c - p, d * (f - k), rtol=0, atol=1e-12 * (f + k).max())
    assert np.max(np.abs((c - p) - d * (f - k)) / (f + k)) < 1e-14


def test_put_call_parity_black_scholes_on_spot():
    k = np.arange(3000.0, 5001.0, 50.0)
    t, vol = 0.37, 0.23
    c = black_scholes(SPOT, k, t, vol, RATE, DIV, "C")
    p = black_scholes(SPOT, k, t, vol, RATE, DIV, "P")
    rhs = np.exp(-RATE * t) * (SPOT * np.exp((RATE - DIV) * t) - k)
    np.testing.assert_allclose(c - p, rhs, rtol=0, atol=1e-9)


def test_zero_vol_or_expiry_gives_discounted_intrinsic():
    out = black(np.array([100.0, 100.0, 100.0, 100.0]), np.array([90.0, 110.0, 90.0, 110.0]),
                np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.3, 0.3, 0.0, 0.0]), 0.95,
                np.array(["C", "P", "P", "C"]))
    np.testing.assert_allclose(out, [9.5, 9.5, 0.0, 0.0], rtol=0, atol=1e-15)


def _vol_resolvable(f, k, t, vol, d) -> np.ndarray:
    eps = np.finfo(float).eps
    return black_vega(f, k, t, vol, d) * vol * 1e-10 > 20 * eps * np.maximum(f, k)


def test_implied_vol_round_trip_vectorized_incl_deep_itm_otm():
    m = np.exp(np.linspace(-0.8, 0.8, 33))  # K / F: deep ITM to deep OTM either side
    taus = np.array([7, 30, 90, 365, 1095]) / 365.0
    vols = np.array([0.05, 0.12, 0.25, 0.6, 1.5, 3.0])
    mm, tt, vv, cc = (a.ravel() for a in np.meshgrid(m, taus, vols, [True, False], indexing="ij"))
    f = 2500.0
    k = f * mm
    d = np.exp(-0.03 * tt)
    price = black(f, k, tt, vv, d, cc)
    lower, upper = no_arbitrage_bounds(f, k, d, cc)
    # Vol is identified to 1e-10 only where a 1e-10 relative vol move shifts the price well above
    # its rounding error ~eps·max(F, K); elsewhere (e.g. 1e-118 puts) the price pins no such vol.
    ok = _vol_resolvable(f, k, tt, vv, d)
    assert ok.sum() > 1300 and (np.abs(np.log(mm[ok])) >= 0.75).sum() >= 100  # deep wings included
    assert ((price > lower) & (price < upper))[ok].all()
    iv = implied_vol(price[ok], f, k[ok], tt[ok], d[ok], cc[ok])
    assert np.isfinite(iv).all()
    np.testing.assert_allclose(iv, vv[ok], rtol=1e-10, atol=0)


def test_implied_vol_round_trip_black_scholes_chain_on_spot():
    k = np.arange(2000.0, 6001.0, 25.0)
    t, vol = 45 / 365.0, 0.18 + 0.2 * np.abs(np.log(k / SPOT))
    fwd = SPOT * np.exp((RATE - DIV) * t)
    d = np.exp(-RATE * t)
    for code in ("C", "P"):
        price = black_scholes(SPOT, k, t, vol, RATE, DIV, code)
        iv = implied_vol(price, fwd, k, t, d, code)
        good = _vol_resolvable(fwd, k, t, vol, d)
        assert good.sum() >= 90
        np.testing.assert_allclose(iv[good], vol[good], rtol=1e-10)


def test_implied_vol_nan_outside_no_arbitrage_bounds():
    f, k, t, d = 100.0, np.array([80.0, 100.0, 120.0]), 0.5, np.exp(-0.02 * 0.5)
    lo_c, up_c = no_arbitrage_bounds(f, k, d, "C")
    lo_p, up_p = no_arbitrage_bounds(f, k, d, "P")
    np.testing.assert_allclose(lo_c, d * np.array([20.0, 0.0, 0.0]))
    np.testing.assert_allclose(up_c, d * 100.0)
    np.testing.assert_allclose(lo_p, d * np.array([0.0, 0.0, 20.0]))
    np.testing.assert_allclose(up_p, d * k)
    # below intrinsic, at the bounds, above the upper bound -> NaN
    for code, lo, up in (("C", lo_c, up_c), ("P", lo_p, up_p)):
        for price in (lo - 0.01, lo, up, up + 0.01):
            assert np.isnan(implied_vol(price, f, k, t, d, code)).all()
    assert np.isnan(implied_vol(-1.0, f, 100.0, t, d, "C"))
    # t <= 0 -> NaN even for a price inside the bounds
    assert np.isnan(implied_vol(5.0, f, 100.0, 0.0, d, "C"))
    # just inside the bounds -> finite
    assert np.isfinite(implied_vol(lo_c + 0.5, f, k, t, d, "C")).all()


def test_delta_matches_finite_difference():
    s = 4000.0
    k = np.array([3000.0, 3600.0, 4000.0, 4400.0, 5000.0])
    t, vol, h = 0.4, 0.22, 1e-3
    for code in ("C", "P"):
        up = black_scholes(s + h, k, t, vol, RATE, DIV, code)
        dn = black_scholes(s - h, k, t, vol, RATE, DIV, code)
        fd = (up - dn) / (2 * h)
        fwd = s * np.exp((RATE - DIV) * t)
        delta = black_delta(fwd, k, t, vol, np.exp(-DIV * t), code)
        np.testing.assert_allclose(delta, fd, rtol=0, atol=1e-6)
    # Black-76: delta w.r.t. the future, discount_to_spot = exp(-rT)
    fut, kv, tv, vv, r = 20.0, np.array([12.0, 18.0, 20.0, 25.0, 40.0]), 0.1, 0.9, 0.04
    for code in ("C", "P"):
        fd = (black76(fut + 1e-5, kv, tv, vv, r, code) - black76(fut - 1e-5, kv, tv, vv, r, code)) / 2e-5
        delta = black_delta(fut, kv, tv, vv, np.exp(-r * tv), code)
        np.testing.assert_allclose(delta, fd, rtol=0, atol=1e-8)
    # call delta - put delta = discount_to_spot
    dc = black_delta(fut, kv, tv, vv, np.exp(-r * tv), "C")
    dp = black_delta(fut, kv, tv, vv, np.exp(-r * tv), "P")
    np.testing.assert_allclose(dc - dp, np.exp(-r * tv), rtol=1e-15)


def test_vega_matches_finite_difference():
    f, k, t, d = 100.0, np.array([70.0, 95.0, 100.0, 105.0, 150.0]), 0.75, 0.97
    vol, h = 0.3, 1e-6
    fd = (black(f, k, t, vol + h, d, "C") - black(f, k, t, vol - h, d, "C")) / (2 * h)
    np.testing.assert_allclose(black_vega(f, k, t, vol, d), fd, rtol=1e-7)


def test_implied_vol_nan_beyond_the_search_cap_vectorized():
    # one array mixing reachable vols (incl. 9.5, just under the cap), vols above the 1000 % cap,
    # and prices below intrinsic / above the upper bound
    f, t, d = 100.0, 7 / 365.0, np.exp(-0.04 * 7 / 365.0)
    k = np.array([100.0, 90.0, 120.0, 100.0, 100.0, 80.0, 100.0, 100.0])
    vol = np.array([0.2, 1.5, 9.5, VOL_CAP, 10.5, 30.0, 0.3, 0.3])
    call = np.array([True, False, True, True, True, False, True, True])
    price = black(f, k, t, vol, d, call)
    lower, upper = no_arbitrage_bounds(f, k, d, call)
    price[6] = lower[6] - 0.01
    price[7] = upper[7] + 0.01
    assert ((price > lower) & (price < upper))[:6].all()  # the >cap prices are arbitrage-free
    iv = implied_vol(price, f, k, t, d, call)
    np.testing.assert_allclose(iv[:4], vol[:4], rtol=1e-9)
    assert np.isnan(iv[4:]).all()
    # the cap is a parameter: the same prices against a 200 % cap
    iv2 = implied_vol(price, f, k, t, d, call, max_vol=2.0)
    np.testing.assert_allclose(iv2[:2], vol[:2], rtol=1e-10)
    assert np.isnan(iv2[2:]).all()


def _ql_black_greeks(f, k, t, vol, d, is_call) -> tuple[float, float]:
    calc = ql.BlackCalculator(ql.PlainVanillaPayoff(ql.Option.Call if is_call else ql.Option.Put, float(k)),
                              float(f), float(vol * np.sqrt(t)), float(d))
    return calc.deltaForward(), calc.vega(float(t))


def test_greeks_zero_vol_or_time_limits_vectorized():
    # normal lanes next to zero-vol and zero-time lanes ATM, ITM and OTM, calls and puts
    f = 20.0
    k = np.array([18.0, 20.0, 25.0, 20.0, 20.0, 15.0, 25.0, 15.0, 25.0, 20.0, 20.0])
    t = np.array([0.2, 0.5, 0.1, 0.0, 0.5, 0.0, 0.0, 0.3, 0.3, 0.0, 0.0])
    vol = np.array([0.9, 0.6, 1.2, 0.7, 0.0, 0.8, 0.8, 0.0, 0.0, 0.0, 0.5])
    r = 0.03
    d = np.exp(-r * t)
    normal = np.array([True, True, True] + [False] * 8)
    with np.errstate(all="raise"):  # no 0/0 or inf arithmetic leaks out of the limits
        for is_call in (True, False):
            delta = black_delta(f, k, t, vol, d, is_call)
            vega = black_vega(f, k, t, vol, d)
            assert np.isfinite(delta).all() and np.isfinite(vega).all()
            ref = np.array([_ql_black_greeks(f, kk, tt, vv, dd, is_call)
                            for kk, tt, vv, dd in zip(k[normal], t[normal], vol[normal], d[normal])])
            np.testing.assert_allclose(delta[normal], ref[:, 0], rtol=REL, atol=1e-14)
            np.testing.assert_allclose(vega[normal], ref[:, 1], rtol=REL, atol=0)
            # limits: delta D·N(±inf or 0) (put: minus D·N(-d1)), discounted like the normal lanes
            itm = np.where(is_call, f > k, f < k)
            expected = np.where(f == k, 0.5, np.where(itm, 1.0, 0.0)) * (1.0 if is_call else -1.0) * d
            np.testing.assert_allclose(delta[~normal], expected[~normal], rtol=0, atol=1e-15)
    assert black_delta(f, 20.0, 0.0, 0.3, 1.0, "C") == 0.5 and black_delta(f, 20.0, 0.0, 0.3, 1.0, "P") == -0.5
    # vega: 0 at T = 0 and away from the money; at the money with T > 0 and zero vol it is the
    # right derivative D F √T φ(0) of the ATM price at σ = 0
    atm0 = (k == f) & (t > 0) & (vol == 0)
    np.testing.assert_array_equal(vega[~normal & ~atm0], 0.0)
    lim = d[atm0] * f * np.sqrt(t[atm0]) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(vega[atm0], lim, rtol=1e-15)
    h = 1e-7
    one_sided = (black(f, k[atm0], t[atm0], h, d[atm0], "C") - black(f, k[atm0], t[atm0], 0.0, d[atm0], "C")) / h
    np.testing.assert_allclose(vega[atm0], one_sided, rtol=1e-6)


def test_greeks_are_continuous_into_the_limits():
    # the zero-vol / zero-time values are the limits of the regular formula (QuantLib's
    # BlackCalculator on a tiny but positive std dev gives the regular-branch value)
    f, k = 100.0, np.array([100.0, 100.0, 90.0, 110.0])
    d = 0.98
    for is_call in (True, False):
        at0_delta = black_delta(f, k, np.array([0.0, 0.4, 0.0, 0.4]), np.array([0.3, 0.0, 0.3, 0.0]), d, is_call)
        tiny = np.array([_ql_black_greeks(f, kk, 0.4, 1e-9, d, is_call) for kk in k])
        np.testing.assert_allclose(at0_delta, tiny[:, 0], rtol=0, atol=1e-9)
    vega_lim = black_vega(f, 100.0, 0.4, 0.0, d)
    assert vega_lim == pytest.approx(_ql_black_greeks(f, 100.0, 0.4, 1e-9, d, True)[1], rel=1e-9)
    assert vega_lim == pytest.approx(black_vega(f, 100.0, 0.4, 1e-12, d), rel=1e-12)


def test_a_rows_implied_vol_does_not_depend_on_the_rows_solved_beside_it():
    """Each row stops at its own convergence: solved alone, or in a batch whose slowest row needs
    many more iterations, it gives the same bits (a day's IVs must not depend on its run's days)."""
    rng = np.random.default_rng(5)
    n = 200
    f = np.full(n, 100.0)
    k = rng.uniform(50, 160, n)
    t = rng.uniform(0.02, 2.0, n)
    vol = rng.uniform(0.08, 1.2, n)
    call = rng.random(n) < 0.5
    d = np.exp(-0.03 * t)
    price = black(f, k, t, vol, d, call)
    together = implied_vol(price, f, k, t, d, call)
    alone = np.array([implied_vol(price[i:i + 1], f[i:i + 1], k[i:i + 1], t[i:i + 1], d[i:i + 1], call[i:i + 1])[0]
                      for i in range(n)])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_allclose(together[np.isfinite(together)], vol[np.isfinite(together)], rtol=1e-7)
