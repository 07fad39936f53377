"""Margin assumptions (alvh_pipeline.core.margin): the dated VX table, the stress multiplier,
spreads vs outrights, long options and the account minimum. Expected values are the DESIGN §9
figures worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import margin


def test_table_is_dated_and_labelled():
    t = margin.VX_MARGIN
    assert list(t.columns) == ["effective_from", "initial_per_contract", "maintenance_per_contract",
                               "spread_per_pair", "source", "label"]
    assert (t["label"] == "assumption").all()
    assert t["effective_from"].is_monotonic_increasing and t["effective_from"].iloc[0] == margin.VX_LAUNCH
    assert t["source"].str.contains("extrapolated").iloc[0] and t["source"].str.contains("2013").iloc[-1]
    # the one published observation: 2013 front months $5,500 / $5,000, spreads within $2,860-4,015
    row_2013 = t[t["effective_from"] <= "2013-06-28"].iloc[-1]
    assert (row_2013["initial_per_contract"], row_2013["maintenance_per_contract"]) == (5500.0, 5000.0)
    assert 2860.0 <= row_2013["spread_per_pair"] <= 4015.0
    assert (t["maintenance_per_contract"] < t["initial_per_contract"]).all()
    assert (t["spread_per_pair"] < t["initial_per_contract"]).all()


def test_vx_margin_lookups_by_date():
    # 2013: 3 outrights -> 3 x 5,500 / 3 x 5,000
    assert margin.vx_margin("2013-06-28", 3, 0, 1.0) == pytest.approx((16_500.0, 15_000.0))
    # effective_from is inclusive; the day before falls back to the extrapolated row (same dollars)
    assert margin.vx_margin("2012-01-01", 1, 0, 1.0) == pytest.approx((5_500.0, 5_000.0))
    assert margin.vx_margin("2011-12-30", 1, 0, 1.0) == pytest.approx((5_500.0, 5_000.0))
    # 2006, before the 2007-03-26 multiplier change: same notional, same per-contract dollars
    assert margin.vx_margin(pd.Timestamp("2006-05-10 15:30"), -2, 0, 1.0) == pytest.approx((11_000.0, 10_000.0))
    # carried forward after 2013
    assert margin.vx_margin("2024-03-05", 1, 0, 1.0) == pytest.approx((5_500.0, 5_000.0))
    with pytest.raises(ValueError, match="launch"):
        margin.vx_margin("2004-03-25", 1, 0, 1.0)


def test_vx_margin_spread_vs_outright_and_stress():
    # one calendar pair: 4,015 initial, 4,015 x 5,000 / 5,500 = 3,650 maintenance
    initial, maint = margin.vx_margin("2013-06-28", 0, 1, 1.0)
    assert (initial, maint) == pytest.approx((4_015.0, 3_650.0))
    # a pair is cheaper than its two legs held as outrights
    assert initial < margin.vx_margin("2013-06-28", 2, 0, 1.0)[0]
    # mixed book, stressed: (1 x 5,500 + 5 x 4,015) x 2 = 51,150; (5,000 + 5 x 3,650) x 2 = 46,500
    assert margin.vx_margin("2008-10-24", 1, -5, 2.0) == pytest.approx((51_150.0, 46_500.0))
    assert margin.vx_margin("2013-06-28", 0, 0, 1.5) == (0.0, 0.0)
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError):
            margin.vx_margin("2013-06-28", 1, 0, bad)


@pytest.mark.parametrize("vix, expect", [(9.0, 1.0), (24.99, 1.0), (25.0, 1.5), (39.99, 1.5), (40.0, 2.0),
                                         (80.9, 2.0), (np.nan, 2.0)])
def test_vx_stress_multiplier(vix, expect):
    assert margin.vx_stress_multiplier(vix) == expect


def test_stress_multiplier_feeds_margin():
    calm = margin.vx_margin("2017-06-01", 4, 0, margin.vx_stress_multiplier(11.0))
    crash = margin.vx_margin("2008-11-20", 4, 0, margin.vx_stress_multiplier(80.9))
    assert calm == pytest.approx((22_000.0, 20_000.0)) and crash == pytest.approx((44_000.0, 40_000.0))


@pytest.mark.parametrize("qty, expect", [([5, -5], (0.0, 5.0)), ([5, -3], (2.0, 3.0)), ([-4], (4.0, 0.0)),
                                         ([2, 3, -4], (1.0, 4.0)), ([], (0.0, 0.0))])
def test_split_spread_pairs(qty, expect):
    assert margin.split_spread_pairs(np.array(qty, dtype=float)) == expect


def test_long_options_and_account_minimum():
    assert margin.long_option_margin(12_345.0) == 0.0
    assert margin.MIN_ACCOUNT_EQUITY == 2000.0
