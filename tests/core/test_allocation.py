import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core.allocation import (
    ALLOCATED,
    erc_weights,
    mode_weights,
    risk_contributions,
    sharpe_weights,
    weights_from_history,
)


def _risk_contributions(w: np.ndarray, cov: np.ndarray) -> np.ndarray:
    return w * (cov @ w) / (w @ cov @ w)


def _erc_ccd(cov: np.ndarray, iters: int = 5000) -> np.ndarray:
    """Independent ERC: cyclical coordinate descent (Griveau-Billion, Richard & Roncalli 2013) on
    y_i (Σy)_i = 1/n: each y_i is the positive root of Σ_ii y² + (Σ_{j≠i} Σ_ij y_j) y − 1/n = 0."""
    n = len(cov)
    y = np.ones(n) / np.sqrt(np.diag(cov))
    for _ in range(iters):
        for i in range(n):
            b = cov[i] @ y - cov[i, i] * y[i]
            y[i] = (-b + np.sqrt(b * b + 4 * cov[i, i] / n)) / (2 * cov[i, i])
    return y / y.sum()


@pytest.mark.parametrize("rho", [-0.7, 0.0, 0.4, 0.95])
def test_erc_two_assets_is_inverse_vol_for_any_correlation(rho):
    s1, s2 = 0.25, 0.10
    cov = np.array([[s1 * s1, rho * s1 * s2], [rho * s1 * s2, s2 * s2]])
    w = erc_weights(cov)
    # closed form: w1 σ1 (w1 σ1 + ρ w2 σ2) = w2 σ2 (w2 σ2 + ρ w1 σ1) <=> w1 σ1 = w2 σ2
    assert w[0] / w[1] == pytest.approx(s2 / s1, rel=1e-10)
    np.testing.assert_allclose(w, [s2 / (s1 + s2), s1 / (s1 + s2)], rtol=1e-10)


def test_erc_diagonal_is_inverse_vol():
    vols = np.array([0.01, 0.02, 0.05, 0.2, 0.003])
    w = erc_weights(np.diag(vols**2))
    np.testing.assert_allclose(w, (1 / vols) / (1 / vols).sum(), rtol=1e-10)


def test_erc_correlated_three_assets_equal_risk_contributions():
    cov = np.array([[0.04, 0.018, -0.003], [0.018, 0.09, 0.006], [-0.003, 0.006, 0.0025]])
    w = erc_weights(cov)
    assert (w > 0).all() and w.sum() == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(_risk_contributions(w, cov), 1 / 3, atol=1e-8)
    np.testing.assert_allclose(w, _erc_ccd(cov), atol=1e-9)
    # not inverse-vol: the correlations matter
    iv = 1 / np.sqrt(np.diag(cov))
    assert np.abs(w - iv / iv.sum()).max() > 0.01


def test_erc_random_covariances_match_independent_solver():
    rng = np.random.default_rng(7)
    for n in (3, 6):
        a = rng.normal(size=(n, 250)) * rng.uniform(0.001, 0.03, size=(n, 1))
        cov = np.cov(a + 0.5 * a[0])  # a common factor: positive and negative-ish correlations
        w = erc_weights(cov)
        np.testing.assert_allclose(_risk_contributions(w, cov), 1 / n, atol=1e-8)
        np.testing.assert_allclose(w, _erc_ccd(cov), atol=1e-8)


@pytest.mark.parametrize("cov", [
    np.array([[np.nan, 0.0], [0.0, 0.01]]),
    np.array([[0.01, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.04]]),  # a zero-variance asset
    np.array([[0.01, 0.02], [0.02, 0.04]]),                          # perfectly correlated: singular
    np.array([[0.01, 0.05], [0.05, 0.04]]),                          # not positive semi-definite
    np.zeros((3, 3)),
])
def test_erc_degenerate_covariance_gives_equal_weights(cov):
    n = len(cov)
    np.testing.assert_allclose(erc_weights(cov), np.full(n, 1 / n))


def test_erc_single_asset():
    np.testing.assert_allclose(erc_weights(np.array([[0.04]])), [1.0])


def test_sharpe_weights_proportional_and_floored():
    mean = np.array([0.02, 0.01, -0.01])
    std = np.array([0.01, 0.01, 0.02])  # Sharpe 2, 1, -0.5 -> scores 2, 1, 0
    np.testing.assert_allclose(sharpe_weights(mean, std, {}), [2 / 3, 1 / 3, 0.0])
    np.testing.assert_allclose(sharpe_weights(mean, std, {2: 0.05}), [0.95 * 2 / 3, 0.95 / 3, 0.05])
    # a floor that does not bind changes nothing
    np.testing.assert_allclose(sharpe_weights(mean, std, {1: 0.2}), [2 / 3, 1 / 3, 0.0])


def test_sharpe_weights_cascading_floors():
    # scores 10, 0.1, 0: sleeve 1 (0.0099 before floors) and 2 pinned, sleeve 0 takes the rest
    w = sharpe_weights(np.array([10.0, 0.1, -1.0]), np.ones(3), {1: 0.2, 2: 0.05})
    np.testing.assert_allclose(w, [0.75, 0.2, 0.05])


def test_sharpe_weights_all_non_positive_is_equal_then_floored():
    np.testing.assert_allclose(sharpe_weights(np.array([-1.0, 0.0, -2.0]), np.ones(3), {}), [1 / 3] * 3)
    np.testing.assert_allclose(sharpe_weights(np.array([-1.0, 0.0, -2.0]), np.ones(3), {2: 0.5}), [0.25, 0.25, 0.5])


def test_sharpe_weights_bad_std_scores_zero_and_bad_floors_raise():
    w = sharpe_weights(np.array([0.01, 0.01, 0.01]), np.array([0.0, np.nan, 0.01]), {2: 0.05})
    np.testing.assert_allclose(w, [0.0, 0.0, 1.0])
    with pytest.raises(ValueError):
        sharpe_weights(np.ones(3), np.ones(3), {0: 0.6, 1: 0.6})


def _returns(n: int = 120, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2020-01-01", periods=n)
    f = rng.normal(0, 0.01, n)
    return pd.DataFrame({
        "statarb": 0.002 + 0.004 * rng.normal(size=n),
        "condor": 0.004 + 0.8 * f + 0.003 * rng.normal(size=n),
        "hedge": -0.006 - 1.5 * f + 0.01 * rng.normal(size=n),
    }, index=idx)


@pytest.mark.parametrize("mode", ["steward", "promoter"])
def test_mode_weights_use_only_rows_strictly_before_day(mode):
    r = _returns()
    day = r.index[80]
    w = mode_weights(r, day, mode)
    poked = r.copy()
    poked.loc[poked.index >= day] = [[5.0, -3.0, 9.0]] * int((poked.index >= day).sum())
    assert mode_weights(poked, day, mode) == w
    # the row just before `day` is read: the test can see a leak
    poked.iloc[79] = [-5.0, -3.0, 9.0]
    assert mode_weights(poked, day, mode) != w
    assert sum(w.values()) == pytest.approx(1.0, abs=1e-12)
    assert tuple(w) == ALLOCATED


def test_mode_weights_steward_is_erc_of_stat_arb_and_the_hedge():
    """DESIGN §5: the steward balances the stat-arb edge against the hedge (the condor program is
    shared and sized apart): the two sleeves' risk contributions are equal."""
    r = _returns()
    day = r.index[100]
    w = mode_weights(r, day, "steward", window=63)
    hist = r.iloc[100 - 63:100][list(ALLOCATED)].to_numpy()
    cov = np.cov(hist.T)
    wv = np.array([w[s] for s in ALLOCATED])
    np.testing.assert_allclose(risk_contributions(wv, cov), 0.5, atol=1e-8)
    np.testing.assert_allclose(_risk_contributions(wv, cov), 0.5, atol=1e-8)
    np.testing.assert_allclose(wv, _erc_ccd(cov), atol=1e-8)
    assert weights_from_history(hist, "steward")[1] == "erc"


def test_mode_weights_promoter_is_stat_arbs_sharpe_share():
    r = _returns()
    day = r.index[100]
    hist = r.iloc[100 - 63:100][list(ALLOCATED)]
    sr = (hist.mean() / hist.std()).clip(lower=0)
    assert sr["hedge"] == 0.0 and sr["statarb"] > 0  # the hedge bleeds
    assert mode_weights(r, day, "promoter") == pytest.approx({"statarb": 1.0, "hedge": 0.0})
    r2 = r.copy()
    r2["hedge"] = 0.001 + 0.004 * np.random.default_rng(7).normal(size=len(r2))
    h2 = r2.iloc[100 - 63:100][list(ALLOCATED)]
    sr2 = (h2.mean() / h2.std()).clip(lower=0)
    w = mode_weights(r2, day, "promoter")
    assert w["statarb"] == pytest.approx(sr2["statarb"] / sr2.sum(), rel=1e-10)


def test_the_promoter_stays_all_in_stat_arb_when_nothing_has_a_positive_sharpe():
    r = _returns()
    r["hedge"] = -0.02 + 0.002 * np.random.default_rng(1).normal(size=len(r))
    r["statarb"] = -0.001 + 0.001 * np.random.default_rng(3).normal(size=len(r))
    assert mode_weights(r, r.index[100], "promoter") == pytest.approx({"statarb": 1.0, "hedge": 0.0})


def test_mode_weights_priors_before_min_obs():
    r = _returns()
    before = mode_weights(r, r.index[19], "steward", min_obs=20)  # 19 rows before the day
    assert before == pytest.approx({"statarb": 0.5, "hedge": 0.5})
    assert mode_weights(r, r.index[19], "promoter", min_obs=20) == pytest.approx({"statarb": 1.0, "hedge": 0.0})
    assert mode_weights(r, r.index[20], "steward", min_obs=20) != pytest.approx(before)  # 20 rows: estimated
    # rows with a missing sleeve do not count
    gappy = r.copy()
    gappy.iloc[5, 2] = np.nan
    assert mode_weights(gappy, r.index[20], "steward", min_obs=20) == pytest.approx(before)


def test_mode_weights_unknown_mode_raises():
    with pytest.raises(ValueError):
        mode_weights(_returns(), pd.Timestamp("2020-05-01"), "gambler")
