"""Macro-event proximity, A/D line, rate changes and the regime label
(alvh_pipeline.core.macro_regime)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core.calendar import sessions_between
from alvh_pipeline.core.macro_regime import (
    advance_decline_line,
    days_to_next,
    rates_changes,
    regime_label,
    vix_curve_inputs,
)
from alvh_pipeline.sources import synthetic as syn

TS = pd.Timestamp


def _snapshot(asof, events):
    return pd.DataFrame({"date": TS(asof), "event_type": [e for e, _ in events],
                         "event_date": [TS(d) for _, d in events], "surprise": np.nan, "provenance": "synthetic"})


@pytest.fixture
def calendar():
    base = [("CPI", "2022-07-13"), ("PPI", "2022-07-14"), ("FOMC", "2022-07-27"), ("CPI", "2022-06-10")]
    snaps = [_snapshot(d, base) for d in ("2022-06-30", "2022-07-01", "2022-07-05")]
    # an unscheduled FOMC meeting on 2022-07-08, first known as of 2022-07-06
    extra = base + [("FOMC", "2022-07-08")]
    snaps += [_snapshot(d, extra) for d in ("2022-07-06", "2022-07-07", "2022-07-08")]
    return pd.concat(snaps, ignore_index=True)


def test_days_to_next_hand_values(calendar):
    days = pd.DatetimeIndex(["2022-07-01", "2022-07-05", "2022-07-06", "2022-07-08", "2022-07-11", "2022-07-13"])
    out = days_to_next(calendar, days)
    # 2022-07-01 (Fri) -> CPI 07-13: sessions 5, 6, 7, 8, 11, 12, 13 (07-04 holiday) = 7
    np.testing.assert_array_equal(out["days_to_CPI"].to_numpy(), [7, 6, 5, 3, 2, 0])
    np.testing.assert_array_equal(out["days_to_PPI"].to_numpy(), [8, 7, 6, 4, 3, 1])
    # FOMC: the 07-08 meeting only counts from its first as-of day (07-06); 07-11 and 07-13 have
    # no snapshot of their own and use 07-08's, counting from the day itself
    np.testing.assert_array_equal(out["days_to_FOMC"].to_numpy(), [17, 16, 2, 0, 12, 10])
    assert out["is_CPI_day"].tolist() == [False] * 5 + [True]
    assert out["is_FOMC_day"].tolist() == [False, False, False, True, False, False]
    # a day before the first snapshot knows nothing
    early = days_to_next(calendar, ["2022-06-29"])
    assert early.filter(like="days_to").isna().all().all() and not early.filter(like="is_").any().any()


def test_days_to_next_on_synthetic_calendar():
    days = sessions_between("2005-01-03", "2005-01-20")
    ev = syn.generate("macro_events", days)
    out = days_to_next(ev, days)
    # FOMC 2005-01-19 (Wed); 2005-01-17 is Martin Luther King day
    assert out.loc["2005-01-03", "days_to_FOMC"] == 11
    assert out.loc["2005-01-19", "is_FOMC_day"] and out.loc["2005-01-19", "days_to_FOMC"] == 0
    assert out.loc["2005-01-13", "is_CPI_day"] and out.loc["2005-01-14", "is_PPI_day"]
    assert out.loc["2005-01-12", "days_to_CPI"] == 1 and out.loc["2005-01-14", "days_to_CPI"] == 19
    assert out.notna().all().all()


def test_advance_decline_line():
    b = pd.DataFrame({
        "date": pd.bdate_range("2022-03-01", periods=4)[[2, 0, 1, 3]], "exchange": "NYSE",
        "advancers": [1000, 2000, 1200, 1500], "decliners": [1900, 900, 1700, 1400],
    })
    ad = advance_decline_line(b)
    # sorted by date: +1100, -500, -900, +100
    np.testing.assert_array_equal(ad.to_numpy(), [1100, 600, -300, -200])
    assert ad.index.is_monotonic_increasing


def test_rates_changes():
    days = pd.bdate_range("2022-01-03", periods=25)
    r = pd.DataFrame({"date": days, "tbill_3m": np.linspace(0.01, 0.0124, 25),
                      "reer_index": 100 * np.exp(0.001 * np.arange(25)),
                      "rate_differential": 0.005 + 0.0002 * np.arange(25), "provenance": "synthetic"})
    out = rates_changes(r, window=20)
    assert out.iloc[:20].isna().all().all()
    np.testing.assert_allclose(out["reer_change"].iloc[20:].to_numpy(), 0.02, rtol=1e-9)
    np.testing.assert_allclose(out["rate_diff_change"].iloc[20:].to_numpy(), 0.004, rtol=1e-9)
    np.testing.assert_allclose(out["tbill_change"].iloc[20:].to_numpy(), 0.002, rtol=1e-9)


def test_regime_label_rules():
    idx = pd.bdate_range("2022-01-03", periods=7)
    vix = pd.Series([14.0, 22.0, 35.0, 19.0, 24.0, 16.0, np.nan], index=idx)
    vx1 = pd.Series([15.0, 23.0, 33.0, 21.0, 26.0, 17.0, 20.0], index=idx)
    vx2 = pd.Series([16.0, 24.0, 31.0, 20.0, 25.0, 18.0, 21.0], index=idx)
    lab = regime_label(vix, vx1, vx2)
    # calm; 20-30 contango; >=30; <20 but backwardated; 20-30 backwardated; calm; no VIX
    assert lab.iloc[:6].tolist() == ["calm", "elevated", "stressed", "elevated", "stressed", "calm"]
    assert pd.isna(lab.iloc[6])
    assert lab.cat.ordered and list(lab.cat.categories) == ["calm", "elevated", "stressed"]


def test_regime_label_weak_breadth_lifts_calm():
    idx = pd.bdate_range("2020-01-01", periods=400)
    rng = np.random.default_rng(4)
    net = rng.normal(0, 300, 400)
    net[-10:] = -1500  # a breadth collapse over the last 10 days
    ad = pd.Series(np.cumsum(net), index=idx)
    vix = pd.Series(15.0, index=idx)
    vx1, vx2 = vix + 1.0, vix + 2.0
    without = regime_label(vix, vx1, vx2)
    with_ad = regime_label(vix, vx1, vx2, ad_line=ad)
    assert (without == "calm").all()
    assert (with_ad.iloc[-3:] == "elevated").all()
    assert (with_ad.iloc[:272] == "calm").all()  # no breadth z-score before 20 + 252 days
    assert (with_ad == "elevated").mean() < 0.15


@pytest.fixture(scope="module")
def synthetic_sample():
    regimes = syn.ground_truth()["regimes"].loc["1999-03-01":"2024-12-31"]
    days = regimes.index[(regimes == "crisis").to_numpy()].union(regimes.index[::15])
    curve = vix_curve_inputs(syn.generate("index_levels", days), syn.generate("vix_futures", days))
    return curve, regimes.reindex(curve.index)


def test_regime_label_agrees_with_planted_regimes(synthetic_sample):
    curve, truth = synthetic_sample
    lab = regime_label(curve["vix"], curve["vx1"], curve["vx2"])
    assert lab.notna().all()
    crisis, calm = truth == "crisis", truth == "calm"
    assert crisis.sum() > 150 and calm.sum() > 250
    assert (lab[crisis] == "stressed").mean() >= 0.9
    assert (lab[calm] == "calm").mean() >= 0.9
    assert (lab[calm] == "stressed").mean() < 0.02
    # elevated days sit in between: mostly not calm-by-VIX-alone, rarely stressed by VIX >= 30
    assert (lab[truth == "elevated"] != "calm").mean() > 0.3


def test_no_look_ahead(calendar):
    t = TS("2022-07-06")
    days = sessions_between("2022-07-01", "2022-07-13")
    later = calendar.copy()
    later.loc[later["date"] > t, "event_date"] = TS("2022-07-07")
    a, b = days_to_next(calendar, days), days_to_next(later, days)
    pd.testing.assert_frame_equal(a.loc[:t], b.loc[:t])
    assert not a.loc[t + pd.Timedelta(days=1):].equals(b.loc[t + pd.Timedelta(days=1):])

    idx = pd.bdate_range("2020-01-01", periods=400)
    rng = np.random.default_rng(8)
    breadth = pd.DataFrame({"date": idx, "exchange": "NYSE", "advancers": rng.integers(1000, 2000, 400),
                            "decliners": rng.integers(1000, 2000, 400)})
    rates = pd.DataFrame({"date": idx, "tbill_3m": rng.uniform(0, 0.05, 400), "reer_index": rng.uniform(90, 110, 400),
                          "rate_differential": rng.normal(0, 0.01, 400)})
    vix = pd.Series(rng.uniform(12, 40, 400), index=idx)
    vx1, vx2 = vix + rng.normal(0, 2, 400), vix + rng.normal(1, 2, 400)
    k = 330
    b2, r2 = breadth.copy(), rates.copy()
    b2.loc[k + 1 :, "decliners"] += 1500
    r2.loc[k + 1 :, ["reer_index", "rate_differential"]] *= 2
    v2, w1 = vix.copy(), vx1.copy()
    v2.iloc[k + 1 :] += 30
    w1.iloc[k + 1 :] -= 10
    pd.testing.assert_series_equal(advance_decline_line(breadth).iloc[: k + 1], advance_decline_line(b2).iloc[: k + 1])
    pd.testing.assert_frame_equal(rates_changes(rates).iloc[: k + 1], rates_changes(r2).iloc[: k + 1])
    la = regime_label(vix, vx1, vx2, ad_line=advance_decline_line(breadth))
    lb = regime_label(v2, w1, vx2, ad_line=advance_decline_line(b2))
    pd.testing.assert_series_equal(la.iloc[: k + 1], lb.iloc[: k + 1])
    assert not la.iloc[k + 1 :].equals(lb.iloc[k + 1 :])
