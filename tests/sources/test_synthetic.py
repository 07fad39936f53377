"""Realism of the `synthetic` source (alvh_pipeline.sources.synthetic), in numbers, on the
default SimConfig (100 names, seed 7): term structure, convergence, parity, implied vols,
liquidity in stress, planted cointegration, determinism and point-in-time fundamentals."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.stattools import coint

from alvh_pipeline.core import calendar as cal
from alvh_pipeline.core import chain_model
from alvh_pipeline.core import market_sim as ms
from alvh_pipeline.core.pricing import implied_vol
from alvh_pipeline.schemas import RAW_TABLES
from alvh_pipeline.sources import synthetic as syn

# Partitions start 1999-01-04; stay clear of the calendar's far end (it stops ~1 year ahead).
SPAN = ("1999-01-04", "2026-10-30")
N_SAMPLE = 150


@pytest.fixture(scope="module")
def state() -> ms.MarketState:
    return ms.market_state(ms.SimConfig())


@pytest.fixture(scope="module")
def regime_days() -> dict[str, pd.DatetimeIndex]:
    reg = syn.ground_truth()["regimes"].loc[SPAN[0] : SPAN[1]]
    rng = np.random.default_rng(2024)
    out = {}
    for name in ("calm", "crisis"):
        days = reg.index[reg == name]
        pick = rng.choice(len(days), min(N_SAMPLE, len(days)), replace=False)
        out[name] = days[np.sort(pick)]
    return out


@pytest.fixture(scope="module")
def futures_by_regime(regime_days) -> pd.DataFrame:
    dates = regime_days["calm"].append(regime_days["crisis"])
    f = syn.generate("vix_futures", dates)
    f["regime"] = np.where(pd.DatetimeIndex(f["date"]).isin(regime_days["calm"]), "calm", "crisis")
    return f


def _tau_years(frame: pd.DataFrame) -> np.ndarray:
    return (pd.DatetimeIndex(frame["expiry"]) - pd.DatetimeIndex(frame["date"])).days.to_numpy() / 365.0


# ---- VIX futures term structure ------------------------------------------------------------

def test_regime_sample_sizes(regime_days):
    assert len(regime_days["calm"]) == 150
    assert len(regime_days["crisis"]) == 150  # of 216 crisis days in 1999-2026


def test_contango_when_calm_backwardation_in_crisis(futures_by_regime):
    f = futures_by_regime
    assert (f.groupby("date").size() == 8).all()
    curve = f.pivot(index="date", columns="month_index", values="settle")
    regime = f.groupby("date")["regime"].first()
    m1, m2 = curve[1], curve[2]
    contango = (m2 > m1)[regime == "calm"].mean()
    backwardation = (m1 > m2)[regime == "crisis"].mean()
    assert contango > 0.80, contango  # observed 0.99
    assert backwardation > 0.60, backwardation  # observed 0.94
    # the calm curve slopes up all the way out: M8 above M1 on almost every calm day
    assert (curve[8] > curve[1])[regime == "calm"].mean() > 0.95


def test_futures_converge_to_vix_at_expiry():
    exp = cal.vix_expiry(np.repeat([2021, 2022], 12), np.tile(np.arange(1, 13), 2))
    eve = cal.previous_session(exp, inclusive=False)
    fut = syn.generate("vix_futures", eve)
    idx = syn.generate("index_levels", eve)
    vix = idx[idx["index"] == "VIX"].set_index("date")["close"]
    m1 = fut[fut["month_index"] == 1].set_index("date")
    m4 = fut[fut["month_index"] == 4].set_index("date")["settle"]
    assert (pd.DatetimeIndex(m1["expiry"]) == exp).all()  # the front expires next session
    gap1 = (m1["settle"] - vix).abs()
    gap4 = (m4 - vix).abs()
    assert len(gap1) == 24
    assert gap1.max() < 0.5, gap1.max()  # observed max 0.12 (0.05 tick + 1-day residual)
    assert gap1.mean() < 0.1, gap1.mean()
    assert gap1.mean() < 0.1 * gap4.mean(), (gap1.mean(), gap4.mean())  # M4 observed ~1.9 pts away


def test_futures_on_tick_and_quotes_around_settle(futures_by_regime):
    f = futures_by_regime
    for col in ("settle", "bid", "ask"):
        np.testing.assert_allclose(f[col] / 0.05, np.round(f[col] / 0.05), atol=1e-6)
    assert ((f["bid"] < f["settle"]) & (f["settle"] < f["ask"])).all()
    assert (f["bid_size"] >= 1).all() and (f["ask_size"] >= 1).all()


# ---- liquidity in stress ---------------------------------------------------------------------

def test_vix_futures_spreads_wider_and_depth_thinner_in_crisis(futures_by_regime):
    f = futures_by_regime.assign(
        spread=lambda x: x["ask"] - x["bid"],
        rel=lambda x: (x["ask"] - x["bid"]) / x["settle"],
        size=lambda x: (x["bid_size"] + x["ask_size"]) / 2,
    )
    g = f.groupby("regime")[["rel", "size", "spread"]].mean()
    assert g.loc["crisis", "rel"] > 1.5 * g.loc["calm", "rel"], g  # observed 0.014 vs 0.008
    assert g.loc["crisis", "size"] < 0.5 * g.loc["calm", "size"], g  # observed 48 vs 142
    # and per month: every month is wider / thinner in crisis, and wider / thinner further out
    by_m = f.groupby(["regime", "month_index"])[["spread", "size"]].mean()
    for m in range(1, 9):
        assert by_m.loc[("crisis", m), "spread"] > by_m.loc[("calm", m), "spread"]
        assert by_m.loc[("crisis", m), "size"] < by_m.loc[("calm", m), "size"]
    calm = by_m.loc["calm"]
    assert (np.diff(calm["spread"]) > -1e-9).all() and calm.loc[8, "size"] < 0.1 * calm.loc[1, "size"]


def test_vix_futures_spread_at_least_a_quarter_in_stress_beyond_the_front_two_months(futures_by_regime, state):
    """Methodology (chain_model.vx_futures_width): beyond the front two months VX spreads reach 0.25
    vol pt in stress; the front two stay within 0.20. Quoting keys on the variance state
    (market_sim.stress_level > 0.5), which lags the regime label by a few days at the start of
    each crisis episode."""
    f = futures_by_regime[futures_by_regime["regime"] == "crisis"]
    spread = f["ask"] - f["bid"]
    stress = ms.stress_level(state.variance[state.index_of(f["date"])], state.config)
    stressed = stress > 0.5
    back = f["month_index"].to_numpy() > 2
    assert stressed.mean() > 0.7  # observed 0.77 of crisis days
    assert (spread[stressed & back] >= 0.25 - 1e-9).all(), spread[stressed & back].min()
    assert (spread[~back] <= 0.20 + 1e-9).all(), spread[~back].max()
    wide_days = (spread[back] >= 0.25 - 1e-9).groupby(f["date"][back]).all()
    assert wide_days.mean() > 0.7, wide_days.mean()


@pytest.fixture(scope="module")
def spx_by_regime(regime_days) -> pd.DataFrame:
    calm, crisis = regime_days["calm"][::10], regime_days["crisis"][::10]  # 15 + 15 days
    o = syn.generate("spx_options", calm.append(crisis))
    o["regime"] = np.where(pd.DatetimeIndex(o["date"]).isin(calm), "calm", "crisis")
    return o


def test_spx_atm_spreads_wider_and_depth_thinner_in_crisis(spx_by_regime):
    """ATM quotes are wider in dollars in crisis and never wider than twice Cboe's legal bid/ask
    differential (the fast-market relief); relative to a crisis premium they need not widen."""
    o = spx_by_regime
    t = _tau_years(o)
    fwd = o["underlying"] * np.exp((o["rate"] - o["dividend_yield"]) * t)
    o = o.assign(dist=(o["strike"] - fwd).abs())
    atm = o.loc[o.groupby(["date", "expiry", "option_type"])["dist"].idxmin()]
    atm = atm.assign(width=atm["ask"] - atm["bid"], size=(atm["bid_size"] + atm["ask_size"]) / 2)
    g = atm.groupby("regime")[["width", "size"]].mean()
    assert g.loc["crisis", "width"] > 1.5 * g.loc["calm", "width"], g
    assert g.loc["crisis", "size"] < 0.7 * g.loc["calm", "size"], g  # observed 66 vs 123
    legal = chain_model.legal_width((o["bid"] + o["ask"]) / 2)
    tick = np.where((o["ask"] + o["bid"]) / 2 < 3.0, 0.05, 0.10)
    assert ((o["ask"] - o["bid"]) <= 2 * legal + 2 * tick + 1e-9).all()  # half-width rounded up to a tick


# ---- option chains: parity and implied vols -----------------------------------------------------

def _pairs(chain: pd.DataFrame, underlying: list[str]) -> pd.DataFrame:
    keys = ["date", "expiry", "strike", *underlying]
    c = chain[chain["option_type"] == "C"].set_index(keys)[["bid", "ask"]]
    p = chain[chain["option_type"] == "P"].set_index(keys)[["bid", "ask"]]
    assert len(c) == len(p)
    return c.join(p, lsuffix="_c", rsuffix="_p", how="inner").reset_index()


def test_spx_put_call_parity_on_mids(spx_by_regime):
    w = _pairs(spx_by_regime, ["underlying", "rate", "dividend_yield"])
    t = _tau_years(w)
    fwd = w["underlying"] * np.exp((w["rate"] - w["dividend_yield"]) * t)
    disc = np.exp(-w["rate"] * t)
    diff = ((w["bid_c"] + w["ask_c"]) / 2 - (w["bid_p"] + w["ask_p"]) / 2) - disc * (fwd - w["strike"])
    both = (w["bid_c"] > 0) & (w["bid_p"] > 0)
    half_spreads = (w["ask_c"] - w["bid_c"] + w["ask_p"] - w["bid_p"]) / 2
    assert both.sum() > 15_000
    assert (diff.abs() <= half_spreads)[both].all()
    # mids are the model prices, so parity holds to rounding (observed 5e-13)
    assert diff[both].abs().max() < 1e-9, diff[both].abs().max()


def test_vix_options_priced_on_the_same_month_future_with_parity(regime_days):
    dates = regime_days["calm"][::15].append(regime_days["crisis"][::15])
    o = syn.generate("vix_options", dates)
    f = syn.generate("vix_futures", dates)
    m = o.merge(f[["date", "expiry", "settle", "month_index"]], on=["date", "expiry"], how="left")
    assert m["settle"].notna().all() and (m["future_price"] == m["settle"]).all()
    assert set(m["month_index"]) == {1, 2, 3, 4}
    w = _pairs(o, ["future_price", "rate"])
    t = np.maximum((pd.DatetimeIndex(w["expiry"]) - pd.DatetimeIndex(w["date"])).days.to_numpy(), 1) / 365.0
    disc = np.exp(-w["rate"] * t)
    diff = ((w["bid_c"] + w["ask_c"]) / 2 - (w["bid_p"] + w["ask_p"]) / 2) - disc * (w["future_price"] - w["strike"])
    both = (w["bid_c"] > 0) & (w["bid_p"] > 0)
    assert both.sum() > 1000
    assert (diff.abs() <= (w["ask_c"] - w["bid_c"] + w["ask_p"] - w["bid_p"]) / 2)[both].all()
    assert diff[both].abs().max() < 1e-10, diff[both].abs().max()  # observed 1e-14


def test_spx_implied_vols_recover_model_iv(spx_by_regime):
    """Mid = model price by construction (synthetic docstring), so inverting the mid with the
    row's own underlying / rate / dividend_yield must return model_iv."""
    o = spx_by_regime[spx_by_regime["bid"] > 0]
    t = _tau_years(o)
    fwd = o["underlying"] * np.exp((o["rate"] - o["dividend_yield"]) * t)
    iv = implied_vol((o["bid"] + o["ask"]) / 2, fwd, o["strike"], t, np.exp(-o["rate"] * t), o["option_type"])
    assert len(o) > 40_000
    err = np.abs(iv - o["model_iv"].to_numpy())
    assert np.isfinite(iv).all(), f"{np.isnan(iv).sum()} mids outside the no-arbitrage bounds"
    assert err.max() < 1e-6, f"max |iv - model_iv| = {err.max():.2e}; {np.mean(err > 1e-6):.0%} of quotes > 1e-6"


def test_vix_implied_vols_recover_model_iv(regime_days):
    o = syn.generate("vix_options", regime_days["calm"][::15].append(regime_days["crisis"][::15]))
    o = o[o["bid"] > 0]
    t = np.maximum((pd.DatetimeIndex(o["expiry"]) - pd.DatetimeIndex(o["date"])).days.to_numpy(), 1) / 365.0
    iv = implied_vol((o["bid"] + o["ask"]) / 2, o["future_price"], o["strike"], t, np.exp(-o["rate"] * t),
                     o["option_type"])
    err = np.abs(iv - o["model_iv"].to_numpy())
    assert np.isfinite(iv).all()
    assert err.max() < 1e-6, f"max |iv - model_iv| = {err.max():.2e}; {np.mean(err > 1e-6):.0%} of quotes > 1e-6"


def test_spx_smile_has_put_skew(spx_by_regime):
    o = spx_by_regime
    day = o[o["date"] == o["date"].min()]
    exp = sorted(day["expiry"].unique())[6]  # a monthly, ~1-2 months out
    s = day[(day["expiry"] == exp) & (day["option_type"] == "P")].sort_values("strike")
    iv = s["model_iv"].to_numpy()
    spot = s["underlying"].iloc[0]
    low, high = s[s["strike"] < 0.9 * spot]["model_iv"].mean(), s[s["strike"] > 1.05 * spot]["model_iv"].mean()
    assert low > high + 0.02
    assert np.all(np.diff(iv[s["strike"].to_numpy() < spot]) <= 1e-12)  # vol falls with strike below spot


# ---- planted cointegration ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def log_closes_2023() -> pd.DataFrame:
    sessions = cal.sessions_between("2022-01-01", "2023-12-29")[-252:]
    bars = syn.generate("equity_bars", sessions)
    return np.log(bars.pivot(index="date", columns="symbol", values="close"))


def _coint_p(y: pd.Series, x: pd.Series) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(coint(y.to_numpy(), x.to_numpy())[1])


def test_planted_pairs_are_cointegrated(log_closes_2023):
    """Engle-Granger over 252 sessions to 2023-12-29 (planted half-lives 1.5-4 days)."""
    lp = log_closes_2023
    assert lp.shape == (252, 103)
    pairs = syn.ground_truth()["planted_pairs"]
    assert len(pairs) == 10
    p = np.array([_coint_p(lp[q["follower"]], lp[q["leader"]]) for q in pairs])
    hl = np.array([q["half_life_days"] for q in pairs])
    assert (p < 0.05).mean() >= 0.9, np.round(p, 3)
    assert (p[hl <= 4.0] < 0.05).mean() >= 0.9, np.round(p, 3)
    assert np.median(p) < 0.01
    # the hedge ratio is recovered by the cointegrating regression
    beta = np.array([np.polyfit(lp[q["leader"]], lp[q["follower"]], 1)[0] for q in pairs])
    h = np.array([q["hedge_ratio"] for q in pairs])
    assert np.median(np.abs(beta - h)) < 0.1, np.round(beta - h, 3)


def test_unrelated_pairs_rarely_cointegrated(log_closes_2023):
    lp = log_closes_2023
    planted = {n for q in syn.ground_truth()["planted_pairs"] for n in (q["leader"], q["follower"])}
    names = sorted(s for s in lp.columns if s[1:].isdigit() and s not in planted)  # not SPY
    assert len(names) == 80
    rng = np.random.default_rng(11)
    picked: set[tuple[str, str]] = set()
    while len(picked) < 100:
        a, b = sorted(rng.choice(names, 2, replace=False))
        picked.add((a, b))
    p = np.array([_coint_p(lp[a], lp[b]) for a, b in sorted(picked)])
    assert (p < 0.05).mean() <= 0.15, (p < 0.05).mean()  # observed ~0.01


# ---- determinism ------------------------------------------------------------------------------

DET_DATE = "2008-10-10"
DET_RANGE = ["2008-10-08", "2008-10-09", "2008-10-10", "2008-10-13", "2008-10-14"]


def _day(frame: pd.DataFrame, d: str) -> pd.DataFrame:
    return frame[pd.DatetimeIndex(frame["date"]) == pd.Timestamp(d)].reset_index(drop=True)


@pytest.mark.parametrize("table", RAW_TABLES)
def test_deterministic_in_any_order(table):
    alone = syn.generate(table, [DET_DATE])
    assert len(alone) > 0
    in_range = _day(syn.generate(table, DET_RANGE), DET_DATE)
    reverse = _day(syn.generate(table, DET_RANGE[::-1]), DET_DATE)
    pd.testing.assert_frame_equal(alone, in_range)
    pd.testing.assert_frame_equal(alone, reverse)
    pd.testing.assert_frame_equal(alone, syn.generate(table, [DET_DATE]))


@pytest.mark.parametrize("table", ["breadth", "fundamentals"])
def test_same_frame_whatever_the_date_type(table):
    """A partition key arrives as a string; sessions come from calendar as datetime64[ns]. The
    frame (including the datetime unit of `date`) must not depend on how the day was passed."""
    ref = syn.generate(table, [DET_DATE])
    for dates in ([pd.Timestamp(DET_DATE)], pd.DatetimeIndex([DET_DATE]).as_unit("ns"),
                  [pd.Timestamp(DET_DATE).date()]):
        pd.testing.assert_frame_equal(ref, syn.generate(table, dates))


@pytest.mark.parametrize("table", RAW_TABLES)
def test_different_seed_differs(table):
    a = syn.generate(table, [DET_DATE])
    b = syn.generate(table, [DET_DATE], ms.SimConfig(seed=8))
    assert list(a.columns) == list(b.columns)
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(a, b)


# ---- point-in-time fundamentals ------------------------------------------------------------------

def test_fundamentals_point_in_time():
    dates = cal.sessions_between("2015-01-02", "2016-06-30")[::7]  # ~53 as-of days
    f = syn.generate("fundamentals", dates)
    d, rep, fpe = (pd.DatetimeIndex(f[c]) for c in ("date", "report_date", "fiscal_period_end"))
    assert (rep <= d).all()
    lag = (rep - fpe).days
    assert lag.min() >= 20 and lag.max() <= 45
    assert (f.groupby("date").size() == 100).all()
    values = ["report_date", "eps_ttm", "cfps_ttm", "dps_ttm", "shares_outstanding"]
    per_report = f.groupby(["symbol", "fiscal_period_end"])[values].nunique()
    assert (per_report == 1).all().all()
    assert len(per_report) >= 100 * 5  # six quarters' reports seen, each identical from every as-of day
    # the latest report: fiscal period never goes backwards for a symbol as the as-of date advances
    seq = f.sort_values(["symbol", "date"]).groupby("symbol")["fiscal_period_end"]
    assert (seq.diff().dropna() >= pd.Timedelta(0)).all()
    # and is never stale by more than a quarter plus the reporting lag
    assert ((d - fpe).days <= 92 + 45).all()
