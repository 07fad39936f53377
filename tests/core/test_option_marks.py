"""Chain marks and greeks (alvh_pipeline.core.option_marks) vs. QuantLib, parity and hand cases.

Chains come from the synthetic source, whose mids are exact Black-Scholes / Black-76 prices at
`model_iv`, so the marked IVs invert back to it and put-call parity holds on mids.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import QuantLib as ql

from alvh_pipeline.core.option_marks import black_gamma, black_theta, mark_chain
from alvh_pipeline.core.pricing import black, black_delta, black_vega
from alvh_pipeline.core.vol_surface import implied_vols
from alvh_pipeline.sources import synthetic

DAY = pd.Timestamp("2024-03-05")
OTHER = pd.Timestamp("2008-11-17")  # a stressed day of the synthetic history
REL = 1e-8
GREEKS = ["delta", "gamma", "vega", "theta"]


@pytest.fixture(scope="module")
def spx_raw() -> pd.DataFrame:
    return synthetic.generate("spx_options", [DAY, OTHER])


@pytest.fixture(scope="module")
def vix_raw() -> pd.DataFrame:
    return synthetic.generate("vix_options", [DAY, OTHER])


@pytest.fixture(scope="module")
def spx(spx_raw) -> pd.DataFrame:
    return mark_chain(spx_raw, "spx")


@pytest.fixture(scope="module")
def vix(vix_raw) -> pd.DataFrame:
    return mark_chain(vix_raw, "vix")


def _vol(m: pd.DataFrame) -> np.ndarray:
    return np.where(m["iv_from_model"], m["model_iv"], m["iv"])


def _ql_calculator(m: pd.DataFrame, underlying: np.ndarray) -> np.ndarray:
    """delta, gamma, vega per vol point, theta per day from ql.BlackCalculator, row by row."""
    vol = _vol(m)
    out = []
    for i in range(len(m)):
        typ = ql.Option.Call if m["option_type"].iat[i] == "C" else ql.Option.Put
        t = float(m["t"].iat[i])
        calc = ql.BlackCalculator(ql.PlainVanillaPayoff(typ, float(m["strike"].iat[i])), float(m["forward"].iat[i]),
                                  float(vol[i] * np.sqrt(t)), float(np.exp(-m["rate"].iat[i] * t)))
        u = float(underlying[i])
        out.append([calc.delta(u), calc.gamma(u), calc.vega(t) * 0.01, calc.thetaPerDay(u, t)])
    return np.array(out)


def _ql_engine(m: pd.DataFrame, kind: str, rows: np.ndarray) -> np.ndarray:
    """The same greeks from an AnalyticEuropeanEngine on dated flat curves (Actual365Fixed):
    a Black-Scholes-Merton process on spot for SPX, a Black process on the future for VIX."""
    dc = ql.Actual365Fixed()
    vol = _vol(m)
    out = []
    for i in rows:
        d, e = pd.Timestamp(m["date"].iat[i]), pd.Timestamp(m["expiry"].iat[i])
        today = ql.Date(d.day, d.month, d.year)
        ql.Settings.instance().evaluationDate = today
        rates = ql.YieldTermStructureHandle(ql.FlatForward(today, float(m["rate"].iat[i]), dc))
        vols = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), float(vol[i]), dc))
        if kind == "spx":
            divs = ql.YieldTermStructureHandle(ql.FlatForward(today, float(m["dividend_yield"].iat[i]), dc))
            spot = ql.QuoteHandle(ql.SimpleQuote(float(m["underlying"].iat[i])))
            process = ql.BlackScholesMertonProcess(spot, divs, rates, vols)
        else:
            process = ql.BlackProcess(ql.QuoteHandle(ql.SimpleQuote(float(m["future_price"].iat[i]))), rates, vols)
        typ = ql.Option.Call if m["option_type"].iat[i] == "C" else ql.Option.Put
        option = ql.VanillaOption(ql.PlainVanillaPayoff(typ, float(m["strike"].iat[i])),
                                  ql.EuropeanExercise(ql.Date(e.day, e.month, e.year)))
        option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
        out.append([option.delta(), option.gamma(), option.vega() * 0.01, option.thetaPerDay()])
    return np.array(out)


# ---- inputs and implied vols --------------------------------------------------------------------

def test_added_columns_and_hand_checked_inputs(spx, spx_raw):
    added = ["mid", "dte", "t", "forward", "iv", *GREEKS, "iv_from_model"]
    assert list(spx.columns) == [*spx_raw.columns, *added]
    assert spx["dte"].dtype == np.int64 and spx["iv_from_model"].dtype == bool
    pd.testing.assert_frame_equal(spx[spx_raw.columns], spx_raw)  # the input is copied, not changed
    row = spx[(spx["date"] == DAY) & (spx["expiry"] == pd.Timestamp("2024-04-19"))].iloc[0]
    assert row["dte"] == 45 and row["t"] == 45 / 365  # 2024-03-05 -> 2024-04-19
    s, r, q = row["underlying"], row["rate"], row["dividend_yield"]
    assert row["forward"] == pytest.approx(s * np.exp((r - q) * 45 / 365), rel=1e-15)
    assert row["mid"] == pytest.approx(0.5 * (row["bid"] + row["ask"]), rel=1e-15)


def test_vix_forward_is_the_future(vix):
    np.testing.assert_array_equal(vix["forward"], vix["future_price"])
    assert (vix["dte"] >= 1).all()


@pytest.mark.parametrize("kind", ["spx", "vix"])
def test_iv_is_vol_surface_inversion_and_recovers_model_iv(kind, spx, vix, spx_raw, vix_raw):
    m, raw = (spx, spx_raw) if kind == "spx" else (vix, vix_raw)
    np.testing.assert_array_equal(m["iv"], implied_vols(raw, kind))  # one definition of the IV
    finite = np.isfinite(m["iv"])
    assert finite.mean() > 0.9
    assert np.max(np.abs(m["iv"] - m["model_iv"])[finite]) < 1e-9
    # NaN exactly where there is no bid (far OTM floored at 0 in the source), and there the greeks
    # fall back to model_iv.
    np.testing.assert_array_equal(~finite, raw["bid"].to_numpy() <= 0)
    np.testing.assert_array_equal(m["iv_from_model"], ~finite)
    assert np.isfinite(m[GREEKS].to_numpy()).all()


# ---- greeks vs. QuantLib ------------------------------------------------------------------------

def test_spx_greeks_match_quantlib_black_calculator(spx):
    """Every SPX row, both days, ITM and OTM, including the model_iv fallback rows."""
    ref = _ql_calculator(spx, spx["underlying"].to_numpy())
    assert len(ref) > 4000 and spx["iv_from_model"].sum() > 50
    for j, g in enumerate(GREEKS):
        np.testing.assert_allclose(spx[g], ref[:, j], rtol=REL, atol=0, err_msg=g)


def test_vix_greeks_match_quantlib_black_calculator(vix):
    """VIX options: Black-76 greeks w.r.t. the VX future (QuantLib's spot = the forward)."""
    ref = _ql_calculator(vix, vix["future_price"].to_numpy())
    assert len(ref) > 300
    for j, g in enumerate(GREEKS):
        np.testing.assert_allclose(vix[g], ref[:, j], rtol=REL, atol=0, err_msg=g)


@pytest.mark.parametrize("kind", ["spx", "vix"])
def test_greeks_match_quantlib_analytic_engine(kind, spx, vix):
    """An independent route (dated curves, the engine builds F and T itself) on a spread of rows."""
    m = spx if kind == "spx" else vix
    rows = np.arange(0, len(m), max(len(m) // 120, 1))
    ref = _ql_engine(m, kind, rows)
    for j, g in enumerate(GREEKS):
        np.testing.assert_allclose(m[g].to_numpy()[rows], ref[:, j], rtol=REL, atol=0, err_msg=g)


def test_spx_textbook_theta_hand_checked():
    """One row against the textbook Black-Scholes theta on spot (Hull):
    Θ_call = -S e^{-qT} φ(d1) σ / (2√T) - r K e^{-rT} N(d2) + q S e^{-qT} N(d1)."""
    from math import erf, exp, log, pi, sqrt

    s, k, r, q, vol, days = 4000.0, 4100.0, 0.05, 0.015, 0.2, 30
    t = days / 365
    d1 = (log(s / k) + (r - q + 0.5 * vol**2) * t) / (vol * sqrt(t))
    d2 = d1 - vol * sqrt(t)
    n = lambda x: 0.5 * (1 + erf(x / sqrt(2)))
    pdf = exp(-0.5 * d1 * d1) / sqrt(2 * pi)
    hull = -s * exp(-q * t) * pdf * vol / (2 * sqrt(t)) - r * k * exp(-r * t) * n(d2) + q * s * exp(-q * t) * n(d1)
    fwd = s * exp((r - q) * t)
    ours = black_theta(fwd, k, t, vol, r, r - q, "C")
    assert float(ours) == pytest.approx(hull, rel=1e-12)
    gamma = exp(-q * t) * pdf / (s * vol * sqrt(t))
    assert float(black_gamma(fwd, k, t, vol, exp(-q * t), s)) == pytest.approx(gamma, rel=1e-12)


@pytest.mark.parametrize("kind", ["spx", "vix"])
def test_theta_is_one_calendar_day_of_decay(kind, spx, vix):
    """theta ≈ V(T - ½ day) - V(T + ½ day) at the same underlying, vol and rates: the central
    difference over one calendar day, off by O(day²) (within 1 % from a week out)."""
    m = spx if kind == "spx" else vix
    m = m[m["dte"] >= 7]
    vol, r, t, k = _vol(m), m["rate"].to_numpy(), m["t"].to_numpy(), m["strike"].to_numpy()
    typ = m["option_type"].to_numpy()

    def value(tt: np.ndarray) -> np.ndarray:
        if kind == "spx":
            f = m["underlying"].to_numpy() * np.exp((r - m["dividend_yield"].to_numpy()) * tt)
        else:
            f = m["future_price"].to_numpy()
        return black(f, k, tt, vol, np.exp(-r * tt), typ)

    half_day = 0.5 / 365
    decay = value(t - half_day) - value(t + half_day)
    theta = m["theta"].to_numpy()
    assert np.all(np.abs(theta - decay) <= 0.01 * np.maximum(np.abs(theta), 1e-3))
    assert (theta < 0).mean() > 0.9  # a long option normally loses value by the day


# ---- parity -------------------------------------------------------------------------------------

def _pairs(m: pd.DataFrame) -> pd.DataFrame:
    keys = ["date", "expiry", "strike"]
    c = m[m["option_type"] == "C"].set_index(keys)
    p = m[m["option_type"] == "P"].set_index(keys)
    both = c.join(p, lsuffix="_c", rsuffix="_p", how="inner")
    return both[(both["bid_c"] > 0) & (both["bid_p"] > 0)].reset_index()


@pytest.mark.parametrize("kind", ["spx", "vix"])
def test_put_call_parity_of_marked_mids_and_greeks(kind, spx, vix):
    """C - P = D (F - K) on mids; Δ_C - Δ_P = D_U; equal gamma and vega for a call and a put of
    the same strike; Θ_C - Θ_P = -∂[D(F - K)]/∂T per day = (q S e^{-qT} - r K e^{-rT}) / 365 (SPX),
    r D (F - K) / 365 (VIX)."""
    x = _pairs(spx if kind == "spx" else vix)
    assert len(x) > 100
    k, t, r = x["strike"].to_numpy(), x["t_c"].to_numpy(), x["rate_c"].to_numpy()
    f, d = x["forward_c"].to_numpy(), np.exp(-r * t)
    scale = np.maximum(f, k)  # a price carries rounding of ~eps x max(F, K)
    assert np.all(np.abs((x["mid_c"] - x["mid_p"]).to_numpy() - d * (f - k)) <= 1e-12 * scale)
    if kind == "spx":
        s, q = x["underlying_c"].to_numpy(), x["dividend_yield_c"].to_numpy()
        du, dtheta = np.exp(-q * t), (q * s * np.exp(-q * t) - r * k * d) / 365
    else:
        du, dtheta = d, r * d * (f - k) / 365
    # call and put share the vol only up to the inversion tolerance (IVs agree to ~1e-13)
    np.testing.assert_allclose(x["delta_c"] - x["delta_p"], du, rtol=1e-10)
    np.testing.assert_allclose(x["gamma_c"], x["gamma_p"], rtol=1e-10)
    np.testing.assert_allclose(x["vega_c"], x["vega_p"], rtol=1e-10)
    assert np.all(np.abs((x["theta_c"] - x["theta_p"]).to_numpy() - dtheta) <= 1e-11 * scale / 365)


# ---- fallbacks and degenerate rows -------------------------------------------------------------

def _row(**kw) -> pd.DataFrame:
    base = dict(date=DAY, expiry=DAY + pd.Timedelta(days=30), strike=4000.0, option_type="C", bid=0.0, ask=0.1,
                bid_size=1, ask_size=1, underlying=4000.0, rate=0.05, dividend_yield=0.015, model_iv=0.2,
                provenance="test")
    base.update(kw)
    return pd.DataFrame({k: [v] for k, v in base.items()})


def test_model_iv_fallback_and_missing_model_iv():
    chain = pd.concat([_row(strike=4600.0, bid=0.0, ask=0.05), _row(strike=4600.0, option_type="P", bid=0.0)])
    m = mark_chain(chain, "spx")
    assert m["iv"].isna().all() and m["iv_from_model"].all()
    t = 30 / 365
    fwd = 4000.0 * np.exp((0.05 - 0.015) * t)
    np.testing.assert_allclose(m["delta"], black_delta(fwd, 4600.0, t, 0.2, np.exp(-0.015 * t), ["C", "P"]), rtol=1e-14)
    np.testing.assert_allclose(m["vega"], 0.01 * black_vega(fwd, 4600.0, t, 0.2, np.exp(-0.05 * t)), rtol=1e-14)
    bare = mark_chain(chain.drop(columns="model_iv"), "spx")
    assert bare[GREEKS].isna().all().all() and not bare["iv_from_model"].any()


def test_expiry_day_limits_hand_checked():
    """dte = 0: no IV (T = 0), greeks at model_iv take the σ√T -> 0 limits. ITM call: Δ = 1,
    Γ = 0, vega 0, Θ_year = r (S - K) - (r - q) S = q S - r K; OTM call: all 0; at the money Γ is a
    Dirac mass (NaN) and Δ = 1/2."""
    chain = pd.concat([_row(expiry=DAY, strike=k, bid=b, ask=b + 0.1) for k, b in ((3900.0, 99.9), (4100.0, 0.0),
                                                                                  (4000.0, 0.0))])
    m = mark_chain(chain, "spx")
    assert (m["dte"] == 0).all() and m["iv"].isna().all() and m["iv_from_model"].all()
    np.testing.assert_allclose(m["delta"], [1.0, 0.0, 0.5], rtol=0, atol=0)
    np.testing.assert_allclose(m["gamma"].iloc[:2], [0.0, 0.0], atol=0)
    assert np.isnan(m["gamma"].iloc[2])
    np.testing.assert_allclose(m["vega"], [0.0, 0.0, 0.0], atol=0)
    np.testing.assert_allclose(m["theta"].iloc[:2], [(0.015 * 4000 - 0.05 * 3900) / 365, 0.0], rtol=1e-14, atol=0)


def test_marking_days_together_equals_marking_each(spx_raw, spx):
    one = mark_chain(spx_raw[spx_raw["date"] == OTHER], "spx")
    pd.testing.assert_frame_equal(one, spx[spx["date"] == OTHER])


def test_unknown_kind_refused(spx_raw):
    with pytest.raises(ValueError, match="kind"):
        mark_chain(spx_raw.head(2), "spy")


@pytest.mark.parametrize("kind, table, day", [("spx", "spx_options", "2024-03-05"),
                                              ("spx", "spx_options", "2008-11-17"),
                                              ("vix", "vix_options", "2024-03-05")])
def test_the_marks_implied_vols_equal_the_feature_layers_bit_for_bit(kind, table, day):
    """mark_chain has its own faster Newton; it must stay the same number as vol_surface's
    (pricing.implied_vol), or the books and the features would read two different IVs."""
    chain = synthetic.generate(table, [day])
    np.testing.assert_array_equal(mark_chain(chain, kind)["iv"].to_numpy(), implied_vols(chain, kind))


def test_a_quote_without_an_implied_vol_takes_its_smiles_vol_when_no_model_vol_stands_in():
    """Real chains carry no model_iv: a far wing with a zero bid has no implied vol of its own, and
    a held leg's greeks must stay finite, so it takes the vol its (date, expiry) smile has at its
    strike (linear between solved strikes, flat beyond the last)."""
    from alvh_pipeline.core.option_marks import smile_vols

    date = np.array(["2008-03-03"] * 5 + ["2008-03-04"] * 2, dtype="datetime64[ns]")
    expiry = np.array(["2008-03-20"] * 7, dtype="datetime64[ns]")
    strike = np.array([1000.0, 1100.0, 1200.0, 1300.0, 1400.0, 1000.0, 1200.0])
    iv = np.array([np.nan, 0.30, np.nan, 0.20, np.nan, np.nan, np.nan])
    rows = ~np.isfinite(iv)
    got = smile_vols(date, expiry, strike, iv, rows)
    assert got[[0, 2, 4]] == pytest.approx([0.30, 0.25, 0.20])  # flat, linear, flat
    assert np.isnan(got[[5, 6]]).all()  # another day's smile has no solved strike: nothing borrowed
    assert np.isnan(got[[1, 3]]).all()  # only the rows asked for
