"""VIX futures term structure (alvh_pipeline.core.term_structure): constant maturity, features,
the S&P 500 VIX Short-Term Futures index, on hand examples and on real CFE settlements."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core.term_structure import (
    constant_maturity,
    short_term_index,
    short_term_weights,
    term_structure_features,
)
from alvh_pipeline.sources.real_data import load_cfe_settlements


def _rows(spec):
    """spec: [(date, contract, expiry, settle)] -> a vix_futures-shaped frame."""
    df = pd.DataFrame(spec, columns=["date", "contract", "expiry", "settle"])
    df["date"], df["expiry"] = pd.to_datetime(df["date"]), pd.to_datetime(df["expiry"])
    return df


@pytest.fixture(scope="module")
def cfe() -> pd.DataFrame:
    f = load_cfe_settlements()
    return f[(f["date"] >= "2008-01-01") & (f["date"] <= "2009-12-31")].reset_index(drop=True)


# ---- constant maturity -------------------------------------------------------------------------

def test_constant_maturity_hand_example():
    # 2020-01-02: A expires in 20 days at 15, B in 50 days at 18.
    f = _rows([("2020-01-02", "A", "2020-01-22", 15.0), ("2020-01-02", "B", "2020-02-21", 18.0)])
    cm = constant_maturity(f, targets=(10, 20, 30, 60))
    # cm30 = 15 (50-30)/(50-20) + 18 (30-20)/(50-20) = 10 + 6
    assert cm.loc["2020-01-02", "cm30"] == pytest.approx(16.0, abs=1e-12)
    assert cm.loc["2020-01-02", "cm20"] == pytest.approx(15.0, abs=1e-12)
    assert cm.loc["2020-01-02", "cm60"] == pytest.approx(18.0)  # beyond the last expiry: flat
    assert cm.loc["2020-01-02", "cm10"] == pytest.approx(15.0)  # before the first: flat M1
    spot = pd.Series([12.0], index=pd.to_datetime(["2020-01-02"]))
    # with a spot anchor at maturity 0: 12 + (15 - 12) * 10 / 20
    assert constant_maturity(f, (10,), spot=spot).iat[0, 0] == pytest.approx(13.5, abs=1e-12)


def test_real_2008_2009_features(cfe):
    vix = cfe.groupby("date")["settle"].first().rename("vix")  # a stand-in spot series
    vix = vix.drop(vix.index[::10])  # with holes: vix-based columns NaN there, others not
    cm = constant_maturity(cfe)
    assert list(cm.columns) == ["cm30", "cm60", "cm90", "cm150"]
    assert cm.iloc[5:].notna().all().all()
    tf = term_structure_features(cfe, vix)
    assert len(tf) == cfe["date"].nunique()
    core = tf.drop(columns=["vix", "basis", "roll_yield", "roll_yield_cm30"])
    assert core.iloc[5:].notna().all().all()
    assert tf.loc["2008-11-17", "backwardation"]
    day = cfe[cfe["date"] == "2008-11-17"].sort_values("expiry")
    assert tf.loc["2008-11-17", "vx1"] == day["settle"].iat[0] and tf.loc["2008-11-17", "vx2"] == day["settle"].iat[1]
    np.testing.assert_allclose(tf["slope_m2_m1"], tf["vx2"] - tf["vx1"])
    np.testing.assert_allclose(tf["slope_cm"], tf["cm150"] - tf["cm30"])
    np.testing.assert_array_equal(tf["backwardation"], tf["vx1"] > tf["vx2"])
    has = tf["vix"].notna()
    np.testing.assert_allclose(tf.loc[has, "basis"], (tf["vx1"] - tf["vix"])[has])
    expected = (tf["vix"] - tf["vx1"]) / tf["vx1"] / tf["days_to_m1_expiry"]
    np.testing.assert_allclose(tf.loc[has, "roll_yield"], expected[has])
    assert tf.loc[~has, "basis"].isna().all()


def test_short_term_index_decay_2009(cfe):
    idx = short_term_index(cfe)
    assert idx.iat[0] == 100_000.0 and idx.notna().all()
    start = idx[idx.index >= "2009-03-01"].iat[0]
    assert idx.loc["2009-12-31"] / start - 1 < -0.40  # VXX-like decay (real VXX: about -70 %)
    assert idx.loc["2008-11-20"] > 2 * idx.loc["2008-08-29"]  # and the autumn-2008 spike


# ---- short-term index, hand example ------------------------------------------------------------
# NYSE sessions: 2020-01-22 (VXF20 settlement) .. 2020-02-19 (VXG20 settlement), excluded, are
# Jan 22-24, 27-31 (8), Feb 3-7 (5), 10-14 (5), 18 (Presidents' Day 17th closed): dt = 19.
# Roll period from 2020-02-19 to 2020-03-18 (VXH20): Feb 19-21 (3), 24-28, Mar 2-6, 9-13 (15),
# Mar 16-17 (2): dt = 20.

HAND = _rows([
    ("2020-01-28", "VXG20", "2020-02-19", 16.00), ("2020-01-28", "VXH20", "2020-03-18", 17.00),
    ("2020-01-29", "VXG20", "2020-02-19", 16.50), ("2020-01-29", "VXH20", "2020-03-18", 17.20),
    ("2020-02-18", "VXG20", "2020-02-19", 15.00), ("2020-02-18", "VXH20", "2020-03-18", 16.00),
    ("2020-02-18", "VXJ20", "2020-04-15", 17.00),
    ("2020-02-19", "VXH20", "2020-03-18", 16.40), ("2020-02-19", "VXJ20", "2020-04-15", 17.10),
    ("2020-02-20", "VXH20", "2020-03-18", 16.10), ("2020-02-20", "VXJ20", "2020-04-15", 16.90),
])


def test_short_term_weights_hand():
    w = short_term_weights(HAND)
    # 2020-01-28: dr = sessions in (Jan 28, Feb 19) = Jan 29-31 (3) + 5 + 5 + Feb 18 = 14
    assert (w.loc["2020-01-28", "dt"], w.loc["2020-01-28", "dr"]) == (19, 14)
    assert w.loc["2020-01-28", "crw1"] == pytest.approx(14 / 19)
    assert w.loc["2020-02-18", "crw1"] == 0.0  # the Tuesday before settlement: all in M2
    assert tuple(w.loc["2020-02-19", ["contract1", "contract2", "dt", "dr"]]) == ("VXH20", "VXJ20", 20, 19)


def test_short_term_index_hand_returns():
    idx = short_term_index(HAND, start_level=1000.0)
    w1 = 14 / 19  # weights of 2020-01-28
    r = (w1 * 16.50 + (1 - w1) * 17.20) / (w1 * 16.00 + (1 - w1) * 17.00) - 1
    assert idx.loc["2020-01-29"] / idx.loc["2020-01-28"] - 1 == pytest.approx(r, abs=1e-14)
    # Jan 29 -> Feb 18 (a gap in the data): Jan 29 weights w = 13/19 on G, H
    w1 = 13 / 19
    r = (w1 * 15.00 + (1 - w1) * 16.00) / (w1 * 16.50 + (1 - w1) * 17.20) - 1
    assert idx.loc["2020-02-18"] / idx.loc["2020-01-29"] - 1 == pytest.approx(r, abs=1e-14)
    # settlement day: yesterday's weights are 0 / 1 -> all VXH20, though VXG20 has no row today
    assert idx.loc["2020-02-19"] / idx.loc["2020-02-18"] - 1 == pytest.approx(16.40 / 16.00 - 1, abs=1e-14)
    w1 = 19 / 20
    r = (w1 * 16.10 + (1 - w1) * 16.90) / (w1 * 16.40 + (1 - w1) * 17.10) - 1
    assert idx.loc["2020-02-20"] / idx.loc["2020-02-19"] - 1 == pytest.approx(r, abs=1e-14)


def test_short_term_index_tbill_option():
    tb = pd.Series(0.02, index=pd.to_datetime(["2020-01-28"]))
    ex = short_term_index(HAND.iloc[:4])
    tr = short_term_index(HAND.iloc[:4], tbill=tb)
    tbr = (1 / (1 - 91 / 360 * 0.02)) ** (1 / 91) - 1
    assert tr.iat[1] / tr.iat[0] - ex.iat[1] / ex.iat[0] == pytest.approx(tbr, abs=1e-15)


# ---- no look-ahead -----------------------------------------------------------------------------

@pytest.mark.parametrize("cut", ["2008-06-13", "2008-11-18", "2009-02-17"])
def test_no_look_ahead(cfe, cut):
    rng = np.random.default_rng(0)
    later = cfe["date"] > cut
    bumped = cfe.copy()
    bumped.loc[later, "settle"] *= np.exp(0.3 * rng.standard_normal(later.sum()))
    truncated = cfe[~later]
    vix = cfe.groupby("date")["settle"].first()
    for fn in (short_term_index, short_term_weights, constant_maturity,
               lambda f: term_structure_features(f, vix)):
        base = fn(cfe).loc[:cut]
        pd.testing.assert_frame_equal(pd.DataFrame(fn(bumped).loc[:cut]), pd.DataFrame(base))
        pd.testing.assert_frame_equal(pd.DataFrame(fn(truncated)), pd.DataFrame(base))
