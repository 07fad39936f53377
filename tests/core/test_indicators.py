"""RSI (Wilder), MACD and pair divergences (alvh_pipeline.core.indicators)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core.indicators import macd, pair_difference, pair_divergence, rsi_wilder

# StockCharts ChartSchool's RSI worked example (cs-rsi.xls): 33 closes, RSI-14 published to two
# decimals from the 15th close on.
SC_CLOSE = [
    44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826,
    45.8931, 46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439,
    46.2122, 46.2521, 45.7137, 46.4515, 45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672,
    43.4205, 42.6628, 43.1314,
]
SC_RSI = [
    70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71, 50.42, 39.99,
    41.46, 41.87, 45.46, 37.30, 33.08, 37.77,
]


def _rsi_loop(c: np.ndarray, n: int) -> np.ndarray:
    """Textbook Wilder RSI, one scalar step at a time."""
    out = np.full(len(c), np.nan)
    d = np.diff(c)
    up, dn = np.maximum(d, 0), np.maximum(-d, 0)
    ag, al = up[:n].mean(), dn[:n].mean()
    out[n] = 100 - 100 / (1 + ag / al)
    for t in range(n + 1, len(c)):
        ag = (ag * (n - 1) + up[t - 1]) / n
        al = (al * (n - 1) + dn[t - 1]) / n
        out[t] = 100 - 100 / (1 + ag / al)
    return out


def _ema_loop(x: np.ndarray, span: int) -> np.ndarray:
    a = 2.0 / (span + 1)
    out = np.empty(len(x))
    out[0] = x[0]
    for t in range(1, len(x)):
        out[t] = a * x[t] + (1 - a) * out[t - 1]
    return out


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(3)
    T, N = 300, 6
    px = 50 * np.exp(np.cumsum(0.02 * rng.standard_normal((T, N)), axis=0))
    idx = pd.bdate_range("2020-01-01", periods=T)
    return pd.DataFrame(px, index=idx, columns=[f"S{k}" for k in range(N)])


def test_rsi_matches_published_stockcharts_example():
    r = rsi_wilder(pd.Series(SC_CLOSE, name="x"), n=14)
    assert r.name == "x"
    assert r.iloc[:14].isna().all()
    np.testing.assert_allclose(r.iloc[14:].round(2).to_numpy(), SC_RSI, atol=1e-9)


def test_rsi_hand_computed_n3():
    # closes 10, 11, 10.5, 12, 11, 11.5 ; n = 3
    # changes +1, -0.5, +1.5, -1, +0.5
    # seed (3rd change): AU = (1 + 0 + 1.5)/3 = 5/6, AD = (0 + 0.5 + 0)/3 = 1/6 -> RSI = 100*5/6 = 83.333..
    # next (-1):   AU = (5/6*2 + 0)/3 = 5/9,  AD = (1/6*2 + 1)/3 = 4/9          -> RSI = 100*5/9
    # next (+0.5): AU = (5/9*2 + .5)/3 = 29/54, AD = (4/9*2 + 0)/3 = 16/54      -> RSI = 100*29/45
    r = rsi_wilder(pd.Series([10, 11, 10.5, 12, 11, 11.5]), n=3).to_numpy()
    assert np.isnan(r[:3]).all()
    np.testing.assert_allclose(r[3:], [100 * 5 / 6, 100 * 5 / 9, 100 * 29 / 45], rtol=1e-13)


def test_rsi_against_loop_bounds_and_edge_cases(panel):
    r = rsi_wilder(panel, 14)
    for col in panel.columns[:3]:
        np.testing.assert_allclose(r[col].to_numpy(), _rsi_loop(panel[col].to_numpy(), 14), rtol=1e-12, equal_nan=True)
    v = r.to_numpy()[14:]
    assert np.isfinite(v).all() and (v >= 0).all() and (v <= 100).all()
    up = rsi_wilder(pd.Series(np.arange(1.0, 31.0)), 14)
    assert (up.iloc[14:] == 100.0).all()
    down = rsi_wilder(pd.Series(np.arange(30.0, 0.0, -1)), 14)
    assert (down.iloc[14:] == 0.0).all()
    flat = rsi_wilder(pd.Series(np.full(20, 5.0)), 14)
    assert (flat.iloc[14:] == 50.0).all()


def test_rsi_nan_handling_per_column(panel):
    p = panel.iloc[:, :2].copy()
    p.iloc[:40, 1] = np.nan  # a late listing: warm-up counted from its first close
    p.iloc[100, 0] = np.nan  # a missing bar: change measured from the last valid close
    r = rsi_wilder(p, 14)
    late = rsi_wilder(panel.iloc[40:, 1], 14)
    np.testing.assert_allclose(r.iloc[40:, 1].to_numpy(), late.to_numpy(), rtol=1e-12, equal_nan=True)
    assert r.iloc[:54, 1].isna().all() and r.iloc[54:, 1].notna().all()
    gap = rsi_wilder(panel.iloc[:, 0].drop(panel.index[100]), 14)
    assert np.isnan(r.iloc[100, 0])
    np.testing.assert_allclose(r.iloc[:, 0].drop(panel.index[100]).to_numpy(), gap.to_numpy(), rtol=1e-12,
                               equal_nan=True)


def test_macd_against_recursive_loop(panel):
    m = macd(panel, 12, 26, 9)
    for col in panel.columns[:3]:
        x = panel[col].to_numpy()
        line = _ema_loop(x, 12) - _ema_loop(x, 26)
        sig = _ema_loop(line, 9)
        np.testing.assert_allclose(m.macd_line[col].to_numpy()[25:], line[25:], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(m.signal_line[col].to_numpy()[33:], sig[33:], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(m.histogram[col].to_numpy()[33:], (line - sig)[33:], rtol=1e-12, atol=1e-12)
    assert m.macd_line.iloc[:25].isna().all().all() and m.macd_line.iloc[25:].notna().all().all()
    assert m.signal_line.iloc[:33].isna().all().all() and m.histogram.iloc[33:].notna().all().all()
    raw = macd(panel, warmup=False)
    assert raw.macd_line.iloc[0].eq(0.0).all()  # both EMAs seeded at the first close


def test_macd_hand_computed_small_spans():
    # fast=1 (alpha 1: EMA = x), slow=3 (alpha 1/2), signal=1: x = 0, 4, 8
    # EMA3 = 0, 2, 5  -> MACD = 0, 2, 3 ; signal(span 1) = MACD ; hist = 0
    m = macd(pd.Series([0.0, 4.0, 8.0]), fast=1, slow=3, signal=1, warmup=False)
    np.testing.assert_allclose(m.macd_line.to_numpy(), [0.0, 2.0, 3.0])
    np.testing.assert_allclose(m.histogram.to_numpy(), [0.0, 0.0, 0.0])
    # signal span 3 on MACD 0, 2, 3: 0, 1, 2 -> hist 0, 1, 1
    m = macd(pd.Series([0.0, 4.0, 8.0]), fast=1, slow=3, signal=3, warmup=False)
    np.testing.assert_allclose(m.signal_line.to_numpy(), [0.0, 1.0, 2.0])
    np.testing.assert_allclose(m.histogram.to_numpy(), [0.0, 1.0, 1.0])


def test_pair_divergence(panel):
    r = rsi_wilder(panel)
    m = macd(panel)
    i, j = np.array([0, 2, 5]), np.array([1, 3, 0])
    div = pair_divergence(r, m.histogram, i, j)
    assert list(div.rsi.columns) == [("S0", "S1"), ("S2", "S3"), ("S5", "S0")]
    assert div.rsi.columns.names == ["y", "x"]
    t = panel.index[200]
    assert div.rsi.loc[t, ("S2", "S3")] == pytest.approx(r.loc[t, "S2"] - r.loc[t, "S3"], abs=1e-12)
    expected = m.histogram.loc[t, "S5"] - m.histogram.loc[t, "S0"]
    assert div.macd_hist.loc[t, ("S5", "S0")] == pytest.approx(expected, abs=1e-12)
    scaled = pair_divergence(r, m.histogram, i, j, close=panel)
    want = m.histogram.loc[t, "S0"] / panel.loc[t, "S0"] - m.histogram.loc[t, "S1"] / panel.loc[t, "S1"]
    assert scaled.macd_hist.loc[t, ("S0", "S1")] == pytest.approx(want, abs=1e-14)
    v = div.rsi.to_numpy()[40:]
    assert (np.abs(v) <= 100).all()
    np.testing.assert_array_equal(pair_difference(panel, [1], [1]).to_numpy(), 0.0)
    with pytest.raises(ValueError):
        pair_difference(panel, [0, 1], [2])


def test_no_look_ahead(panel):
    t = 150
    changed = panel.copy()
    changed.iloc[t + 1 :] *= np.exp(np.random.default_rng(9).normal(0, 0.3, changed.iloc[t + 1 :].shape))
    for f in (lambda p: rsi_wilder(p), lambda p: macd(p).histogram, lambda p: macd(p).signal_line):
        a, b = f(panel), f(changed)
        pd.testing.assert_frame_equal(a.iloc[: t + 1], b.iloc[: t + 1], check_exact=True)
        assert not a.iloc[t + 1 :].equals(b.iloc[t + 1 :])


def test_ewm_mean_is_pandas_ewm_bit_for_bit():
    """The row-stepping recursion equals pandas' ewm(adjust=False, ignore_na=True).mean() exactly:
    leading and interior NaNs, constant columns (pandas skips the update when w == c), and both
    ways of giving the decay (alpha for Wilder, span for the MACD EMAs)."""
    from alvh_pipeline.core.indicators import ewm_mean

    rng = np.random.default_rng(11)
    x = pd.DataFrame(rng.normal(0, 1, (400, 60)).cumsum(axis=0) + 100)
    x = x.mask(rng.random(x.shape) < 0.1)
    x.iloc[:120, 3] = np.nan
    x.iloc[:, 5] = 42.0
    x.iloc[200:, 7] = 7.5
    x.iloc[:, 9] = np.nan
    for kw in ({"alpha": 1 / 14}, {"span": 12}, {"span": 26}, {"span": 9}, {"alpha": 0.3}):
        ref = x.ewm(**kw, adjust=False, ignore_na=True).mean()
        got = ewm_mean(x, **kw)
        assert np.array_equal(ref.to_numpy(), got.to_numpy(), equal_nan=True), kw
        assert got.index.equals(x.index) and got.columns.equals(x.columns)
