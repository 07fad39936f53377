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
    sample = f[f["date"] == day].sample(25, random_state=0)
    for r in sample.itertuples():
        stat, p, _ = coint(window[r.symbol_y], window[r.symbol_x], trend="c", maxlag=1, autolag=None)
        assert r.adf_stat == pytest.approx(stat, abs=1e-8)
        assert r.pvalue == pytest.approx(p, abs=1e-10)


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
    bumped.loc[bumped.index > cut] *= np.exp(np.random.default_rng(1).normal(0, 0.05, bumped.loc[bumped.index > cut].shape))
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
