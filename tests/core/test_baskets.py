import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.vector_ar.vecm import coint_johansen

from alvh_pipeline.core.baskets import johansen, johansen_baskets
from alvh_pipeline.core.market_sim import SimConfig, build_state


@pytest.fixture(scope="module")
def market():
    s = build_state(SimConfig())
    return s, pd.DataFrame(s.equity_close, index=s.dates, columns=s.symbols), pd.Series(s.sectors, index=s.symbols)


def test_statistics_equal_statsmodels(market):
    s, closes, sectors = market
    day = pd.Timestamp("2023-12-29")
    out = johansen_baskets(closes, sectors, [day])
    row = out[out.sector == "Energy"].iloc[0]
    names = sectors.index[sectors == "Energy"]
    res = coint_johansen(np.log(closes.loc[:day, names].iloc[-252:]).to_numpy(), 0, 1)
    assert row.trace_stat_r0 == pytest.approx(res.lr1[0], rel=1e-12)
    assert row.maxeig_stat_r0 == pytest.approx(res.lr2[0], rel=1e-12)
    assert row.n_names == len(names)


def test_baskets_with_a_planted_pair_have_rank_at_least_one(market):
    s, closes, sectors = market
    days = s.dates[(s.dates.year == 2023)][::21]
    out = johansen_baskets(closes, sectors, days)
    # every sector holds one planted pair (planted within sectors): rank >= 1 on most days
    assert (out["rank_trace"] >= 1).mean() > 0.8
    assert out["rank_trace_small_sample"].le(out["rank_trace"]).all()


def test_johansen_is_statsmodels_bit_for_bit(market):
    """The lean `johansen` returns exactly coint_johansen's numbers (same operations, same order),
    on random walks of 2..12 names and on the market's sector windows."""
    s, closes, sectors = market
    rng = np.random.default_rng(7)
    panels = [np.cumsum(rng.standard_normal((252, k)), axis=0) + 5.0 for k in range(2, 13) for _ in range(5)]
    logp = np.log(closes.to_numpy(float))
    panels += [logp[t - 251:t + 1][:, (sectors == sector).to_numpy()][:, :12]
               for t in (300, 700, 1200) for sector in np.unique(sectors) if (sectors == sector).sum() >= 2]
    for panel in panels:
        ours, ref = johansen(panel), coint_johansen(panel, 0, 1)
        for name in ("eig", "lr1", "lr2", "cvt", "cvm"):
            assert np.array_equal(getattr(ours, name), getattr(ref, name)), (name, panel.shape)
