"""core.benchmarks: Cboe CNDR / PUT / BXM rules on a chain, hand-computed cycles, invariance to
which sessions are marked and to how a range is split, no look-ahead, the published tables."""

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import benchmarks as bm
from alvh_pipeline.core import calendar as cal
from alvh_pipeline.core.option_marks import mark_chain
from alvh_pipeline.sources import replay

START, END = "2005-01-21", "2005-06-30"  # 2005-01-21 is a roll date (third Friday)


@pytest.fixture(scope="module")
def inputs():
    return replay.benchmark_inputs(cal.sessions_between(START, END))


def _all(days, chain, state=None):
    return {name: bm.replicate(name, days, chain, None if state is None else state[name]) for name in bm.INDEXES}


def test_roll_dates_are_monthly_expiries_and_held_expiry_is_the_next_one():
    rolls = bm.roll_dates("2014-01-01", "2014-12-31")
    assert len(rolls) == 12 and pd.Timestamp("2014-04-17") in rolls  # Good Friday: the session before
    held = bm.held_expiry(pd.DatetimeIndex(["2014-04-16", "2014-04-17", "2014-04-22"]))
    assert list(held.strftime("%Y-%m-%d")) == ["2014-04-17", "2014-05-16", "2014-05-16"]


def test_strikes_follow_the_published_rules(inputs):
    days, chain = inputs
    out = _all(days, chain)
    roll = pd.Timestamp(START)
    spot = float(days.loc[days["date"] == roll, "spx_close"].iloc[0])
    day = chain[(chain["date"] == roll)]
    put = out["PUT"].iloc[0]
    listed = np.sort(day["strike"].unique())
    assert put["k_put_short"] == listed[listed <= spot].max()  # closest to but not above the index
    bxm = out["BXM"].iloc[0]
    assert bxm["k_call_short"] == listed[listed >= spot].min()  # closest at or above the index
    cndr = out["CNDR"].iloc[0]
    marked = mark_chain(day, "spx")
    otm = ((marked["option_type"] == "P") & (marked["strike"] < marked["forward"])) | (
        (marked["option_type"] == "C") & (marked["strike"] >= marked["forward"]))
    marked = marked[otm & (marked["bid"] > 0)]
    for slot, kind, target in (("k_put_short", "P", 0.20), ("k_call_short", "C", 0.20),
                               ("k_put_long", "P", 0.05), ("k_call_long", "C", 0.05)):
        side = marked[marked["option_type"] == kind]
        if slot == "k_put_long":
            side = side[side["strike"] < cndr["k_put_short"]]
        if slot == "k_call_long":
            side = side[side["strike"] > cndr["k_call_short"]]
        best = (side["delta"].abs() - target).abs().min()
        got = side.loc[side["strike"] == cndr[slot], "delta"].abs().iloc[0]
        assert abs(got - target) == pytest.approx(best), slot


def test_put_cycle_by_hand(inputs):
    """PUT over its first cycle: n = V/K puts, cash = (V + n·mid) grown at the T-bill act/360, value
    = cash - n·mid_t; at the next roll the put settles at max(K - SOQ, 0)."""
    days, chain = inputs
    out = bm.replicate("PUT", days, chain)
    first = out.iloc[0]
    k = first["k_put_short"]
    n = 100.0 / k
    assert first["contracts"] == pytest.approx(n)
    held = chain[(chain["strike"] == k) & (chain["option_type"] == "P")
                 & (chain["expiry"] == pd.Timestamp("2005-02-18"))].set_index("date")
    mid = (held["bid"] + held["ask"]) / 2
    d = days.set_index("date")
    cycle = out[pd.to_datetime(out["date"]) < pd.Timestamp("2005-02-18")]
    cash = 100.0 + n * mid.loc[pd.Timestamp(START)]
    for i, (_, row) in enumerate(cycle.iterrows()):
        t = pd.Timestamp(row["date"])
        if i:
            prev = pd.Timestamp(cycle.iloc[i - 1]["date"])
            cash *= 1 + d.loc[prev, "rate"] * (t - prev).days / 360
        # a strike that left the listed range is marked at intrinsic on the close
        mark = mid.get(t, max(k - d.loc[t, "spx_close"], 0.0))
        assert row["value"] == pytest.approx(cash - n * mark, rel=1e-12)
        assert (row["marks_intrinsic"] == 1) == (t not in mid.index)
    roll = out[pd.to_datetime(out["date"]) == pd.Timestamp("2005-02-18")].iloc[0]
    prev = pd.Timestamp(cycle.iloc[-1]["date"])
    soq = d.loc[pd.Timestamp("2005-02-18"), "spx_open"]
    cash *= 1 + d.loc[prev, "rate"] * (pd.Timestamp("2005-02-18") - prev).days / 360
    assert roll["settlement"] == soq
    v_roll = cash - n * max(k - soq, 0.0)
    assert roll["contracts"] == pytest.approx(v_roll / roll["k_put_short"])


def test_cndr_collateral_is_ten_times_the_wider_wing(inputs):
    days, chain = inputs
    out = bm.replicate("CNDR", days, chain)
    rolls = out[out["rolled"]]
    width = np.maximum(rolls["k_put_short"] - rolls["k_put_long"], rolls["k_call_long"] - rolls["k_call_short"])
    value_before_premium = rolls["cash"] - rolls["premium"]
    np.testing.assert_allclose(rolls["contracts"] * width * bm.COLLATERAL_MULTIPLE, value_before_premium, rtol=1e-12)
    # a cycle cannot lose more than the max loss: 10 % of the account, plus nothing
    v = out.set_index(pd.to_datetime(out["date"]))["value"]
    start = v[out["rolled"].to_numpy()]
    assert (start.pct_change().dropna() > -0.10 - 1e-9).all()


def test_values_do_not_depend_on_which_other_sessions_are_marked(inputs):
    """The calibration marks roll dates and year/month ends only: the same values as a daily run, but
    for interest compounded over the gaps instead of daily (< 2e-4 of the index over half a year)."""
    days, chain = inputs
    daily = _all(days, chain)
    keep = pd.DatetimeIndex(days["date"]).isin(bm.roll_dates(START, END)) | (np.arange(len(days)) % 7 == 0)
    sparse = _all(days[keep], chain[chain["date"].isin(days["date"][keep])])
    for name in bm.INDEXES:
        a = daily[name].set_index("date")["value"]
        b = sparse[name].set_index("date")["value"]
        np.testing.assert_allclose(a.reindex(b.index), b, rtol=2e-4)


def _assert_split_equals_whole(days, chain, cut: pd.Timestamp) -> None:
    """Every index over the range split at `cut` (the second part from the first's last state)
    equals one run over the whole range."""
    whole = _all(days, chain)
    first = _all(days[days["date"] <= cut], chain[chain["date"] <= cut])
    state = {n: bm.IndexState.from_row(f.iloc[-1]) for n, f in first.items()}
    second = _all(days[days["date"] > cut], chain[chain["date"] > cut], state)
    for name in bm.INDEXES:
        joined = pd.concat([first[name], second[name]], ignore_index=True)
        pd.testing.assert_frame_equal(joined, whole[name], rtol=1e-12)


def test_a_split_range_continues_exactly(inputs):
    _assert_split_equals_whole(*inputs, pd.Timestamp("2005-03-31"))


def test_no_look_ahead(inputs):
    """Perturb every quote and index level after day t: every index's rows up to t are unchanged."""
    days, chain = inputs
    t = pd.Timestamp("2005-04-05")
    base = _all(days, chain)
    days2, chain2 = days.copy(), chain.copy()
    after = days2["date"] > t
    days2.loc[after, ["spx_open", "spx_close"]] *= 0.98
    days2.loc[after, "rate"] += 0.01
    late = chain2["date"] > t
    chain2.loc[late, ["bid", "ask"]] *= 1.3
    moved = _all(days2, chain2)
    for name in bm.INDEXES:
        a, b = base[name], moved[name]
        pd.testing.assert_frame_equal(a[pd.to_datetime(a["date"]) <= t], b[pd.to_datetime(b["date"]) <= t])
        assert not np.allclose(a["value"].iloc[-1], b["value"].iloc[-1])


def test_calendar_year_returns_windows_and_drawdown():
    idx = pd.DatetimeIndex(["2006-12-29", "2007-06-29", "2007-12-31", "2008-06-30", "2008-12-31"])
    v = pd.Series([100.0, 120.0, 110.0, 99.0, 121.0], index=idx)
    r = bm.calendar_year_returns(v)
    assert list(r.index) == [2007, 2008]
    np.testing.assert_allclose(r.to_numpy(), [10.0, 10.0])
    assert bm.window_return(v, "2007-06-29", "2008-06-30") == pytest.approx(-17.5)
    assert bm.max_drawdown(v) == pytest.approx((99 / 120 - 1) * 100)


def test_compare_to_published_names_sample_and_tolerance():
    dates = pd.DatetimeIndex(["2007-12-31", "2008-12-31", "2009-12-31", "2010-12-31"])
    rows = pd.DataFrame({"date": dates, "index": "CNDR", "value": [100.0, 95.0, 105.0, 100.0]})
    cmp = bm.compare_to_published(rows).set_index("period")
    assert cmp.loc["2008", "error_pts"] == pytest.approx(-5.0 - bm.PUBLISHED_RETURNS.loc[2008, "CNDR"])
    assert cmp.loc["2008", "sample"] == "out" and cmp.loc["2008", "tolerance_pts"] == 4.0
    assert cmp.loc["2010", "sample"] == "in"


def test_published_tables_and_dividend_yields():
    assert set(bm.PUBLISHED_RETURNS.columns) == set(bm.INDEXES)
    assert bm.PUBLISHED_RETURNS.loc[2008, "CNDR"] == -3.99
    q = bm.dividend_yield(np.array([2008, 2013, 1999]))
    assert q[0] == pytest.approx(np.log(0.63 / 0.6151)) and 0.015 < q[1] < 0.03 and q[2] == bm.DEFAULT_DIVIDEND_YIELD


def test_a_split_across_a_year_end_continues_exactly():
    """Interest and BXM's dividends (a yield per calendar year) grow at the previous day's rate, so
    a range split at a year-end equals one run too."""
    days, chain = replay.benchmark_inputs(cal.sessions_between("2005-11-18", "2006-02-28"))
    _assert_split_equals_whole(days, chain, pd.Timestamp("2005-12-30"))


def test_a_year_needs_both_year_ends_and_is_never_stretched():
    idx = pd.DatetimeIndex(["2004-12-31", "2006-12-29", "2007-12-31", "2008-12-24"])
    r = bm.calendar_year_returns(pd.Series([100.0, 121.0, 110.0, 99.0], index=idx))
    assert list(r.index) == [2007]  # 2006 lacks 2005's year-end; 2008's last session (12-31) is not held


def test_bad_inputs_are_refused_with_the_day(inputs):
    days, chain = inputs
    holes = days.copy()
    holes.loc[5, "spx_open"] = np.nan
    with pytest.raises(ValueError, match=str(holes.loc[5, "date"].date())):
        bm.replicate("PUT", holes, chain)
    first = bm.replicate("PUT", days, chain)
    gap_day = pd.Timestamp(first["date"].iloc[3])  # a held leg's quote removed inside the listed range
    k = first["k_put_short"].iloc[0]
    dropped = chain[~((chain["date"] == gap_day) & (chain["strike"] == k) & (chain["option_type"] == "P"))]
    with pytest.raises(bm.ChainGapError, match=str(gap_day.date())):
        bm.replicate("PUT", days, dropped)
    state = bm.IndexState.from_row(first.iloc[-1])
    with pytest.raises(ValueError, match="cannot start a range"):
        bm.replicate("PUT", days, chain, state)  # a state from after the range's first day
