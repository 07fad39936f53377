"""Ground truth: the daily pair screen the `features/pairs` asset runs recovers the synthetic
market's planted cointegrated pairs, and on a market with none its false discoveries stay near
the nominal FDR."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.stattools import coint

from alvh_pipeline.core.market_sim import SimConfig, build_state
from alvh_pipeline.core.pairs import candidate_pairs, pair_features, selection_quality


def _panel(cfg: SimConfig):
    s = build_state(cfg)
    closes = pd.DataFrame(s.equity_close, index=s.dates, columns=s.symbols)
    return s, closes, pd.Series(s.sectors, index=s.symbols)


@pytest.fixture(scope="module")
def planted_year():
    s, closes, sectors = _panel(SimConfig())
    days = s.dates[s.dates.year == 2023]
    f = pair_features(closes, sectors, days)
    planted = [(p.leader, p.follower) for p in s.planted_pairs]
    return s, closes, f, planted


def test_recovers_planted_pairs_over_a_year(planted_year):
    _, _, f, planted = planted_year
    q = selection_quality(f, planted)
    assert len(q) == 250
    assert q["recall"].mean() >= 0.9, q.describe()
    assert q["precision"].mean() >= 0.8, q.describe()


def test_recall_not_applicable_on_days_that_are_not_synthetic(planted_year):
    """Real names have no planted pairs: days outside `synthetic_days` report NaN, not a recall."""
    _, _, f, planted = planted_year
    days = pd.DatetimeIndex(sorted(f["date"].unique()))
    q = selection_quality(f, planted, synthetic_days=days[:100])
    assert q["applicable"].sum() == 100 and q["recall"].iloc[100:].isna().all()
    assert q["precision"].iloc[100:].isna().all()
    pd.testing.assert_series_equal(q["recall"].iloc[:100], selection_quality(f, planted)["recall"].iloc[:100])


def test_hedge_ratio_and_half_life_of_planted_pairs(planted_year):
    s, _, f, _ = planted_year
    last = f[f["date"] == f["date"].max()]
    for p in s.planted_pairs:
        row = last[((last.symbol_y == p.follower) & (last.symbol_x == p.leader))
                   | ((last.symbol_y == p.leader) & (last.symbol_x == p.follower))].iloc[0]
        beta = row.hedge_ratio if row.symbol_y == p.follower else 1 / row.hedge_ratio
        assert beta == pytest.approx(p.hedge_ratio, rel=0.15)
        assert 0.5 < row.half_life < 3 * p.half_life_days


def test_statistics_equal_statsmodels_on_a_day(planted_year):
    _, closes, f, _ = planted_year
    day = f["date"].max()
    window = np.log(closes.loc[:day].iloc[-252:])
    today = f[f["date"] == day]
    sample = pd.concat([today.sample(20, random_state=0), today[~today["y_on_x"]].head(10)])
    assert (~sample["y_on_x"]).sum() >= 10
    for r in sample.itertuples():
        yx = coint(window[r.symbol_y], window[r.symbol_x], trend="c", maxlag=1, autolag=None)
        xy = coint(window[r.symbol_x], window[r.symbol_y], trend="c", maxlag=1, autolag=None)
        kept = yx if r.y_on_x else xy  # the direction with the more negative statistic
        assert r.adf_stat == pytest.approx(kept[0], abs=1e-8)
        assert r.adf_stat == pytest.approx(min(yx[0], xy[0]), abs=1e-8)
        # one hypothesis per unordered pair: Bonferroni over the two directions
        assert r.pvalue == pytest.approx(min(1.0, 2 * min(yx[1], xy[1])), abs=1e-10)


def test_keys_in_candidate_order_and_one_spread_convention(planted_year):
    # whichever regression was kept, rows are keyed (first, second) in the closes' column order,
    # the key a pair keeps across days and that pair_inputs uses; and the spread is always
    # log y - intercept - hedge_ratio·log x, the convention walk_forward and the signal rules read
    _, closes, f, _ = planted_year
    col = {c: n for n, c in enumerate(closes.columns)}
    assert (f["symbol_y"].map(col) < f["symbol_x"].map(col)).all()
    assert not f.duplicated(["date", "symbol_y", "symbol_x"]).any()
    assert 0.3 < (~f["y_on_x"]).mean() < 0.7
    lp = np.log(closes)
    for day in f["date"].drop_duplicates().iloc[[0, 100, -1]]:
        d = f[f["date"] == day]
        spread = (lp.loc[day, d["symbol_y"]].to_numpy() - d["intercept"].to_numpy()
                  - d["hedge_ratio"].to_numpy() * lp.loc[day, d["symbol_x"]].to_numpy())
        np.testing.assert_allclose(spread, d["spread"].to_numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(d["zscore"] * d["spread_std"], d["spread"], rtol=1e-12)
    # a pair's key is the same every day, so its selection history is one series
    assert f.groupby(["symbol_y", "symbol_x"]).size().eq(f["date"].nunique()).all()


def test_no_planted_pairs_false_discoveries_near_nominal():
    s, closes, sectors = _panel(SimConfig(n_planted_pairs=0))
    days = s.dates[(s.dates.year >= 2019) & (s.dates.year <= 2023)][::5]
    f = pair_features(closes, sectors, days)
    any_discovery = f.groupby("date")["selected"].any()
    # under the complete null every discovery is false: FDR = P(any discovery), nominal 5 %
    assert any_discovery.mean() <= 0.12, any_discovery.mean()
    assert 0.02 <= (f["pvalue"] < 0.05).mean() <= 0.10


def test_no_look_ahead_in_pair_features(planted_year):
    s, closes, f, _ = planted_year
    cut = pd.Timestamp("2023-06-30")
    bumped = closes.copy()
    after = bumped.index > cut
    bumped.loc[after] *= np.exp(np.random.default_rng(1).normal(0, 0.05, bumped.loc[after].shape))
    days = s.dates[(s.dates >= "2023-06-26") & (s.dates <= "2023-07-07")]
    sectors = pd.Series(s.sectors, index=s.symbols)
    a = pair_features(closes, sectors, days)
    b = pair_features(bumped, sectors, days)
    before = pd.to_datetime(a["date"]) <= cut
    pd.testing.assert_frame_equal(a[before].reset_index(drop=True), b[before.to_numpy()].reset_index(drop=True))
    assert not np.allclose(a.loc[~before, "zscore"], b.loc[~before.to_numpy(), "zscore"])


def test_sector_prefilter_and_all_pairs():
    sym = np.array(["A", "B", "C", "D"])
    sec = np.array(["x", "y", "x", "y"])
    i, j = candidate_pairs(sym, sec, "sector")
    assert list(zip(sym[i], sym[j])) == [("A", "C"), ("B", "D")]
    assert len(candidate_pairs(sym, sec, "all")[0]) == 6
