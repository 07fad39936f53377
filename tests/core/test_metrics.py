"""Performance metrics (alvh_pipeline.core.metrics) against quantstats 0.0.86 and pyxirr 0.10.8.

Every return metric is compared with quantstats on seeded daily series (3 years with a crash, a
missing day and flat days, with and without an index freq) to 1e-10; a five-day series and small
equity curves are worked by hand; XIRR is compared with pyxirr and with the two-flow closed form.
quantstats and pyxirr are test dependencies only.
"""

from __future__ import annotations

import warnings
from decimal import Decimal, localcontext
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import metrics as m

try:
    import quantstats as qs
except ImportError:  # test extra; the hand-worked tests still run without it
    qs = None
try:
    import pyxirr
except ImportError:
    pyxirr = None

requires_qs = pytest.mark.skipif(qs is None, reason="quantstats==0.0.86 (test extra) is not installed")
requires_pyxirr = pytest.mark.skipif(pyxirr is None, reason="pyxirr (test extra) is not installed")

TOL = 1e-10


def _daily(seed: int, crash_at: int, freq: bool = True) -> pd.Series:
    """Three years of fat-tailed daily returns, a 15-day crash, one missing day and three flat days."""
    rng = np.random.default_rng(seed)
    n = 756
    r = 0.0005 + 0.009 * rng.standard_t(4, n) / np.sqrt(2.0)
    r[crash_at : crash_at + 15] = rng.normal(-0.03, 0.02, 15)
    r[[10, 50, 400]] = 0.0
    r[200] = np.nan
    idx = pd.bdate_range("2019-01-02", periods=n)
    if not freq:
        idx = pd.DatetimeIndex(idx.to_numpy())  # a trading-calendar index carries no freq
    return pd.Series(r, index=idx, name="steward")


SERIES = {
    "crash_recovered": _daily(9, 300),
    "crash_recovered_nofreq": _daily(9, 300, freq=False),
    "crash_at_end": _daily(11, 730),
}
_RF_DATES = pd.bdate_range("2018-12-01", "2022-01-31")
RFS = {
    "zero": 0.0,
    "two_pct": 0.02,
    "negative_scalar": -0.01,
    "tbill_series": pd.Series(np.linspace(0.024, 0.001, len(_RF_DATES)), index=_RF_DATES),
}


def _qs_metrics(r: pd.Series, rf: float | pd.Series) -> dict[str, float]:
    s = qs.stats
    out = {
        "total_return": s.comp(r),
        "cagr": s.cagr(r, periods=252),
        "volatility": s.volatility(r, periods=252),
        "sharpe": s.sharpe(r, rf=rf, periods=252),
        "sortino": s.sortino(r, rf=rf, periods=252),
        "calmar": s.calmar(r, periods=252),
        "max_drawdown": s.max_drawdown(r),
        "win_rate": s.win_rate(r),
    }
    for level in (0.95, 0.99):
        pct = round(level * 100)
        out[f"var_{pct}_parametric"] = s.value_at_risk(r, sigma=1, confidence=level)
        out[f"cvar_{pct}_parametric"] = s.conditional_value_at_risk(r, confidence=level, method="parametric")
        out[f"cvar_{pct}_historical"] = s.conditional_value_at_risk(r, confidence=level, method="historical")
        # quantstats has no historical VaR: numpy's linear quantile is the independent check
        out[f"var_{pct}_historical"] = np.quantile(r.dropna().to_numpy(), 1 - level, method="linear")
    return {k: float(v) for k, v in out.items()}


@requires_qs
@pytest.mark.parametrize("rf_name", list(RFS))
@pytest.mark.parametrize("series_name", list(SERIES))
def test_every_metric_equals_quantstats(series_name, rf_name):
    r, rf = SERIES[series_name], RFS[rf_name]
    ours = m.performance(r, rf_annual=rf)
    theirs = _qs_metrics(r, rf)
    for key, expected in theirs.items():
        assert ours[key] == pytest.approx(expected, abs=TOL, rel=0), key
    assert ours["observations"] == 755 and ours["start"] == "2019-01-02"
    # the risk-free rate moves Sharpe and Sortino only, and only a positive or time-varying one
    base = m.performance(r)
    moved = {k for k in theirs if ours[k] != base[k]}
    assert moved == (set() if rf_name in ("zero", "negative_scalar") else {"sharpe", "sortino"})


@requires_qs
@pytest.mark.parametrize("series_name", list(SERIES))
def test_drawdown_dates_agree_with_quantstats_details(series_name):
    r = SERIES[series_name]
    curve = m.equity_curve(r)
    depth, peak, trough, recovery = m.max_drawdown(curve)
    details = qs.stats.drawdown_details(qs.stats.to_drawdown_series(r))
    row = details.loc[details["max drawdown"].idxmin()]
    assert depth * 100 == pytest.approx(row["max drawdown"], abs=1e-8)
    assert trough.strftime("%Y-%m-%d") == row["valley"]
    # quantstats' start / end are the first / last days IN drawdown: our peak is the session
    # before its start, our recovery the session after its end (None while still under water)
    sessions = curve.index
    assert sessions[sessions.get_loc(peak) + 1].strftime("%Y-%m-%d") == row["start"]
    if recovery is None:
        assert row["end"] == r.index[-1].strftime("%Y-%m-%d")
        assert (curve[trough:] < curve[peak]).all()
    else:
        assert sessions[sessions.get_loc(recovery) - 1].strftime("%Y-%m-%d") == row["end"]
    assert (series_name == "crash_at_end") == (recovery is None)
    # by definition: nothing above the peak before the trough, the trough is the low since the peak
    assert curve[:peak].max() == curve[peak] and curve[peak:trough].idxmin() == trough


def test_five_day_series_by_hand():
    idx = pd.DatetimeIndex(["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08"])
    r = pd.Series([0.10, -0.20, 0.05, 0.25, -0.10], index=idx)
    p = m.performance(r)
    # equity 1.1, 0.88, 0.924, 1.155, 1.0395
    assert p["total_return"] == pytest.approx(0.0395, abs=1e-15)
    assert p["cagr"] == pytest.approx(1.0395 ** (252 / 5) - 1, rel=1e-13)
    # mean 0.02, deviations .08 -.22 .03 .23 -.12 -> sum of squares 0.123, sample variance 0.03075
    assert p["volatility"] == pytest.approx(np.sqrt(0.03075 * 252), rel=1e-13)
    assert p["sharpe"] == pytest.approx(0.02 / np.sqrt(0.03075) * np.sqrt(252), rel=1e-13)
    # downside deviation sqrt((0.2^2 + 0.1^2) / 5) = 0.1 over all five days
    assert p["sortino"] == pytest.approx(0.2 * np.sqrt(252), rel=1e-13)
    assert p["win_rate"] == 3 / 5
    assert p["max_drawdown"] == pytest.approx(0.88 / 1.1 - 1, abs=1e-15)
    assert (p["max_drawdown_peak"], p["max_drawdown_trough"], p["max_drawdown_recovery"]) == (
        "2024-03-04", "2024-03-05", "2024-03-07"
    )
    assert p["calmar"] == pytest.approx((1.0395 ** (252 / 5) - 1) / 0.2, rel=1e-13)
    # sorted -.2 -.1 .05 .1 .25: the 5 % quantile sits at position 0.05 * 4 = 0.2 -> -.2 + .2 * .1
    assert p["var_95_historical"] == pytest.approx(-0.18, abs=1e-15)
    assert p["cvar_95_historical"] == pytest.approx(-0.20, abs=1e-15)
    assert p["var_99_historical"] == pytest.approx(-0.2 + 0.04 * 0.1, abs=1e-15)
    # 2 % rf: daily rate 1.02 ** (1/252) - 1 off every return, the deviation unchanged
    rf_d = 1.02 ** (1 / 252) - 1
    assert m.sharpe(r, 0.02) == pytest.approx((0.02 - rf_d) / np.sqrt(0.03075) * np.sqrt(252), rel=1e-12)


@requires_qs
@pytest.mark.parametrize(("freq", "base"), [(True, "2024-01-05"), (False, "2024-01-07")])
def test_first_day_loss_peaks_at_the_base_date(freq, base):
    idx = pd.bdate_range("2024-01-08", periods=4)  # Monday
    if not freq:
        idx = pd.DatetimeIndex(idx.to_numpy())
    r = pd.Series([-0.10, 0.05, 0.20, -0.01], index=idx)
    curve = m.equity_curve(r, start=100.0)
    # base one business day back (freq B: Friday) or one calendar day back (no freq: Sunday)
    assert curve.index[0] == pd.Timestamp(base) and curve.iloc[0] == 100.0
    np.testing.assert_allclose(curve.iloc[1:], [90.0, 94.5, 113.4, 112.266], rtol=1e-15)
    depth, peak, trough, recovery = m.max_drawdown(curve)
    assert depth == pytest.approx(-0.10, abs=1e-15)
    assert (peak, trough, recovery) == (pd.Timestamp(base), idx[0], idx[2])
    assert depth == pytest.approx(qs.stats.max_drawdown(r), abs=1e-15)


@requires_qs
def test_max_drawdown_of_an_equity_curve_by_hand():
    idx = pd.bdate_range("2024-02-01", periods=7)
    eq = pd.Series([100.0, 120.0, 120.0, 90.0, 110.0, 125.0, 100.0], index=idx)
    # 90 / 120 - 1 = -25 % beats 100 / 125 - 1 = -20 %; the flat top counts from its last day
    assert m.max_drawdown(eq) == (-0.25, idx[2], idx[3], idx[5])
    assert m.max_drawdown(eq)[0] == pytest.approx(qs.stats.max_drawdown(eq), abs=1e-15)
    # never recovered; a missing mark is dropped
    under = pd.Series([100.0, 80.0, np.nan, 90.0], index=idx[:4])
    assert m.max_drawdown(under) == (pytest.approx(-0.2, abs=1e-15), idx[0], idx[1], None)
    # recovery at exactly the old peak counts
    assert m.max_drawdown(pd.Series([50.0, 40.0, 50.0], index=idx[:3]))[3] == idx[2]
    assert m.max_drawdown(pd.Series([1.0, 1.0, 2.0], index=idx[:3])) == (0.0, None, None, None)
    with pytest.raises(ValueError, match="positive"):
        m.max_drawdown(pd.Series([0.0, 1.0], index=idx[:2]))


def test_var_cvar_conventions():
    r = SERIES["crash_recovered"]
    x = r.dropna().to_numpy()
    mu, sd = x.mean(), x.std(ddof=1)
    for level in (0.95, 0.99):
        alpha = 1 - level
        gauss = NormalDist(mu, sd)  # the standard library's normal, independent of scipy
        var_p, cvar_p = m.var_cvar(r, level, "parametric")
        assert var_p == pytest.approx(gauss.inv_cdf(alpha), abs=1e-12)
        z = NormalDist().inv_cdf(alpha)
        assert cvar_p == pytest.approx(mu - sd * NormalDist().pdf(z) / alpha, abs=1e-12)
        var_h, cvar_h = m.var_cvar(r, level, "historical")
        # type-7 quantile written out: position alpha * (n - 1) in the sorted sample
        srt, pos = np.sort(x), alpha * (len(x) - 1)
        lo = int(np.floor(pos))
        assert var_h == pytest.approx(srt[lo] + (pos - lo) * (srt[lo + 1] - srt[lo]), abs=1e-15)
        assert cvar_h == pytest.approx(np.mean([v for v in x if v <= var_h]), abs=1e-15)
        # returns, losses negative; the shortfall is at least as deep as the VaR
        assert cvar_p < var_p < 0 and cvar_h <= var_h < 0
    assert m.var_cvar(r, 0.99, "parametric")[0] < m.var_cvar(r, 0.95, "parametric")[0]
    # arrays work too; a constant series is its own VaR and CVaR
    assert m.var_cvar(x, 0.95, "historical") == m.var_cvar(r, 0.95, "historical")
    assert m.var_cvar([0.01, 0.01, 0.01], 0.95, "parametric") == (0.01, 0.01)
    with pytest.raises(ValueError, match="confidence"):
        m.var_cvar(r, 95, "parametric")
    with pytest.raises(ValueError, match="method"):
        m.var_cvar(r, 0.95, "cornish-fisher")


@requires_qs
def test_risk_free_conventions():
    r = SERIES["crash_recovered"]
    const = pd.Series(0.03, index=r.index)
    assert m.sharpe(r, const) == pytest.approx(m.sharpe(r, 0.03), abs=1e-14)
    # a sparse rate series: reindexed onto the return dates, carried forward, back-filled at the start
    sparse = pd.Series([0.05, 0.01], index=[r.index[100], r.index[500]])
    daily = np.where(np.arange(len(r)) < 500, 0.05, 0.01)
    expected = r - ((1 + daily) ** (1 / 252) - 1)
    pd.testing.assert_series_equal(m.excess_returns(r, sparse), expected, rtol=0, atol=1e-16)
    assert m.sortino(r, sparse) == pytest.approx(qs.stats.sortino(r, rf=sparse), abs=TOL)
    # quantstats applies a scalar rf only when it is > 0: a negative scalar is ignored (matched)
    assert m.sharpe(r, -0.02) == m.sharpe(r, 0.0)


@requires_qs
def test_edge_cases_match_quantstats():
    idx = pd.bdate_range("2024-01-01", periods=4)
    flat = pd.Series([0.0, 0.0, np.nan, 0.0], index=idx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert m.win_rate(flat) == qs.stats.win_rate(flat) == 0.0
    up = pd.Series([0.01, 0.02, 0.0, 0.01], index=idx)
    assert np.isnan(m.sortino(up))  # no losing day
    with np.errstate(divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert m.calmar(up) == qs.stats.calmar(up) == np.inf  # no drawdown
    with pytest.raises(ValueError, match="inf"):
        m.performance(pd.Series([0.01, np.inf], index=idx[:2]))
    with pytest.raises(ValueError, match="no observation"):
        m.cagr(pd.Series([np.nan, np.nan], index=idx[:2]))
    with pytest.raises(TypeError, match="DatetimeIndex"):
        m.performance(pd.Series([0.01, -0.02]))


def _flows(dates: list[str], amounts: list[float]) -> tuple[list[pd.Timestamp], list[float]]:
    return [pd.Timestamp(d) for d in dates], amounts


def _monthly_top_ups():
    dates = list(pd.date_range("2021-01-04", periods=36, freq="MS") + pd.Timedelta(days=3))
    return dates + [pd.Timestamp("2024-01-15")], [-10_000.0] * 36 + [412_345.67]


def _margin_top_up():
    # a 250k start, a 60k top-up on the VX margin call in the crash, equity marked at the end
    return _flows(["2019-01-02", "2020-03-16", "2021-12-31"], [-250_000.0, -60_000.0, 371_250.0])


def _withdrawal():
    # a 1m start, 150k taken out after a good year, a 50k deposit, the final equity
    return _flows(
        ["2018-07-02", "2019-07-01", "2020-02-03", "2022-06-30"], [-1e6, 150_000.0, -50_000.0, 1_080_000.0]
    )


def _losing_book():
    return _flows(["2008-01-02", "2008-06-30", "2008-12-31"], [-500_000.0, -100_000.0, 380_000.0])


def _fast_doubling():
    # unsorted dates: the rate does not depend on the order
    return _flows(["2020-06-30", "2020-01-02", "2020-03-02"], [260_000.0, -100_000.0, -20_000.0])


FLOW_SETS = {
    "monthly_top_ups": _monthly_top_ups,
    "margin_top_up": _margin_top_up,
    "withdrawal": _withdrawal,
    "losing_book": _losing_book,
    "fast_doubling": _fast_doubling,
}


def _exact_xirr(dates: list[pd.Timestamp], amounts: list[float], lo: float, hi: float) -> float:
    """The root of the Actual/365 NPV in [lo, hi] by bisection in 40-digit decimal arithmetic."""
    with localcontext() as ctx:
        ctx.prec = 40
        t = [Decimal((d - min(dates)).days) / Decimal(365) for d in dates]
        a = [Decimal(x) for x in amounts]

        def npv(r: Decimal) -> Decimal:
            log_growth = (1 + r).ln()
            return sum(ai * (-ti * log_growth).exp() for ai, ti in zip(a, t))

        lo_d, hi_d = Decimal(lo), Decimal(hi)
        f_lo = npv(lo_d)
        assert (f_lo < 0) != (npv(hi_d) < 0), "no root bracketed"
        for _ in range(110):  # 2e-6 / 2^110 is far below a double's resolution
            mid = (lo_d + hi_d) / 2
            f_mid = npv(mid)
            if (f_mid < 0) == (f_lo < 0):
                lo_d, f_lo = mid, f_mid
            else:
                hi_d = mid
        return float((lo_d + hi_d) / 2)


@requires_pyxirr
@pytest.mark.parametrize("name", list(FLOW_SETS))
def test_xirr_equals_pyxirr_and_the_exact_root(name):
    dates, amounts = FLOW_SETS[name]()
    ours = m.xirr(dates, amounts)
    # the exact root (40 digits) to double precision
    assert ours == pytest.approx(_exact_xirr(dates, amounts, ours - 1e-6, ours + 1e-6), abs=1e-14, rel=0)
    # pyxirr 0.10.8 stops its Newton iteration within ~1e-9 of the root (margin_top_up: 1.5e-10 off
    # the exact root), so the comparison holds to its own tolerance, not to 1e-10 on every flow set
    theirs = pyxirr.xirr(dates, amounts)
    assert ours == pytest.approx(theirs, abs=1e-9, rel=0)
    # a root by pyxirr's own NPV, at least as close to zero as pyxirr's answer
    scale = np.abs(amounts).sum()
    assert abs(pyxirr.xnpv(ours, dates, amounts)) <= abs(pyxirr.xnpv(theirs, dates, amounts)) + 1e-12 * scale
    # the opposite sign convention (the strategy's view) gives the same rate
    assert m.xirr(dates, [-a for a in amounts]) == pytest.approx(ours, abs=1e-13)
    assert (ours < 0) == (name == "losing_book")


@requires_pyxirr
def test_xirr_two_flows_closed_form():
    # -P on d0, +F on d1: (1 + r)^(days / 365) = F / P
    d0, d1 = pd.Timestamp("2019-03-15"), pd.Timestamp("2021-12-10")
    days = (d1 - d0).days
    exact = (123_456.78 / 100_000.0) ** (365 / days) - 1
    assert m.xirr([d0, d1], [-100_000.0, 123_456.78]) == pytest.approx(exact, abs=1e-13)
    assert pyxirr.xirr([d0, d1], [-100_000.0, 123_456.78]) == pytest.approx(exact, abs=1e-12)
    # dates as strings and datetime.date, a leap day counted as a day (Actual/365 Fixed)
    assert m.xirr(["2020-02-01", "2021-02-01"], [-1.0, 1.1]) == pytest.approx(1.1 ** (365 / 366) - 1, abs=1e-14)
    assert m.xirr([d0.date(), d1.date()], [-100_000.0, 123_456.78]) == pytest.approx(exact, abs=1e-13)


@requires_pyxirr
def test_xirr_several_roots_and_no_root():
    # 365-day years: -100 + 230 / (1 + r) - 132 / (1 + r)^2 = 0 at 1 + r = 1.1 and 1.2
    dates = ["2021-01-01", "2022-01-01", "2023-01-01"]
    assert -100 + 230 / 1.2 - 132 / 1.2**2 == pytest.approx(0, abs=1e-12)
    assert m.xirr(dates, [-100.0, 230.0, -132.0]) == pytest.approx(0.1, abs=1e-13)  # closest to 10 %
    assert pyxirr.xirr(dates, [-100.0, 230.0, -132.0]) == pytest.approx(0.1, abs=1e-13)
    # -100 + 230 v - 140 v^2 has no real root (230^2 < 4 * 100 * 140): NaN, pyxirr says None
    assert np.isnan(m.xirr(dates, [-100.0, 230.0, -140.0]))
    assert pyxirr.xirr(dates, [-100.0, 230.0, -140.0]) is None


@requires_pyxirr
def test_xirr_nan_without_a_sign_change():
    dates = ["2021-01-01", "2022-01-01", "2023-01-01"]
    for amounts in ([-100.0, -50.0, 0.0], [100.0, 20.0, 30.0], [0.0, 0.0, 0.0]):
        assert np.isnan(m.xirr(dates, amounts))
        with pytest.raises(pyxirr.InvalidPaymentsError):
            pyxirr.xirr(dates, amounts)
    with pytest.raises(ValueError, match="one amount per date"):
        m.xirr(dates, [-1.0, 2.0])


def test_hedge_cost_of_carry_by_hand():
    idx = pd.bdate_range("2022-01-03", periods=252)
    equity = pd.Series(1e6, index=idx)
    # one year of sessions at 1m: (5k costs + 12k roll + 8k decay) / 1 year / 1m = 2.5 %
    assert m.hedge_cost_of_carry(5_000.0, 12_000.0, 8_000.0, equity) == pytest.approx(0.025, abs=1e-15)
    # half a year of the same costs on equity averaging 1.5m: 25k / 0.5 / 1.5m
    half = pd.Series(np.linspace(1e6, 2e6, 126), index=idx[:126])
    assert m.hedge_cost_of_carry(5_000.0, 12_000.0, 8_000.0, half) == pytest.approx(25_000 / 0.5 / 1.5e6, rel=1e-14)
    # daily Series are summed; a backwardated roll (a gain) enters negative
    costs = pd.Series(20.0, index=idx)
    roll = pd.Series(-4_000.0, index=idx[[10, 100]])
    decay = pd.Series(30.0, index=idx)
    expected = (252 * 20.0 - 8_000.0 + 252 * 30.0) / 1e6
    assert m.hedge_cost_of_carry(costs, roll, decay, equity) == pytest.approx(expected, rel=1e-14)
    with pytest.raises(ValueError, match="outside the equity window"):
        m.hedge_cost_of_carry(pd.Series(1.0, index=[idx[0] - pd.Timedelta(days=3)]), 0.0, 0.0, equity)


def test_parametric_var_cvar_equal_scipy_stats_norm_bit_for_bit():
    """The parametric VaR / CVaR use scipy.special, not scipy.stats (import time): the same numbers,
    exactly, as scipy.stats.norm's ppf / pdf."""
    from scipy.stats import norm

    rng = np.random.default_rng(11)
    for level in (0.9, 0.95, 0.99):
        for scale in (0.001, 0.01, 0.05):
            r = pd.Series(rng.normal(0.0003, scale, 750))
            mu, sd, alpha = float(r.mean()), float(r.std(ddof=1)), 1.0 - level
            expected = (float(norm.ppf(alpha, mu, sd)), float(mu - sd * norm.pdf(norm.ppf(alpha)) / alpha))
            assert m.var_cvar(r, level, "parametric") == expected
