"""Point-in-time valuation, P/CF dispersion and rolling CAPM beta
(alvh_pipeline.core.fundamental_features)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from alvh_pipeline.core.fundamental_features import (
    EQUITY_RISK_PREMIUM,
    pcf_dispersion,
    rolling_capm_beta,
    valuation_panel,
)

DAYS = pd.bdate_range("2021-01-04", periods=10)


def _fund_rows(day, symbol, report_date, eps, cfps, dps):
    return {
        "date": day, "symbol": symbol, "fiscal_period_end": pd.Timestamp("2020-12-31"),
        "report_date": report_date, "eps_ttm": eps, "cfps_ttm": cfps, "dps_ttm": dps,
        "shares_outstanding": 1_000_000, "provenance": "synthetic",
    }


@pytest.fixture
def pit_inputs():
    """Symbol A: an old report (eps 2) until a new one (eps 4) is published on DAYS[5].
    Symbol B: no report at all until DAYS[3]."""
    rows = []
    for k, d in enumerate(DAYS):
        new = k >= 5
        rows.append(_fund_rows(d, "A", DAYS[5] if new else pd.Timestamp("2020-11-02"),
                               4.0 if new else 2.0, 8.0 if new else 5.0, 1.0 if new else 0.5))
        if k >= 3:
            rows.append(_fund_rows(d, "B", DAYS[3], -1.0, 2.0, 0.0))
    fund = pd.DataFrame(rows)
    closes = pd.DataFrame({"A": np.linspace(40, 49, 10), "B": np.full(10, 30.0)}, index=DAYS)
    return fund, closes


def test_valuation_point_in_time_and_formulas(pit_inputs):
    fund, closes = pit_inputs
    rf = pd.Series(0.02, index=DAYS)
    beta = pd.DataFrame({"A": 1.2, "B": 0.8}, index=DAYS)
    v = valuation_panel(fund, closes, rf=rf, beta=beta).set_index(["date", "symbol"])
    a = v.xs("A", level="symbol")
    # before the publication day the old report (eps 2) is used, from it on the new one
    np.testing.assert_allclose(a["eps_ttm"].to_numpy(), [2.0] * 5 + [4.0] * 5)
    assert (a["report_date"] <= a.index).all()
    np.testing.assert_allclose(a["pe"].to_numpy(), closes["A"].to_numpy() / np.r_[[2.0] * 5, [4.0] * 5])
    np.testing.assert_allclose(a["pcf"].to_numpy(), closes["A"].to_numpy() / np.r_[[5.0] * 5, [8.0] * 5])
    # day 0: P = 40, D0 = 0.5, r = 0.02 + 1.2 * 0.055 = 0.086
    r0 = a.iloc[0]
    assert r0["required_return"] == pytest.approx(0.086, abs=1e-15)
    assert r0["dividend_yield"] == pytest.approx(0.5 / 40)
    assert r0["ddm_implied_growth"] == pytest.approx((0.086 * 40 - 0.5) / 40.5, rel=1e-14)  # = 2.94 / 40.5
    assert r0["ddm_implied_growth"] == pytest.approx(0.07259259259259259, rel=1e-12)
    # Gordon identity P = D0 (1 + g) / (r - g) on every row with a dividend
    g, r, d0 = a["ddm_implied_growth"], a["required_return"], a["dps_ttm"]
    np.testing.assert_allclose(d0 * (1 + g) / (r - g), closes["A"].to_numpy(), rtol=1e-12)
    b = v.xs("B", level="symbol")
    assert b["eps_ttm"].iloc[:3].isna().all() and b["pcf"].iloc[:3].isna().all()  # nothing before report
    assert b["pe"].iloc[3:].isna().all()  # negative earnings: P/E not meaningful
    np.testing.assert_allclose(b["pcf"].iloc[3:].to_numpy(), 15.0)
    assert b["ddm_implied_growth"].isna().all()  # no dividend, no DDM
    assert b["required_return"].iloc[0] == pytest.approx(0.02 + 0.8 * EQUITY_RISK_PREMIUM)


def test_valuation_sparse_table_carries_latest_report(pit_inputs):
    fund, closes = pit_inputs
    sparse = fund[fund["date"].isin([DAYS[0], DAYS[5]]) & (fund["symbol"] == "A")]
    v = valuation_panel(sparse, closes[["A"]])
    np.testing.assert_allclose(v["eps_ttm"].to_numpy(), [2.0] * 5 + [4.0] * 5)
    assert v["required_return"].iloc[0] == pytest.approx(EQUITY_RISK_PREMIUM)  # rf 0, beta 1


def test_valuation_rejects_reports_from_the_future(pit_inputs):
    fund, closes = pit_inputs
    bad = fund.copy()
    bad.loc[0, "report_date"] = DAYS[4]  # row as of DAYS[0] claiming a report of DAYS[4]
    with pytest.raises(ValueError, match="report_date after"):
        valuation_panel(bad, closes)


def test_valuation_no_look_ahead(pit_inputs):
    fund, closes = pit_inputs
    t = DAYS[4]
    f2, c2 = fund.copy(), closes.copy()
    f2.loc[f2["date"] > t, ["eps_ttm", "cfps_ttm", "dps_ttm"]] *= 3.0
    c2.loc[c2.index > t] *= 1.5
    a = valuation_panel(fund, closes, rf=0.01)
    b = valuation_panel(f2, c2, rf=0.01)
    pd.testing.assert_frame_equal(a[a["date"] <= t], b[b["date"] <= t])
    assert not a[a["date"] > t]["pe"].equals(b[b["date"] > t]["pe"])


@pytest.fixture(scope="module")
def pcf_panel():
    rng = np.random.default_rng(5)
    T = 400
    idx = pd.bdate_range("2019-01-01", periods=T)
    logp = np.log(12.0) + np.cumsum(0.01 * rng.standard_normal((T, 4)), axis=0)
    return pd.DataFrame(np.exp(logp), index=idx, columns=["W", "X", "Y", "Z"])


def test_pcf_dispersion_values(pcf_panel):
    i, j = np.array([0, 2]), np.array([1, 3])
    res = pcf_dispersion(pcf_panel, i, j, window=252)
    t = 300
    d = np.log(pcf_panel["W"]) - np.log(pcf_panel["X"])
    win = d.iloc[t - 251 : t + 1].to_numpy()
    assert res.dispersion.iloc[t][("W", "X")] == pytest.approx(d.iloc[t], abs=1e-14)
    assert res.zscore.iloc[t][("W", "X")] == pytest.approx((win[-1] - win.mean()) / win.std(), rel=1e-9)
    assert res.zscore.iloc[:251].isna().all().all() and res.zscore.iloc[251:].notna().all().all()
    z, s = res.zscore.to_numpy(), res.direction.to_numpy()
    assert set(np.unique(s)) <= {-1, 0, 1}
    np.testing.assert_array_equal(s[251:], np.where(z[251:] >= 1, 1, np.where(z[251:] <= -1, -1, 0)))
    assert (s[:251] == 0).all()
    # hand example: P/CF 10 vs 5 -> ln 2 ; swapping the pair flips the sign
    two = pd.DataFrame({"a": [10.0, 10.0, 10.0], "b": [5.0, 5.0, 2.5]})
    r2 = pcf_dispersion(two, [0], [1], window=2)
    np.testing.assert_allclose(r2.dispersion.iloc[:, 0].to_numpy(), np.log([2.0, 2.0, 4.0]))
    # window {ln2, ln4}: mean 1.5 ln2, std (ddof 0) 0.5 ln2 -> z = +1 -> direction +1 (a rich vs b)
    assert r2.zscore.iloc[2, 0] == pytest.approx(1.0, abs=1e-12)
    assert r2.direction.iloc[2, 0] == 1
    assert pcf_dispersion(two, [1], [0], window=2).direction.iloc[2, 0] == -1


def test_pcf_dispersion_no_look_ahead(pcf_panel):
    t = 320
    changed = pcf_panel.copy()
    changed.iloc[t + 1 :] *= 2.0
    a = pcf_dispersion(pcf_panel, [0, 1], [2, 3])
    b = pcf_dispersion(changed, [0, 1], [2, 3])
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x.iloc[: t + 1], y.iloc[: t + 1])


@pytest.fixture(scope="module")
def returns():
    rng = np.random.default_rng(11)
    T = 300
    idx = pd.bdate_range("2018-01-01", periods=T)
    mkt = pd.Series(0.01 * rng.standard_normal(T), index=idx)
    betas = np.array([0.5, 1.0, 1.8])
    stocks = pd.DataFrame(mkt.to_numpy()[:, None] * betas + 0.01 * rng.standard_normal((T, 3)),
                          index=idx, columns=["A", "B", "C"])
    return stocks, mkt


def test_rolling_beta_matches_statsmodels(returns):
    stocks, mkt = returns
    beta = rolling_capm_beta(stocks, mkt, window=60)
    assert beta.iloc[:59].isna().all().all() and beta.iloc[59:].notna().all().all()
    for end in (59, 150, 299):
        for col in stocks.columns:
            sl = slice(end - 59, end + 1)
            fit = sm.OLS(stocks[col].iloc[sl].to_numpy(), sm.add_constant(mkt.iloc[sl].to_numpy())).fit()
            assert beta[col].iloc[end] == pytest.approx(fit.params[1], abs=1e-10)
    # with a gap in one stock: pairwise-complete observations, min_periods respected
    gappy = stocks.copy()
    gappy.iloc[140, 0] = np.nan
    b2 = rolling_capm_beta(gappy, mkt, window=60, min_periods=55)
    sl = slice(150 - 59, 151)
    y, x = gappy["A"].iloc[sl], mkt.iloc[sl]
    ok = y.notna()
    fit = sm.OLS(y[ok].to_numpy(), sm.add_constant(x[ok].to_numpy())).fit()
    assert b2["A"].iloc[150] == pytest.approx(fit.params[1], abs=1e-10)
    assert np.isnan(rolling_capm_beta(gappy, mkt, window=60)["A"].iloc[150])  # 59 < 60 obs
    # a constant market return has no beta
    flat = rolling_capm_beta(stocks, pd.Series(0.001, index=stocks.index), window=60)
    assert flat.isna().all().all()


def test_rolling_beta_no_look_ahead(returns):
    stocks, mkt = returns
    t = 200
    s2, m2 = stocks.copy(), mkt.copy()
    s2.iloc[t + 1 :] *= -3.0
    m2.iloc[t + 1 :] += 0.05
    a, b = rolling_capm_beta(stocks, mkt), rolling_capm_beta(s2, m2)
    pd.testing.assert_frame_equal(a.iloc[: t + 1], b.iloc[: t + 1], check_exact=True)
