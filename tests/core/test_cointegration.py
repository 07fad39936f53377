"""Vectorised Engle-Granger screen vs. statsmodels (alvh_pipeline.core.cointegration)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.tsa.adfvalues import mackinnonp
from statsmodels.tsa.stattools import adfuller, coint

from alvh_pipeline.core.cointegration import (
    PairScreen,
    benjamini_hochberg,
    engle_granger_all_pairs,
    engle_granger_both_directions,
    engle_granger_two_way,
    half_life,
    mackinnon_pvalue,
    pair_spread,
    pick_direction,
)

T = 252
RHO = 0.87  # planted spread AR(1): half-life ln 2 / -ln 0.87 = 5.0 days
TRUE_HL = np.log(2.0) / -np.log(RHO)


def _random_walks(rng, T, N, vol=0.02):
    return rng.uniform(2.0, 6.0, N) + np.cumsum(vol * rng.standard_normal((T, N)), axis=0)


def _ar1(rng, T, rho, sd):
    u = np.zeros(T)
    eps = sd * rng.standard_normal(T)
    for t in range(1, T):
        u[t] = rho * u[t - 1] + eps[t]
    return u


@pytest.fixture(scope="module")
def rw_panel():
    return _random_walks(np.random.default_rng(20240101), T, 40)


@pytest.fixture(scope="module")
def planted():
    """Random walks plus 6 planted pairs y = a + b x + AR(1) noise; returns (panel, pairs, b)."""
    rng = np.random.default_rng(7)
    P = _random_walks(rng, T, 36)
    planted_pairs, betas = [], []
    for y, x in [(0, 1), (2, 10), (5, 30), (12, 13), (20, 35), (33, 8)]:
        b = rng.uniform(0.6, 1.6)
        P[:, y] = rng.uniform(-1, 1) + b * P[:, x] + _ar1(rng, T, RHO, 0.01)
        planted_pairs.append((y, x))
        betas.append(b)
    return P, planted_pairs, np.array(betas)


def _pair_index(N, i, j):
    """Position of pair (i < j) in np.triu_indices(N, 1) order."""
    return i * N - i * (i + 1) // 2 + (j - i - 1)


def _coint(P, i, j, k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = coint(P[:, i], P[:, j], trend="c", maxlag=k, autolag=None)
    return r[0], r[1]


@pytest.mark.parametrize("k", [0, 1, 2])
@pytest.mark.parametrize("panel", ["rw", "planted"])
def test_adf_stat_and_pvalue_match_statsmodels(panel, k, rw_panel, planted):
    P = rw_panel if panel == "rw" else planted[0]
    N = P.shape[1]
    s = engle_granger_all_pairs(P, lags=k)
    assert len(s) == N * (N - 1) // 2
    ii, jj = np.triu_indices(N, 1)
    np.testing.assert_array_equal(s.i, ii)
    np.testing.assert_array_equal(s.j, jj)
    rng = np.random.default_rng(100 + k)
    idx = rng.choice(len(s), 200, replace=False)
    if panel == "planted":
        extra = [_pair_index(N, min(y, x), max(y, x)) for y, x in planted[1]]
        idx = np.unique(np.r_[idx, extra])
    ref = np.array([_coint(P, s.i[q], s.j[q], k) for q in idx])
    np.testing.assert_allclose(s.adf_stat[idx], ref[:, 0], rtol=0, atol=1e-8)
    np.testing.assert_allclose(s.pvalue[idx], ref[:, 1], rtol=0, atol=1e-10)
    # the explicit-pairs path gives the same numbers, also for reversed (y=j, x=i) pairs
    sp = engle_granger_all_pairs(P, lags=k, pairs=(s.i[idx], s.j[idx]))
    np.testing.assert_allclose(sp.adf_stat, s.adf_stat[idx], rtol=0, atol=1e-10)
    np.testing.assert_allclose(sp.beta, s.beta[idx], rtol=1e-12)
    rev = engle_granger_all_pairs(P, lags=k, pairs=(s.j[idx[:20]], s.i[idx[:20]]))
    ref_rev = np.array([_coint(P, jj_, ii_, k) for ii_, jj_ in zip(s.i[idx[:20]], s.j[idx[:20]])])
    np.testing.assert_allclose(rev.adf_stat, ref_rev[:, 0], rtol=0, atol=1e-8)


@pytest.mark.parametrize("k", [0, 1, 2])
@pytest.mark.parametrize("panel", ["rw", "planted"])
def test_both_directions_match_statsmodels(panel, k, rw_panel, planted):
    P = rw_panel if panel == "rw" else planted[0]
    N = P.shape[1]
    fwd, rev = engle_granger_both_directions(P, lags=k)
    one = engle_granger_all_pairs(P, lags=k)
    for name in ("beta", "alpha", "adf_stat", "pvalue", "phi", "zscore", "spread_std"):
        np.testing.assert_array_equal(getattr(fwd, name), getattr(one, name))  # forward unchanged
    np.testing.assert_array_equal(rev.i, fwd.j)
    np.testing.assert_array_equal(rev.j, fwd.i)
    idx = np.random.default_rng(200 + k).choice(len(fwd), 120, replace=False)
    if panel == "planted":
        idx = np.unique(np.r_[idx, [_pair_index(N, min(y, x), max(y, x)) for y, x in planted[1]]])
    ref_f = np.array([_coint(P, fwd.i[q], fwd.j[q], k) for q in idx])
    ref_r = np.array([_coint(P, fwd.j[q], fwd.i[q], k) for q in idx])  # y = name j on x = name i
    np.testing.assert_allclose(fwd.adf_stat[idx], ref_f[:, 0], rtol=0, atol=1e-8)
    np.testing.assert_allclose(rev.adf_stat[idx], ref_r[:, 0], rtol=0, atol=1e-8)
    np.testing.assert_allclose(rev.pvalue[idx], ref_r[:, 1], rtol=0, atol=1e-10)
    # the direction matters (the reason to test both): differences of whole units occur
    assert np.max(np.abs(fwd.adf_stat - rev.adf_stat)) > 1.0
    for q in idx[:10]:
        b, a = np.polyfit(P[:, fwd.i[q]], P[:, fwd.j[q]], 1)  # OLS of name j on name i
        assert rev.beta[q] == pytest.approx(b, rel=1e-10, abs=1e-12)
        assert rev.alpha[q] == pytest.approx(a, rel=1e-10, abs=1e-10)
    # explicit pairs path: same numbers in both directions
    sf, sr = engle_granger_both_directions(P, lags=k, pairs=(fwd.i[idx], fwd.j[idx]))
    np.testing.assert_array_equal(sr.i, fwd.j[idx])
    for name in ("beta", "alpha", "adf_stat", "phi", "zscore", "spread_std"):
        np.testing.assert_allclose(getattr(sf, name), getattr(fwd, name)[idx], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(getattr(sr, name), getattr(rev, name)[idx], rtol=1e-10, atol=1e-10)


def test_pick_direction_rule_and_reexpressed_hedge(planted):
    P = planted[0]
    fwd, rev = engle_granger_both_directions(P, lags=1)
    s = pick_direction(fwd, rev)
    assert len(s) == len(fwd) and s.y_on_x.dtype == bool
    np.testing.assert_array_equal(s.i, fwd.i)
    # more negative statistic kept; p* = min(1, 2 min(p_ij, p_ji)); both directions get kept
    np.testing.assert_array_equal(s.adf_stat, np.minimum(fwd.adf_stat, rev.adf_stat))
    np.testing.assert_array_equal(s.y_on_x, ~(rev.adf_stat < fwd.adf_stat))
    np.testing.assert_allclose(s.pvalue, np.minimum(1.0, 2.0 * np.minimum(fwd.pvalue, rev.pvalue)), rtol=1e-15)
    assert 0.3 < s.y_on_x.mean() < 0.7
    two_way = engle_granger_two_way(P, lags=1, pairs=(fwd.i[:50], fwd.j[:50]))
    np.testing.assert_allclose(two_way.adf_stat, s.adf_stat[:50], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(two_way.y_on_x, s.y_on_x[:50])
    # where the reverse regression (name j on name i) is kept, it is re-expressed with name i as y:
    # the spread is the reverse residual / -b, so hedge, z-score, ADF statistic and phi follow
    rev_rows = np.flatnonzero(~s.y_on_x)[:15]
    assert rev_rows.size == 15
    for q in rev_rows:
        b, a = np.polyfit(P[:, s.i[q]], P[:, s.j[q]], 1)  # independent OLS of name j on name i
        assert s.beta[q] == pytest.approx(1 / b, rel=1e-10)
        assert s.alpha[q] == pytest.approx(-a / b, rel=1e-10, abs=1e-10)
        e = pair_spread(P, s.i[q], s.j[q], s.beta[q], s.alpha[q])
        np.testing.assert_allclose(e, -(P[:, s.j[q]] - a - b * P[:, s.i[q]]) / b, rtol=0, atol=1e-10)
        assert s.spread_std[q] == pytest.approx(e.std(), rel=1e-9)
        assert s.zscore[q] == pytest.approx((e[-1] - e.mean()) / e.std(), rel=1e-9)
        assert s.adf_stat[q] == pytest.approx(adfuller(e, maxlag=1, autolag=None, regression="n")[0], abs=1e-8)
        stat_r, p_r = _coint(P, s.j[q], s.i[q], 1)
        assert s.adf_stat[q] == pytest.approx(stat_r, abs=1e-8)
        assert s.pvalue[q] == pytest.approx(min(1.0, 2 * p_r), abs=1e-10)
    assert s.take(~s.y_on_x).y_on_x.sum() == 0 and "y_on_x" in s.to_frame().columns
    with pytest.raises(ValueError):
        pick_direction(fwd, fwd)


def test_two_way_pvalue_is_valid_under_the_null():
    # independent random walks: p* = min(1, 2 p_min) rejects at most ~nominally (union bound),
    # while the uncorrected min over directions would be anti-conservative
    hits, hits_min = [], []
    for rep in range(30):
        Q = _random_walks(np.random.default_rng(1000 + rep), T, 16)
        fwd, rev = engle_granger_both_directions(Q, lags=1)
        hits.append(pick_direction(fwd, rev).pvalue < 0.05)
        hits_min.append(np.minimum(fwd.pvalue, rev.pvalue) < 0.05)
    size, size_min = np.mean(hits), np.mean(hits_min)
    assert 0.02 < size <= 0.065, size
    assert size_min > 1.3 * size, (size, size_min)


def test_beta_alpha_match_ols(planted):
    P = planted[0]
    s = engle_granger_all_pairs(P, lags=1)
    for q in np.random.default_rng(3).choice(len(s), 50, replace=False):
        b, a = np.polyfit(P[:, s.j[q]], P[:, s.i[q]], 1)
        assert s.beta[q] == pytest.approx(b, rel=1e-10, abs=1e-12)
        assert s.alpha[q] == pytest.approx(a, rel=1e-10, abs=1e-10)


def test_planted_pairs_detected_with_half_life(planted):
    P, pairs, betas = planted
    N = P.shape[1]
    s = engle_granger_all_pairs(P, lags=1)
    idx = np.array([_pair_index(N, min(y, x), max(y, x)) for y, x in pairs])
    assert (s.pvalue[idx] < 0.05).all()
    # y was planted on x; where y < x the screen regresses y on x directly
    direct = np.array([y < x for y, x in pairs])
    np.testing.assert_allclose(s.beta[idx][direct], betas[direct], rtol=0.05)
    hl = s.half_life[idx]
    assert np.isfinite(hl).all()
    assert TRUE_HL / 2 < np.median(hl) < TRUE_HL * 2
    # whatever BH selects is mostly planted
    sel = benjamini_hochberg(s.pvalue, 0.05)
    assert sel.sum() - sel[idx].sum() <= max(1, 0.25 * sel.sum())


def test_bh_selects_strongly_planted_pairs():
    rng = np.random.default_rng(99)
    P = _random_walks(rng, T, 30)
    planted = [(0, 5), (7, 21), (11, 12), (25, 29)]
    for y, x in planted:
        P[:, y] = 0.2 + 0.9 * P[:, x] + _ar1(rng, T, 0.6, 0.01)
    s = engle_granger_all_pairs(P, lags=1)
    idx = [_pair_index(30, y, x) for y, x in planted]
    sel = benjamini_hochberg(s.pvalue, 0.05)
    assert sel[idx].all()
    assert sel.sum() - len(idx) <= 1
    np.testing.assert_allclose(s.half_life[idx], np.log(2) / -np.log(0.6), rtol=0.6)


def test_pure_noise_panel_few_discoveries(rw_panel):
    s = engle_granger_all_pairs(rw_panel, lags=1)
    m = len(s)
    assert 0.01 < np.mean(s.pvalue < 0.05) < 0.12  # test roughly at nominal size
    assert benjamini_hochberg(s.pvalue, 0.05).sum() <= 0.01 * m


def test_bh_matches_statsmodels():
    rng = np.random.default_rng(11)
    for n, frac in [(1, 1.0), (10, 0.3), (500, 0.1), (5000, 0.02)]:
        p = rng.uniform(size=n)
        k = int(frac * n)
        p[:k] = rng.uniform(0, 1e-3, k)
        p[rng.choice(n, n // 10, replace=False)] = p[0]  # ties
        for alpha in (0.01, 0.05, 0.2):
            np.testing.assert_array_equal(
                benjamini_hochberg(p, alpha), multipletests(p, alpha, method="fdr_bh")[0]
            )
    p = np.array([0.001, np.nan, 0.02, 0.04, 0.5, np.nan])
    with np.errstate(invalid="ignore"):
        ref = multipletests(p, 0.1, method="fdr_bh")[0]
    np.testing.assert_array_equal(benjamini_hochberg(p, 0.1), ref)
    assert benjamini_hochberg(np.array([]), 0.05).shape == (0,)


def test_zscore_and_spread_by_hand(planted):
    P = planted[0]
    s = engle_granger_all_pairs(P, lags=1)
    s1 = engle_granger_all_pairs(P, lags=1, ddof=1)
    for q in [0, 17, 301, len(s) - 1]:
        e = pair_spread(P, s.i[q], s.j[q], s.beta[q], s.alpha[q])
        assert e.shape == (T,)
        assert abs(e.mean()) < 1e-12
        assert s.zscore[q] == pytest.approx((e[-1] - e.mean()) / e.std(), rel=1e-9)
        assert s.spread_std[q] == pytest.approx(e.std(), rel=1e-9)
        assert s1.zscore[q] == pytest.approx((e[-1] - e.mean()) / e.std(ddof=1), rel=1e-9)
    sel = np.array([3, 5, 8])
    E = pair_spread(P, s.i[sel], s.j[sel], s.beta[sel], s.alpha[sel])
    assert E.shape == (T, 3)
    np.testing.assert_allclose(E[:, 1], pair_spread(P, s.i[5], s.j[5], s.beta[5], s.alpha[5]))


def test_phi_is_adf_coefficient_and_half_life(planted):
    P = planted[0]
    s = engle_granger_all_pairs(P, lags=1)
    q = 123
    e = pair_spread(P, s.i[q], s.j[q], s.beta[q], s.alpha[q])
    d = np.diff(e)
    X = np.column_stack([e[1:-1], d[:-1]])  # e_{t-1}, d_{t-1} for t = 2..T-1
    coef = np.linalg.lstsq(X, d[1:], rcond=None)[0]
    assert s.phi[q] == pytest.approx(coef[0], rel=1e-9)
    assert s.half_life[q] == pytest.approx(-np.log(2) / np.log(1 + coef[0]), rel=1e-9)
    hl = half_life(np.array([-0.1, 0.0, 0.05, -1.0, -1.5, np.nan]))
    assert hl[0] == pytest.approx(np.log(2) / -np.log(0.9))
    assert np.isinf(hl[1]) and np.isinf(hl[2])
    assert np.isnan(hl[3:]).all()


def test_mackinnon_pvalue_matches_scalar():
    grid = np.r_[np.linspace(-25, 4, 301), -3.13, -2.62, 0.92, -18.86, -np.inf, np.inf, np.nan]
    ours = mackinnon_pvalue(grid, "c", 2)
    for g, o in zip(grid, ours):
        with np.errstate(invalid="ignore"):
            ref = mackinnonp(g, regression="c", N=2)
        if np.isnan(ref):
            assert np.isnan(o)
        else:
            assert o == pytest.approx(ref, abs=1e-15)


def test_collinear_pair_is_minus_inf_like_statsmodels():
    rng = np.random.default_rng(5)
    P = _random_walks(rng, T, 4)
    P[:, 0] = 0.5 + 1.3 * P[:, 2] + 1e-9 * rng.standard_normal(T)
    s = engle_granger_all_pairs(P, lags=1)
    q = _pair_index(4, 0, 2)
    stat, p = _coint(P, 0, 2, 1)
    assert stat == -np.inf and s.adf_stat[q] == -np.inf
    assert s.pvalue[q] == p == 0.0


def test_take_and_frame(planted):
    s = engle_granger_all_pairs(planted[0][:, :6], lags=1)
    sub = s.take(s.pvalue < 0.5)
    assert isinstance(sub, PairScreen) and sub.lags == 1 and len(sub) == (s.pvalue < 0.5).sum()
    df = s.to_frame(names=[f"N{k}" for k in range(6)])
    assert len(df) == 15 and df.loc[0, "y"] == "N0" and df.loc[0, "x"] == "N1"


def test_input_validation():
    P = _random_walks(np.random.default_rng(0), 20, 3)
    with pytest.raises(ValueError):
        engle_granger_all_pairs(P, lags=10)  # > T//2 - 1, as adfuller
    bad = P.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError):
        engle_granger_all_pairs(bad)
    with pytest.raises(ValueError):
        engle_granger_all_pairs(P[:, :1])
