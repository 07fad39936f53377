"""DESIGN §5's rules as the books run them, on hand-made and synthetic books: a promoter that must
breach on the VX leg alone does, on the day and for the amount computed by hand; closing a condor
keeps the hedge (the program's notional is kept between cycles); condor stops trigger on mid, not
on touch prices; the condor program is the same in both modes, sized by equity at risk."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from synthetic_market import market

from alvh_pipeline.core import allocation
from alvh_pipeline.core import books as engine
from alvh_pipeline.core import condor as cd
from alvh_pipeline.core import margin as mg
from alvh_pipeline.core import signal_sets as ss
from alvh_pipeline.core.calendar import all_sessions
from alvh_pipeline.resources import StrategyConfig

S = all_sessions()


# ---- a promoter that must breach on the VX leg alone ------------------------------------------

def _vx_day(date: pd.Timestamp, price: float) -> engine.MarketDay:
    """A day with only VX futures (M1, and the held M2 at `price`; spot VIX = `price`) and two stocks
    whose prices do not move: no chains, no signals, no interest."""
    futures = pd.DataFrame({"date": date, "contract": ["VXF09", "VXG09"], "month_index": [1, 2],
                            "expiry": pd.to_datetime(["2009-01-21", "2009-02-18"]),
                            "bid": [price - 1.0, price - 0.05], "ask": [price - 0.9, price + 0.05],
                            "settle": [price - 0.95, price]})
    equities = pd.DataFrame({"symbol": ["AAA", "BBB"], "close": [100.0, 50.0], "bid": [99.99, 49.99],
                             "ask": [100.01, 50.01]})
    return engine.MarketDay(
        date=date, spx=pd.DataFrame(), vix=pd.DataFrame(), futures=futures, spx_open=np.nan, spx_close=np.nan,
        vix_open=price, vix_close=price, rate=0.0, regime=pd.Series(dtype=object),
        statarb=pd.DataFrame(columns=ss.SIGNAL_COLUMNS),
        equities=equities, equity_vols=pd.Series(dtype=float), vx_beta=pd.Series({1: 0.9, 2: 0.7}),
        beta_rising=False, provenance="model")


def _promoter_book(entry_day: pd.Timestamp, contracts: int) -> engine.ModeState:
    """Equity $100,000: stat-arb levered 2x ($100,000 long AAA, $100,000 short BBB) and a static long
    VX position of `contracts` M2 futures bought at 60."""
    rows = [
        dict(book="statarb", layer="statarb", position_id="pair:AAA|BBB", instrument="AAA", kind="equity",
             quantity=1000.0, multiplier=1.0, entry_price=100.0, mark=100.0),
        dict(book="statarb", layer="statarb", position_id="pair:AAA|BBB", instrument="BBB", kind="equity",
             quantity=-2000.0, multiplier=1.0, entry_price=50.0, mark=50.0),
        dict(book="alvh", layer=engine.STATIC_VX_LAYER, position_id="static:20081201", instrument="VX",
             kind="future", contract="VXG09", expiry=pd.Timestamp("2009-02-18"), quantity=float(contracts),
             multiplier=1000.0, entry_price=60.0, mark=60.0),
    ]
    legs = pd.DataFrame(rows).assign(date=entry_day, mode="promoter", right="", entry_date=entry_day)
    legs = legs.assign(**{c: np.nan for c in engine.LEG_COLUMNS if c not in legs})[engine.LEG_COLUMNS]
    for c in ("date", "expiry", "entry_date"):
        legs[c] = pd.to_datetime(legs[c])
    state = engine.fresh_state("promoter", 100_000.0)
    # cash: $100,000 equity, less the long stock bought, plus the short sale's proceeds, less the
    # futures' notional (the books carry a future at its notional: cash out, value marked, so
    # equity moves by its P&L; interest is not charged on it, `books._interest`)
    return replace(state, cash=100_000.0 - 100_000.0 + 100_000.0 - contracts * 60.0 * 1000.0, legs=legs)


def test_a_promoter_breaches_margin_on_the_vx_leg_alone_on_the_day_and_for_the_amount_computed_by_hand():
    """VX falls from 60 to 35 in ten sessions (2.5 a session) against 2x levered stat-arb whose
    stocks do not move. By hand, with 2 contracts and CFE's dated maintenance of $5,000 a contract
    (`margin.VX_MARGIN`) x its stress multiplier (x2 at VIX >= 40, x1.5 from 25):
        equity_k      = 100,000 - 2 x 1,000 x 2.5 k
        requirement_k = 0.25 x 100,000 + 0.30 x 100,000 + 2 x 5,000 x stress(60 - 2.5 k)
    k = 5: 75,000 vs 75,000 (no call); k = 6 (VX 45): 70,000 < 75,000, a call of $5,000, which the VX
    leg's $30,000 loss alone covers."""
    days = S[(S >= "2008-12-02")][:10]
    cfg = replace(StrategyConfig(modes=["promoter"], short_borrow_fee=0.0).book_config(), condor_risk_per_cycle=0.1)
    states = {"promoter": _promoter_book(pd.Timestamp("2008-12-01"), contracts=2)}
    market_days = [_vx_day(d, 60.0 - 2.5 * (k + 1)) for k, d in enumerate(days)]
    _, _, trades, account = engine.simulate(market_days, states, cfg)
    maint = float(mg.VX_MARGIN["maintenance_per_contract"].iloc[0])
    k = np.arange(1, 11)
    price = 60.0 - 2.5 * k
    equity = 100_000.0 - 2 * 1000.0 * 2.5 * k
    stress = np.where(price >= 40, 2.0, np.where(price >= 25, 1.5, 1.0))
    requirement = 55_000.0 + 2 * maint * stress
    first = int(np.argmax(equity < requirement))
    assert first == 5 and (equity[:5] >= requirement[:5]).all()  # the hand computation: day 6
    acc = account.reset_index(drop=True)
    assert not acc["margin_call"].iloc[:first].any()
    assert acc["equity"].iloc[: first + 1].to_numpy() == pytest.approx(equity[: first + 1])
    assert acc["margin_requirement"].iloc[first] == pytest.approx(requirement[first])
    assert bool(acc["margin_call"].iloc[first]) and acc["margin_call_size"].iloc[first] == pytest.approx(5_000.0)
    assert bool(acc["margin_call_vx_alone"].iloc[first])
    assert acc["vx_futures_loss"].iloc[first] == pytest.approx(30_000.0)
    assert pd.Timestamp(acc["date"].iloc[first]) == days[first]
    # the next session cuts the VX leg first (the order the method fears most), at the bid
    cut = trades[(trades["reason"] == "margin call") & (pd.to_datetime(trades["date"]) == days[first + 1])]
    assert set(cut["layer"]) == {engine.STATIC_VX_LAYER} and (cut["fill"] == cut["mid"] - 0.05).all()


def test_without_the_vx_leg_the_same_book_meets_no_call():
    days = S[(S >= "2008-12-02")][:10]
    cfg = StrategyConfig(modes=["promoter"], short_borrow_fee=0.0, promoter_vx_share=0.0).book_config()
    state = _promoter_book(pd.Timestamp("2008-12-01"), contracts=2)
    state = replace(state, cash=100_000.0, legs=state.legs[state.legs["kind"] == "equity"].reset_index(drop=True))
    _, _, _, account = engine.simulate([_vx_day(d, 60.0 - 2.5 * (k + 1)) for k, d in enumerate(days)],
                                       {"promoter": state}, cfg)
    assert not account["margin_call"].any()
    assert account["equity"].to_numpy() == pytest.approx(np.full(len(days), 100_000.0))


# ---- the condor program and the hedge between cycles ------------------------------------------

CRISIS = ("2023-06-23", "2023-08-11")  # a planted crisis regime of the default seed


@pytest.fixture(scope="module")
def managed_run():
    days = market(S[S.get_loc(pd.Timestamp(CRISIS[0])) - 35].strftime("%Y-%m-%d"), CRISIS[1])
    cfg = StrategyConfig(condor_exits="managed", condor_risk_per_cycle=0.2).book_config()
    states = {m: engine.fresh_state(m, cfg.account_equity) for m in cfg.modes}
    return days, cfg, engine.simulate(days, states, cfg)


def test_closing_a_condor_keeps_the_hedge(managed_run):
    _, _, (_, legs, trades, account) = managed_run
    t = trades.assign(date=pd.to_datetime(trades["date"]))
    exits = t[(t["mode"] == "steward") & t["reason"].str.match(r"condor (stop_loss|take_profit|dte)")]
    assert len(exits), "the managed crisis run must close a condor early"
    held = legs.assign(date=pd.to_datetime(legs["date"]))
    ladder = held[(held["mode"] == "steward") & held["layer"].isin(engine.HEDGE_VX_LAYERS)]
    sessions = sorted(set(held["date"]))
    checked = 0
    for day in sorted(set(exits["date"])):
        prev = sessions[sessions.index(day) - 1]
        held_before = set(ladder.loc[ladder["date"] == prev, "position_id"])
        traded = set(t.loc[(t["date"] == day) & (t["mode"] == "steward"), "position_id"])
        kept = held_before - traded  # neither rolled nor re-sized that day
        assert kept <= set(ladder.loc[ladder["date"] == day, "position_id"])
        checked += len(kept)
        acc = account[(pd.to_datetime(account["date"]) == day) & (account["mode"] == "steward")].iloc[0]
        before = account[(pd.to_datetime(account["date"]) == prev) & (account["mode"] == "steward")].iloc[0]
        if acc["condor_max_loss"] == 0:  # between cycles: the notional (and so the cap) is carried
            assert acc["program_notional"] == before["program_notional"] > 0
            assert acc["cap_dollars"] == pytest.approx(0.2 * before["program_notional"])
    assert checked > 0, "a ladder position was held through a condor exit"


def test_condor_stops_trigger_on_mid_not_on_the_touch(managed_run):
    """A wide market alone must not stop a condor out: exit_reason sees the cost to close at mid."""
    _, cfg, (_, legs, trades, _) = managed_run
    t = trades[trades["book"] == "condor"]
    exits = t[t["reason"].str.match(r"condor (stop_loss|take_profit|dte)")]
    assert len(exits)
    for (mode, pid), closing in exits.groupby(["mode", "position_id"]):
        why = closing["reason"].iloc[0].removeprefix("condor ")
        credit = float(legs.loc[legs["position_id"] == pid, "credit"].iloc[0])
        per_unit = closing["quantity"].abs().max()
        mid_cost = float((closing["quantity"] / per_unit * closing["mid"]).sum())  # buy back shorts, sell longs
        touch_cost = float((closing["quantity"] / per_unit * closing["fill"]).sum())
        dte = (pd.Timestamp(closing["expiry"].iloc[0]) - pd.Timestamp(closing["date"].iloc[0])).days
        assert cd.exit_reason(credit, mid_cost, dte, cfg.condor_rules) == why, (mode, pid)
        assert touch_cost >= mid_cost - 1e-9  # the fill pays the spread the trigger did not read


def test_one_condor_program_in_both_modes_sized_by_equity_at_risk(managed_run):
    _, cfg, (_, _, trades, account) = managed_run
    opens = trades[trades["reason"] == "condor open"]
    strikes = {m: g.sort_values(["date", "right", "strike"])[["date", "right", "strike"]].to_numpy().tolist()
               for m, g in opens.groupby("mode")}
    assert strikes["steward"] == strikes["promoter"]  # the same legs on the same days
    acc = account.assign(date=pd.to_datetime(account["date"]))
    for mode, day in opens.assign(date=pd.to_datetime(opens["date"]))[["mode", "date"]].drop_duplicates().to_numpy():
        row = acc[(acc["mode"] == mode) & (acc["date"] == day)].iloc[0]
        # the cycle's max loss stays within risk per cycle x equity (equity at the open ~ the close's)
        assert row["condor_max_loss"] <= cfg.condor_risk_per_cycle * row["equity"] * 1.05
        assert row["condor_max_loss"] > 0.5 * cfg.condor_risk_per_cycle * row["equity"]


def test_vx_futures_settle_on_the_published_final_value_not_the_vix_open():
    day = pd.Timestamp("2008-12-17")  # VXZ08's final settlement date
    state = _promoter_book(pd.Timestamp("2008-12-16"), contracts=1)
    legs = state.legs.copy()
    legs.loc[legs["kind"] == "future", ["contract", "expiry"]] = ["VXZ08", day]
    state = replace(state, legs=legs)
    cfg = StrategyConfig(modes=["promoter"], short_borrow_fee=0.0, promoter_vx_share=0.0).book_config()
    market = replace(_vx_day(day, 55.0), vx_final_settlement={day: 52.39})  # the VIX open says 55
    _, _, trades, _ = engine.simulate([market], {"promoter": state}, cfg)
    settled = trades[trades["kind"] == "future"]
    assert list(settled["reason"]) == ["expiry (CFE final settlement value)"]
    assert settled["fill"].iloc[0] == 52.39 and settled["cash_flow"].iloc[0] == pytest.approx(52_390.0)
    _, _, proxy, _ = engine.simulate([_vx_day(day, 55.0)], {"promoter": state}, cfg)  # no published value
    assert proxy.loc[proxy["kind"] == "future", "reason"].tolist() == ["expiry (VIX open as SOQ proxy)"]


def test_the_published_values_apply_only_to_real_futures():
    fut = pd.DataFrame({"expiry": pd.to_datetime(["2008-12-17", "2009-01-21"]), "provenance": ["real", "model"]})
    finals = pd.DataFrame({"expiry": pd.to_datetime(["2008-12-17", "2009-01-21"]), "settle": [52.39, 44.0]})
    got = engine._real_final_settlements({"vix_futures": fut, "vx_final_settlements": finals})
    assert got == {pd.Timestamp("2008-12-17"): 52.39}


# ---- the steward's allocation ---------------------------------------------------------------

LATER_EXPIRIES = ["2009-06-17", "2009-07-22"]  # neither expires nor rolls in the test's 60 sessions


def _two_sleeve_day(date: pd.Timestamp, front: float, second: float, aaa: float, bbb: float) -> engine.MarketDay:
    day = _vx_day(date, second)
    futures = day.futures.assign(settle=[front, second], bid=[front - 0.05, second - 0.05],
                                 ask=[front + 0.05, second + 0.05], expiry=pd.to_datetime(LATER_EXPIRIES))
    equities = pd.DataFrame({"symbol": ["AAA", "BBB"], "close": [aaa, bbb], "bid": [aaa - 0.01, bbb - 0.01],
                             "ask": [aaa + 0.01, bbb + 0.01]})
    return replace(day, futures=futures, equities=equities, vix_close=front, vix_open=front)


def test_the_stewards_two_sleeves_contribute_equal_risk_on_every_rebalance_day():
    """A steward holding a stat-arb pair and an L2 calendar (between condor cycles: the program's
    notional carried) through 60 sessions of random prices: from the 21st, its weights are ERC on
    the trailing sleeve returns, and the two sleeves' risk contributions (rebuilt from the
    account's own returns) are equal on every such day."""
    rng = np.random.default_rng(11)
    n = 60
    days = S[S >= "2008-12-02"][:n]
    front = 45 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    second = 42 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
    aaa = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    bbb = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    state = _promoter_book(pd.Timestamp("2008-12-01"), contracts=1)
    legs = state.legs.copy()
    fut = legs["kind"] == "future"
    calendar = legs[fut].assign(layer="L2", position_id="L2:20081201", entry_price=42.0, mark=42.0,
                                expiry=pd.Timestamp(LATER_EXPIRIES[1]))
    short = calendar.assign(contract="VXF09", expiry=pd.Timestamp(LATER_EXPIRIES[0]), quantity=-1.0,
                            entry_price=45.0, mark=45.0)
    legs = pd.concat([legs[~fut], calendar, short], ignore_index=True).assign(mode="steward")
    cash = 100_000.0 - 1000.0 * (42.0 - 45.0)  # futures carried at notional (cash paid / received)
    state = replace(engine.fresh_state("steward", 100_000.0), cash=cash, legs=legs, program_notional=50_000.0,
                    l2_target=10_000.0)
    cfg = StrategyConfig(modes=["steward"], hedge_spend_per_month=0.0).book_config()
    market = [_two_sleeve_day(d, f, s, a, b) for d, f, s, a, b in zip(days, front, second, aaa, bbb)]
    _, legs_out, trades, account = engine.simulate(market, {"steward": state}, cfg)
    assert not len(trades)  # nothing traded: the sleeves are held as they are
    acc = account.assign(date=pd.to_datetime(account["date"])).reset_index(drop=True)
    returns = acc.set_index("date")[["return_statarb", "return_hedge"]]
    erc = acc[acc["allocation_basis"] == "erc"]
    assert len(erc) == n - 21  # 20 complete rows are needed (the first day has no return)
    for _, row in erc.iterrows():
        hist = returns[returns.index < row["date"]].tail(cfg.allocation_window).dropna().to_numpy()
        w = np.array([row["weight_statarb"], row["weight_hedge"]])
        rc = allocation.risk_contributions(w, np.cov(hist, rowvar=False, ddof=1))
        np.testing.assert_allclose(rc, [0.5, 0.5], atol=1e-6)
        assert abs(w[0] - 0.5) > 1e-3  # unequal sleeves: equal risk is not equal weight


# ---- fills at the next session ----------------------------------------------------------------

@pytest.fixture(scope="module")
def next_fill_runs(managed_run):
    days, cfg, close_run = managed_run
    nxt = replace(cfg, fill_timing="next")
    states = {m: engine.fresh_state(m, nxt.account_equity) for m in nxt.modes}
    return days, nxt, close_run, engine.simulate(days, states, nxt)


def test_next_session_fills_trade_the_close_decision_at_the_next_sessions_quotes(next_fill_runs):
    days, _, (_, _, close_trades, _), (_, _, trades, account) = next_fill_runs
    first = close_trades[close_trades["reason"] == "condor open"].sort_values("date").iloc[0]["date"]
    decided = close_trades[(close_trades["reason"] == "condor open") & (close_trades["date"] == first)]
    sessions = [d.date for d in days]
    filled_on = sessions[sessions.index(pd.Timestamp(first)) + 1]
    filled = trades[(trades["reason"] == "condor open (next-session fill)") & (trades["date"] == filled_on)]
    key = ["mode", "right", "strike", "expiry"]
    assert len(filled) == len(decided) == 8  # both modes' four legs
    pd.testing.assert_frame_equal(filled[key + ["quantity"]].sort_values(key).reset_index(drop=True),
                                  decided[key + ["quantity"]].sort_values(key).reset_index(drop=True))
    day = next(d for d in days if d.date == filled_on)
    quotes = day.spx.set_index(["expiry", "strike", "option_type"])
    for _, t in filled.iterrows():
        q = quotes.loc[(pd.Timestamp(t["expiry"]), t["strike"], t["right"])]
        assert t["fill"] == (q["ask"] if t["quantity"] > 0 else q["bid"])  # the next session's touch
    # nothing but settlements and forced cuts fills on its decision day
    same_day = trades[~trades["reason"].str.endswith("(next-session fill)")]
    assert set(same_day["reason"].str.replace(r"[ :].*", "", regex=True)) <= {"expiry", "margin", "sizing"}


def test_pending_orders_carry_through_the_lake_state(next_fill_runs):
    """A run split at a close that left orders equals one run: the orders travel in the account row."""
    days, cfg, _, (_, legs, trades, account) = next_fill_runs
    with_orders = account[account["pending_orders"].str.len() > 0]
    k = [d.date for d in days].index(pd.Timestamp(with_orders["date"].iloc[len(with_orders) // 2])) + 1
    states = {m: engine.fresh_state(m, cfg.account_equity) for m in cfg.modes}
    _, legs1, _, acc1 = engine.simulate(days[:k], states, cfg)
    last = days[k - 1].date
    restored = {m: engine.state_from_lake(m, legs1[(legs1["mode"] == m) & (legs1["date"] == last)],
                                          acc1[acc1["mode"] == m], cfg) for m in cfg.modes}
    assert any(s.orders is not None and len(s.orders) for s in restored.values())
    _, _, trades2, acc2 = engine.simulate(days[k:], restored, cfg)
    whole = account[pd.to_datetime(account["date"]) >= days[k].date].reset_index(drop=True)
    np.testing.assert_allclose(acc2["equity"].to_numpy(), whole["equity"].to_numpy(), rtol=0, atol=1e-6)
    assert len(trades2) == int((pd.to_datetime(trades["date"]) >= days[k].date).sum())
