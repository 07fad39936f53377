"""Stress windows, the synthetic shock and the verdict's sentences on hand-made inputs: window
figures are hand-computed (the drawdown from a peak inside the window to its trough, followed past
the window's end), the full replay is the whole curve's drawdown, a window the books do not cover
or a promoter without VX futures 'cannot be tested' (never 'holds', and says why), the claims flip
at their thresholds, the shock's condor loss stops at its wings."""

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import stress, verdict
from alvh_pipeline.core.calendar import all_sessions
from alvh_pipeline.core.condor import max_loss_per_condor
from alvh_pipeline.core.metrics import max_drawdown, xirr
from alvh_pipeline.core.pricing import black

S = all_sessions()


def _daily(start: str, end: str, mode: str, equity: np.ndarray, calls_vx=(), vx=1.0, days=None) -> pd.DataFrame:
    days = S[(S >= start) & (S <= end)][: len(equity)] if days is None else days
    eq = np.asarray(equity, dtype=float)
    prev = np.r_[100_000.0, eq[:-1]]
    n = len(days)
    return pd.DataFrame({
        "date": days, "mode": mode, "equity": eq, "equity_change": eq - prev,
        "pnl_condor": np.r_[np.zeros(n - 1), -5_000.0], "pnl_L1": np.r_[np.zeros(n - 1), 2_000.0],
        "pnl_L2": 0.0, "pnl_L3": 500.0 / n, "pnl_synthetic": 0.0,
        "margin_calls": [1 if i in calls_vx else 0 for i in range(n)], "margin_call_size": 0.0,
        "margin_call_vx_alone": [i in calls_vx for i in range(n)],
        "vx_delta_dollars": 1_000.0, "cap_dollars": 2_000.0, "vx_futures_contracts": vx,
        "provenance": "index=real futures=real options=model"})


def test_window_figures_are_the_hand_computed_ones():
    eq = np.array([100_000, 101_000, 95_000, 97_000, 99_000.0])
    daily = _daily("2008-09-02", "2008-09-08", "steward", eq)
    (row,) = stress.window_stats(daily, S, "w", "2008-09-02", "2008-09-08")
    assert row["evaluated"] and row["coverage"] == 1.0
    assert row["max_drawdown"] == pytest.approx(95_000 / 101_000 - 1)
    assert (row["drawdown_peak"], row["drawdown_trough"], row["drawdown_recovered"]) == \
        ("2008-09-03", "2008-09-04", None)
    assert row["trough_after_window_end"] is False and row["vx_futures_days"] == 5
    assert row["worst_day"] == "2008-09-04" and row["worst_day_return"] == pytest.approx(95_000 / 101_000 - 1)
    assert row["hedge_payoff_over_condor_loss"] == pytest.approx(2_500 / 5_000)
    assert row["max_sizing_cap_use"] == pytest.approx(0.5)
    assert row["irr"] == pytest.approx(xirr([pd.Timestamp("2008-09-01"), pd.Timestamp("2008-09-08")],
                                            [-100_000, 99_000]))


def test_a_window_the_books_do_not_cover_cannot_be_tested():
    daily = _daily("2008-09-02", "2008-09-08", "steward", np.full(5, 100_000.0))
    (row,) = stress.window_stats(daily, S, "Aug 2011", "2011-07-25", "2011-08-31")
    assert not row["evaluated"] and row["provenance"] == "not materialized"
    table = verdict.verdict_table(pd.DataFrame([row]), pd.DataFrame())
    claims = verdict.claims(table, {"steward": 0.01, "promoter": 0.02})
    assert list(claims["status"]) == ["cannot be tested", "cannot be tested", "reported"]
    assert list(claims["reason"]) == [verdict.NO_2008_WINDOW, verdict.NO_2008_WINDOW, ""]
    assert "2007-06..2009-06" in verdict.NO_2008_WINDOW
    md = verdict.verdict_markdown(table, claims)
    assert "| Aug 2011 | steward | cannot be tested (not materialized) | | | | not materialized |" in md
    assert f"**{verdict.CLAIM_STEWARD}**: cannot be tested: {verdict.NO_2008_WINDOW}. Data:" in md
    assert "not evaluated" not in md


def test_the_drawdown_follows_a_window_s_peak_past_its_end_to_the_trough():
    # window 09-02..09-05: peak 104k on 09-03; the fall goes on after the window to 92k on 09-09, the
    # peak is regained on 09-11; the fall after that (a new peak, outside the window) is not the window's
    eq = np.array([100_000, 104_000, 101_000, 99_000, 95_000, 92_000, 97_000, 105_000, 80_000.0])
    daily = _daily("2008-09-02", "2008-09-30", "steward", eq, calls_vx=(5,))
    (row,) = stress.window_stats(daily, S, "w", "2008-09-02", "2008-09-05")
    assert row["max_drawdown"] == pytest.approx(92_000 / 104_000 - 1)
    assert (row["drawdown_peak"], row["drawdown_trough"], row["drawdown_recovered"]) == \
        ("2008-09-03", "2008-09-09", "2008-09-11")
    assert row["trough_after_window_end"] is True and row["drawdown_trough"] > row["end"]
    # the other figures stay over the window's own sessions
    assert row["worst_day"] == "2008-09-04" and row["worst_day_return"] == pytest.approx(101_000 / 104_000 - 1)
    assert row["margin_calls"] == 0 and row["sessions"] == 4
    assert row["irr"] == pytest.approx(xirr([pd.Timestamp("2008-09-01"), pd.Timestamp("2008-09-05")],
                                            [-100_000, 99_000]))
    # without a recovery the trough is followed to the books' end
    (open_end,) = stress.window_stats(daily.iloc[:7], S, "w", "2008-09-02", "2008-09-05")
    assert open_end["max_drawdown"] == pytest.approx(92_000 / 104_000 - 1) and open_end["drawdown_recovered"] is None


def test_a_peak_before_the_window_is_not_used():
    # 120k before the window; the window starts from the close before it (100k on 09-04)
    eq = np.array([120_000, 110_000, 100_000, 98_000, 96_000, 99_000, 101_000.0])
    daily = _daily("2008-09-02", "2008-09-30", "steward", eq)
    (row,) = stress.window_stats(daily, S, "w", "2008-09-05", "2008-09-10")
    assert row["max_drawdown"] == pytest.approx(96_000 / 100_000 - 1)
    assert (row["drawdown_peak"], row["drawdown_trough"], row["drawdown_recovered"]) == \
        ("2008-09-04", "2008-09-08", "2008-09-10")
    assert row["trough_after_window_end"] is False
    whole = max_drawdown(daily.set_index("date")["equity"])[0]
    assert whole == pytest.approx(96_000 / 120_000 - 1)  # the whole curve's, from the peak before the window


def test_the_full_replay_row_is_the_whole_curve_s_drawdown():
    rng = np.random.default_rng(10)  # the promoter's deepest fall is never regained, the steward's is
    days = S[(S >= "2008-01-02")][:300]
    daily = pd.concat([_daily("", "", mode, 100_000 * np.cumprod(1 + rng.normal(0.0005, 0.01, 300)), days=days)
                       for mode in ("promoter", "steward")])
    assert stress.full_replay_window(daily) == {f"full replay (2008-01-02..{days[-1].date()})":
                                                ("2008-01-02", str(days[-1].date()))}
    assert stress.full_replay_window(daily.iloc[:0]) == {}
    table = stress.stress_table(daily, S)
    assert len(table) == 2 * (len(stress.WINDOWS) + 1)
    full = table[table["window"].str.startswith("full replay")].set_index("mode")
    assert full["evaluated"].all() and (full["sessions"] == 300).all()
    for mode, g in daily.groupby("mode"):
        curve = pd.Series(np.r_[100_000.0, g["equity"]], index=[days[0] - pd.Timedelta(days=1), *days])
        depth, peak, trough, recovery = max_drawdown(curve)
        assert depth < -0.05
        assert full.loc[mode, "max_drawdown"] == pytest.approx(depth, abs=1e-12)
        assert full.loc[mode, "drawdown_peak"] == str(peak.date())
        assert full.loc[mode, "drawdown_trough"] == str(trough.date())
        recovered = full.loc[mode, "drawdown_recovered"]  # a frame's None may read back as NaN
        assert (recovered if isinstance(recovered, str) else None) == \
            (str(recovery.date()) if recovery is not None else None)
    # evaluated whatever its coverage of the calendar, where a named window would not be
    sparse = daily[daily["date"].isin(days[::2])]
    gappy = stress.stress_table(sparse, S, windows={"same range": ("2008-01-02", str(days[-1].date()))})
    assert list(gappy["evaluated"]) == [False, False, True, True]
    # and the verdict carries it, its drawdown's peak → trough in the markdown
    vt = verdict.verdict_table(table, pd.DataFrame())
    md = verdict.verdict_markdown(vt, verdict.claims(vt, {}))
    row = full.loc["steward"]
    assert f"| {row['window']} | steward | {100 * row['max_drawdown']:.1f} % | " \
           f"{row['drawdown_peak']} → {row['drawdown_trough']} |" in md


@pytest.mark.parametrize("trough, calls, expected", [(95_000, (), "holds"), (90_000, (), "does not hold"),
                                                       (95_000, (2,), "does not hold")])
def test_the_steward_claim_flips_at_nine_percent_or_a_margin_call(trough, calls, expected):
    eq = np.array([100_000, 100_000, trough, 99_000.0])
    daily = pd.concat([_daily("2008-09-02", "2008-09-05", "steward", eq, calls),
                       _daily("2008-09-02", "2008-09-05", "promoter", eq)])
    window = ("2008 crisis (Sep-Dec 2008)", "2008-09-02", "2008-09-05")
    table = verdict.verdict_table(pd.DataFrame(stress.window_stats(daily, S, *window)), pd.DataFrame())
    claims = verdict.claims(table, {"steward": 0.0, "promoter": 0.0}).set_index("claim")
    assert claims.loc[verdict.CLAIM_STEWARD, "status"] == expected
    assert "index=real futures=real" in claims.loc[verdict.CLAIM_STEWARD, "provenance"]


CRISIS = ("2008 crisis (Sep-Dec 2008)", "2008-09-02", "2008-09-05")


def _promoter_claim(calls=(), vx=1.0, steward_vx=1.0, drop_vx=False):
    eq = np.full(4, 100_000.0)
    daily = pd.concat([_daily("2008-09-02", "2008-09-05", "promoter", eq, calls, vx=vx),
                       _daily("2008-09-02", "2008-09-05", "steward", eq, vx=steward_vx)])
    if drop_vx:
        daily = daily.drop(columns="vx_futures_contracts")
    table = verdict.verdict_table(pd.DataFrame(stress.window_stats(daily, S, *CRISIS)), pd.DataFrame())
    claims = verdict.claims(table, {})
    return table, claims, claims.set_index("claim").loc[verdict.CLAIM_PROMOTER]


@pytest.mark.parametrize("calls, expected", [((), "does not hold"), ((1,), "does not hold"), ((1, 2), "holds")])
def test_the_promoter_claim_needs_frequent_calls_on_the_vx_leg_alone(calls, expected):
    _, _, claim = _promoter_claim(calls)
    assert claim["status"] == expected and claim["reason"] == ""
    assert f"{len(calls)} in the 2008 windows" in claim["numbers"]
    assert "VX futures held at the close on 4 session(s) of 2008 crisis (Sep-Dec 2008)" in claim["numbers"]


def test_a_promoter_without_vx_futures_cannot_be_tested_and_says_why():
    table, claims, claim = _promoter_claim((1, 2), vx=0.0)
    assert table.set_index("mode").loc["promoter", "vx_futures_days"] == 0
    assert claim["status"] == "cannot be tested" and claim["reason"] == verdict.NO_VX_FUTURES
    assert "VX futures" in claim["reason"] and "0 session(s)" in claim["numbers"]
    assert claims.set_index("claim").loc[verdict.CLAIM_STEWARD, "status"] == "holds"  # the steward's is testable
    md = verdict.verdict_markdown(table, claims)
    assert f"**{verdict.CLAIM_PROMOTER}**: cannot be tested: promoter holds no VX futures in this configuration." in md
    # a few sessions with VX futures make it testable; the count is of the window's sessions
    table, _, claim = _promoter_claim((1, 2), vx=[0.0, 3.0, 2.0, 0.0])
    assert table.set_index("mode").loc["promoter", "vx_futures_days"] == 2 and claim["status"] == "holds"


def test_books_that_do_not_report_vx_futures_leave_the_promoter_claim_untestable():
    table, _, claim = _promoter_claim((1, 2), drop_vx=True)
    assert np.isnan(table.set_index("mode").loc["promoter", "vx_futures_days"])  # unknown, not 0
    assert claim["status"] == "cannot be tested" and claim["reason"] == verdict.VX_FUTURES_UNKNOWN
    assert "an unknown number of session(s)" in claim["numbers"]
    _, _, claim = _promoter_claim((1, 2), vx=[1.0, np.nan, 1.0, 1.0])
    assert claim["status"] == "cannot be tested" and claim["reason"] == verdict.VX_FUTURES_UNKNOWN


def test_a_call_in_both_nested_2008_windows_counts_once():
    days = S[(S >= "2007-10-01") & (S <= "2009-03-31")]
    i = int(np.flatnonzero(days == pd.Timestamp("2008-10-10"))[0])
    daily = pd.concat([_daily("", "", m, np.full(len(days), 100_000.0), calls_vx=(i,) if m == "promoter" else (),
                              days=days) for m in ("promoter", "steward")])
    table = stress.stress_table(daily, S, windows={k: stress.WINDOWS[k] for k in stress.CRISIS_2008})
    vt = verdict.verdict_table(table, pd.DataFrame())
    assert (vt[vt["window"].isin(stress.CRISIS_2008) & (vt["mode"] == "promoter")]["margin_calls_vx_alone"] == 1).all()
    claim = verdict.claims(vt, {}).set_index("claim").loc[verdict.CLAIM_PROMOTER]
    assert claim["status"] == "does not hold" and "1 in the 2008 windows" in claim["numbers"]


def test_robustness_is_appended_to_the_claims_it_names():
    table, plain, _ = _promoter_claim((1, 2))
    sweep = pd.DataFrame({"claim": [verdict.CLAIM_STEWARD, verdict.CLAIM_PROMOTER], "holds": [3, 0],
                          "configurations": [4, 4], "most_sensitive_to": ["condor width", None]})
    claims = verdict.claims(table, {}, robustness=sweep).set_index("claim")
    before = plain.set_index("claim")
    line = "holds in 3 of 4 configurations; most sensitive to condor width"
    assert claims.loc[verdict.CLAIM_STEWARD, "numbers"] == before.loc[verdict.CLAIM_STEWARD, "numbers"] + "; " + line
    assert claims.loc[verdict.CLAIM_PROMOTER, "numbers"] == \
        before.loc[verdict.CLAIM_PROMOTER, "numbers"] + "; holds in 0 of 4 configurations"
    assert claims.loc[verdict.CLAIM_IRR, "numbers"] == before.loc[verdict.CLAIM_IRR, "numbers"]
    assert list(claims["status"]) == list(before["status"])
    # a claim without numbers (not testable here) gets the sentence alone
    empty = verdict.verdict_table(pd.DataFrame(columns=["window", "mode", "evaluated", "provenance"]), pd.DataFrame())
    bare = verdict.claims(empty, {}, robustness=sweep).set_index("claim")
    assert bare.loc[verdict.CLAIM_STEWARD, "numbers"] == line


def test_the_shock_reprices_options_fully_so_a_condors_loss_stops_at_its_wings():
    day = pd.Timestamp("2024-03-05")
    expiry = pd.Timestamp("2024-04-19")
    strikes, rights, qty = [1900.0, 2000.0, 2400.0, 2500.0], ["P", "P", "C", "C"], [1.0, -1.0, -1.0, 1.0]
    t = (expiry - day).days / 365.0
    marks = black(2200.0, np.array(strikes), t, 0.15, 1.0, np.array(rights))
    legs = pd.DataFrame({"date": day, "mode": "steward", "book": "condor", "layer": "condor", "instrument": "SPX",
                         "kind": "option", "right": rights, "strike": strikes, "expiry": expiry, "quantity": qty,
                         "multiplier": 100.0, "mark": marks, "underlying": 2200.0, "iv": 0.15,
                         "beta_to_vix": np.nan, "delta": 0.0, "gamma": 0.0, "vega": 0.0, "theta": 0.0})
    account = pd.DataFrame({"date": [day], "mode": ["steward"], "equity": [100_000.0], "margin_requirement": [10_000.0],
                            "margin_vx": [0.0], "vx_delta_dollars": [0.0], "cap_dollars": [2_000.0],
                            "provenance": ["synthetic"]})
    crash = stress.shock_scenario(legs, account, stress.Shock(vix_points=30, spx_return=-0.5))
    credit = float(-(np.array(qty) * marks).sum())
    worst = -max_loss_per_condor(100.0, 100.0, credit)
    assert crash["pnl_condor"].iloc[0] == pytest.approx(worst, rel=1e-3)  # deep through the put wing
    assert crash["pnl_condor"].iloc[0] >= worst - 1e-6
    calm = stress.shock_scenario(legs, account, stress.Shock(vix_points=0, spx_return=0.0, sessions=0))
    assert calm["pnl_condor"].iloc[0] == pytest.approx(0.0, abs=1e-6)


def test_the_provenance_says_when_the_books_filled():
    prov = pd.Series(["index=real options=model", "not materialized"])
    close = verdict.label_provenance(prov, "model calibrated", "close")
    nxt = verdict.label_provenance(prov, "model calibrated", "next")
    assert close[0].endswith("fills=at the decision close's bid/ask") and close[1] == "not materialized"
    assert nxt[0].endswith("fills=at the next session's bid/ask")
    assert verdict.label_provenance(prov, "model calibrated")[0] == "index=real options=model calibrated"


def test_the_irr_claim_ranks_only_defined_irrs():
    """An account whose equity ends below zero has no IRR (its flows never change sign): the claim
    says so instead of ranking a missing number."""
    daily = _daily("2008-09-02", "2008-09-08", "steward", np.full(5, 100_000.0))
    (row,) = stress.window_stats(daily, S, "Aug 2011", "2011-07-25", "2011-08-31")
    table = verdict.verdict_table(pd.DataFrame([row]), pd.DataFrame())
    irr = verdict.claims(table, {"steward": np.nan, "promoter": 0.2}).set_index("claim").loc[verdict.CLAIM_IRR]
    assert "cannot be ranked: no IRR for the steward" in irr["numbers"] and "ranks first" not in irr["numbers"]
    both = verdict.claims(table, {}).set_index("claim").loc[verdict.CLAIM_IRR, "numbers"]
    assert "no IRR for the steward and the promoter" in both
    ranked = verdict.claims(table, {"steward": 0.05, "promoter": 0.2}).set_index("claim").loc[verdict.CLAIM_IRR]
    assert ranked["numbers"].endswith("promoter ranks first")


def test_ui_metadata_names_each_claim_and_rounds_as_a_trader_reads():
    """Issue 21.8: the verdict's metadata keys say which claim each is and carry the outcome with its
    numbers; the tearsheet's figures are rounded (the lake keeps the floats)."""
    rows = pd.DataFrame({"claim": ["stewards survive 2008-style vol shocks with drawdowns under 9 %",
                                   "IRR of the whole structure is the decision metric"],
                         "status": ["does not hold", verdict.CANNOT_BE_TESTED],
                         "numbers": ["steward max drawdown -25.9 %", ""],
                         "reason": ["", "an IRR is undefined"], "provenance": ["model", "model"]})
    assert verdict.claim_metadata(rows) == {
        "claim_1_stewards_survive_2008_style_vol_shocks": "does not hold: steward max drawdown -25.9 %",
        "claim_2_irr_of_the_whole_structure_is": f"{verdict.CANNOT_BE_TESTED}: an IRR is undefined"}
    assert [verdict.trader_figure(k, v) for k, v in [("sharpe", -0.41823748869689215),
                                                      ("max_drawdown", -0.2591035733487602),
                                                      ("irr", 0.0712), ("margin_calls", 3.0)]] == [
        "-0.42", "-25.9 %", "7.1 %", "3"]
