"""The books engine without Dagster, on the synthetic market: a condor held to expiry returns
exactly its payoff less costs (inside the wings and through a wing); book greeks are the sum of
leg greeks; in the planted 2023 crisis the steward's hedge pays while the condor loses; the sizing
rule holds on every day in both modes, and a hand-made violating book is caught."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from synthetic_market import market

from alvh_pipeline.core import book_checks
from alvh_pipeline.core import books as engine
from alvh_pipeline.core import condor as cd
from alvh_pipeline.core.calendar import all_sessions
from alvh_pipeline.resources import StrategyConfig

S = all_sessions()
CRISIS = ("2023-06-23", "2023-08-11")  # a planted crisis regime of the default seed (ground truth)


def run(days, cfg):
    states = {m: engine.fresh_state(m, cfg.account_equity) for m in cfg.modes}
    return engine.simulate(days, states, cfg)


@pytest.fixture(scope="module")
def expiry_window():
    return market("2024-03-05", "2024-04-19")  # 2024-04-19: a monthly expiry 45 days out


def _hold_to_expiry(cfg):
    never = cd.CondorRules(take_profit=10.0, stop_loss=1e9, exit_dte=-1)
    return replace(cfg, condor_rules=never, hedge_spend_per_month=0.0, hedge_cap=0.0, modes=("steward",))


@pytest.mark.parametrize("settle_at", [None, "below_the_put_wing"])
def test_a_condor_held_to_expiry_returns_its_payoff_less_costs(expiry_window, settle_at):
    days = list(expiry_window)
    cfg = _hold_to_expiry(StrategyConfig().book_config())
    _, legs, trades, _ = run(days[:1], cfg)
    opened = trades[trades["reason"] == "condor open"]
    assert len(opened) == 4 and pd.Timestamp(opened["expiry"].iloc[0]) == pd.Timestamp("2024-04-19")
    strikes = opened.sort_values(["right", "strike"])
    kp_long, kp_short = strikes[strikes["right"] == "P"]["strike"].to_numpy()
    kc_short, kc_long = strikes[strikes["right"] == "C"]["strike"].to_numpy()
    if settle_at:
        days[-1] = replace(days[-1], spx_open=kp_long - 50.0)  # a crash through the long put
    _, legs, trades, account = run(days, cfg)
    n = abs(opened["quantity"].iloc[0])
    credit = float((-opened["quantity"] / n * opened["fill"]).sum())  # sold at the bid, bought at the ask
    settle = days[-1].spx_open  # AM-settled monthly: the open stands in for the SOQ
    payoff = float(cd.condor_payoff(np.array([settle]), kp_long, kp_short, kc_short, kc_long)[0])
    expected = n * 100.0 * (credit + payoff) - 4 * n * cfg.spx_option_fee
    condor_cash = trades.loc[trades["book"] == "condor", "cash_flow"].sum()
    assert condor_cash == pytest.approx(expected, abs=1e-9)
    assert not (legs["book"] == "condor").any() or pd.Timestamp(legs["date"].max()) < days[-1].date
    if settle_at:
        assert payoff == pytest.approx(-(kp_short - kp_long))  # the full put-spread width is lost
        assert expected == pytest.approx(-n * cd.max_loss_per_condor(kp_short - kp_long, kc_long - kc_short, credit)
                                         - 4 * n * cfg.spx_option_fee)
    settles = trades[trades["reason"].str.startswith("expiry")]
    assert set(settles["reason"]) == {"expiry (SPX open as SOQ proxy)"} and (settles["fee"] == 0).all()


def test_book_greeks_are_the_sum_of_leg_greeks(expiry_window):
    cfg = StrategyConfig().book_config()
    _, legs, _, _ = run(list(expiry_window)[:5], cfg)
    assert legs.loc[legs["kind"] == "option", "underlying"].notna().all()  # what attribution splits delta on
    greeks = engine.book_greeks(legs)
    for (date, mode, book), row in greeks.set_index(["date", "mode", "book"]).iterrows():
        sel = legs[(legs["date"] == date) & (legs["mode"] == mode) & (legs["book"] == book)]
        for g in ("delta", "gamma", "vega", "theta"):
            assert row[g] == pytest.approx(float((sel["quantity"] * sel["multiplier"] * sel[g]).sum()), abs=1e-9)


@pytest.fixture(scope="module")
def crisis_run():
    days = market(S[S.get_loc(pd.Timestamp(CRISIS[0])) - 35].strftime("%Y-%m-%d"), CRISIS[1])
    return run(days, StrategyConfig().book_config())


def test_in_the_planted_crisis_the_stewards_hedge_pays_while_the_condor_loses(crisis_run):
    _, legs, trades, account = crisis_run
    a = account.assign(date=pd.to_datetime(account["date"]))
    crisis = a[(a["date"] >= CRISIS[0]) & (a["date"] <= CRISIS[1])].groupby("mode")[["pnl_hedge", "pnl_condor"]].sum()
    assert crisis.loc["steward", "pnl_hedge"] > 0
    assert crisis.loc["steward", "pnl_condor"] < 0
    # the promoter runs no ladder: its hedge is the static long VX future alone (DESIGN §5)
    promoter = legs[(legs["mode"] == "promoter") & (legs["book"] == "alvh")]
    assert set(promoter["layer"]) == {engine.STATIC_VX_LAYER} and (promoter["kind"] == "future").all()
    assert (promoter["quantity"] > 0).all()
    steward = legs[(legs["mode"] == "steward") & (legs["book"] == "alvh")]
    assert engine.STATIC_VX_LAYER not in set(steward["layer"]) and "synthetic" in set(steward["layer"])


def test_the_sizing_rule_holds_every_day_in_both_modes(crisis_run):
    _, legs, _, account = crisis_run
    cfg = StrategyConfig()
    dates = pd.DatetimeIndex(sorted(set(pd.to_datetime(account["date"]))))
    failures = book_checks.sizing_rule_failures(legs[legs["book"] == "alvh"], legs[legs["book"] == "condor"], account,
                                                dates, cfg.hedge_cap, cfg.stress_move_vix_points)
    assert failures == []
    assert (account["vx_delta_dollars"] <= account["cap_dollars"] + 1e-6).all()
    assert (account.loc[account["mode"] == "steward", "vx_delta_dollars"] > 0).any()  # exercised, not vacuous


def _hand_made_books(day):
    alvh = pd.DataFrame({"date": [day] * 4, "mode": ["promoter", "promoter", "steward", "steward"],
                         "position_id": ["L2:1", "L2:1", "L2:2", "L2:2"], "layer": ["L2"] * 4,
                         "instrument": ["VX"] * 4, "contract": ["VXJ24", "VXL24", "VXJ24", "VXL24"],
                         "expiry": [pd.Timestamp("2024-04-17"), pd.Timestamp("2024-06-18")] * 2,
                         "quantity": [10.0, -10.0, 1.0, -1.0], "beta_to_vix": [0.8, 0.3] * 2,
                         "vx_equivalent": [10.0, -10.0, 1.0, -1.0]})
    condor = pd.DataFrame({"date": [day] * 8, "mode": ["promoter"] * 4 + ["steward"] * 4,
                           "position_id": ["c1"] * 4 + ["c2"] * 4, "right": ["P", "P", "C", "C"] * 2,
                           "strike": [1800.0, 1900.0, 2300.0, 2400.0] * 2, "quantity": [5.0, -5, -5, 5] * 2,
                           "credit": [10.0] * 8})
    account = pd.DataFrame({"date": [day, day], "mode": ["promoter", "steward"], "program_notional": [45_000.0] * 2})
    return alvh, condor, account


def test_a_calendars_net_vx_delta_is_the_beta_weighted_difference_of_its_legs():
    """DESIGN §5: NET, so a calendar's legs offset by their betas (not |M2| + |M4|)."""
    day = pd.Timestamp("2024-03-05")
    alvh, _, _ = _hand_made_books(day)
    frame = alvh.assign(kind="future", multiplier=1000.0, right="", strike=np.nan, book="alvh")
    frame = frame.assign(**{c: np.nan for c in engine.LEG_COLUMNS if c not in frame})
    legs = engine.Table.from_frame(frame, engine.LEG_COLUMNS)
    steward = legs.take(legs["mode"] == "steward")
    quotes = engine.DayQuotes(replace(_empty_day(day), vx_beta=pd.Series({2: 0.8, 4: 0.3}),
                                      futures=pd.DataFrame({"contract": ["VXJ24", "VXL24"], "month_index": [2, 4],
                                                            "expiry": pd.to_datetime(["2024-04-17", "2024-06-18"]),
                                                            "bid": 1.0, "ask": 1.0, "settle": 1.0})))
    cfg = StrategyConfig().book_config()
    # one pair: |1 x 0.8 - 1 x 0.3| x $1,000 x 10 points = $5,000 (gross would be $11,000)
    assert engine.vx_delta_dollars(steward, quotes.day, cfg, quotes) == pytest.approx(5_000.0)
    by_row = book_checks.vx_delta_dollars_by_row(alvh[alvh["mode"] == "steward"], 10.0)
    assert by_row.tolist() == pytest.approx([8_000.0, -3_000.0])


def _empty_day(day):
    return engine.MarketDay(date=day, spx=pd.DataFrame(), vix=pd.DataFrame(), futures=pd.DataFrame(), spx_open=np.nan,
                            spx_close=np.nan, vix_open=np.nan, vix_close=np.nan, rate=0.0,
                            regime=pd.Series(dtype=object),
                            statarb=pd.DataFrame(), equities=pd.DataFrame(columns=["symbol", "bid", "ask", "close"]),
                            equity_vols=pd.Series(dtype=float), vx_beta=pd.Series(dtype=float), beta_rising=False,
                            provenance="model")


def test_a_hand_made_violating_book_fails_the_sizing_rule():
    day = pd.Timestamp("2024-03-05")
    alvh, condor, account = _hand_made_books(day)
    # promoter: |10 x 0.8 - 10 x 0.3| x $1,000 x 10 = $50,000 > 0.2 x (100 - 10) x 100 x 5 = $9,000;
    # steward: $5,000 <= $9,000
    (failure,) = book_checks.sizing_rule_failures(alvh, condor, account, pd.DatetimeIndex([day]), 0.20, 10.0)
    assert failure.rule == "sizing_rule" and failure.partitions == ["2024-03-05"]
    assert {s["mode"] for s in failure.sample} == {"promoter"}
    assert failure.sample[0]["vx_delta_dollars"] == pytest.approx(50_000.0)
    assert failure.sample[0]["cap_dollars"] == pytest.approx(9_000.0)
    # between cycles (no condor open) the program's notional is the account's carried figure
    between = book_checks.sizing_rule_failures(alvh, condor.iloc[0:0], account, pd.DatetimeIndex([day]), 0.20, 10.0)
    assert [f.rule for f in between] == ["sizing_rule"] and between[0].sample[0]["cap_dollars"] == 9_000.0
    flat = account.assign(program_notional=0.0)
    none = book_checks.sizing_rule_failures(alvh, condor.iloc[0:0], flat, pd.DatetimeIndex([day]), 0.20, 10.0)
    assert none and none[0].rows == 4  # futures without any condor program to hedge always violate
    drift = book_checks.sizing_rule_failures(alvh, condor, account.assign(program_notional=1.0),
                                             pd.DatetimeIndex([day]), 0.20, 10.0)
    assert "program_notional" in [f.rule for f in drift]
