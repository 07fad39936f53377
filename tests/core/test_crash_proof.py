"""A hand-made crash: SPX falls 20 % in five sessions (1000 -> 800, 2008-10-06..10) against a small
account holding 4 short iron condors (900/950 puts, 1050/1100 calls, opened for 5.00) and one long
850 put (the L3 wing), every quote written by hand below. The equity, the margin call's day and
size, the forced exit's fills and cost, and the P&L by leg are computed here by plain arithmetic on
that quote table; the books engine and the attribution must reproduce them to the cent.

Hand computation (USD; condor value = 400 x (-P950 + P900 - C1050 + C1100), put = 100 x P850):

    close      SPX   condor value   L3 put   equity (cash 32,000 + both)   requirement   call
    10-03     1000       -4,000        150       28,150                      18,000         -
    10-06      960       -5,600        300       26,700                      18,000         -
    10-07      920      -10,000        700       22,700                      18,000         -
    10-08      880      -16,220      1,500       17,280   < 18,000           18,000        720
    10-09      840   cut at bid/ask    3,200     ... see below                   0           -

Requirement (Cboe strategy rule): (max width 50 - credit 5) x 100 x 4 = 18,000. On 10-09 the call
flagged at 10-08's close is met by closing the condors (the group the method fears least after the
VX leg and stat-arb, which are empty): buy the 950 puts at the ask 112.50, sell the 900 puts at the
bid 67.50, buy the 1050 calls at 0.45, sell the 1100 calls at 0.05, 16 contracts of fees.
"""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import attribution as attr
from alvh_pipeline.core import books as engine
from alvh_pipeline.core import condor as cd
from alvh_pipeline.core import signal_sets as ss
from alvh_pipeline.resources import StrategyConfig

EXPIRY = pd.Timestamp("2009-01-16")  # a monthly SPX expiry ~100 days out: no new condor, no L3 roll
START = pd.Timestamp("2008-10-03")  # the close the hand-made book is held at
DAYS = pd.to_datetime(["2008-10-06", "2008-10-07", "2008-10-08", "2008-10-09", "2008-10-10", "2008-10-13"])
SPX = [1000.0, 960.0, 920.0, 880.0, 840.0, 800.0, 800.0]  # START, then DAYS: -20 % in five sessions
MIDS = {  # (strike, right) -> mid at START, then at each of DAYS
    (950.0, "P"): [10, 20, 40, 75, 112, 151, 151],
    (900.0, "P"): [4, 8, 16, 35, 68, 105, 104],
    (1050.0, "C"): [6, 3, 1.5, 0.8, 0.4, 0.2, 0.2],
    (1100.0, "C"): [2, 1, 0.5, 0.25, 0.1, 0.05, 0.05],
    (850.0, "P"): [1.5, 3, 7, 15, 32, 62, 62],
}
HELD = {(900.0, "P"): 4, (950.0, "P"): -4, (1050.0, "C"): -4, (1100.0, "C"): 4, (850.0, "P"): 1}
CREDIT, CONTRACTS, CASH = 5.0, 4, 32_000.0


def half_spread(mid: float) -> float:
    return 0.5 if mid >= 2 else 0.05


def chain(i: int) -> pd.DataFrame:
    """The SPX quotes of session i (0 = START): the five held strikes only."""
    date = START if i == 0 else DAYS[i - 1]
    rows = [{"date": date, "expiry": EXPIRY, "strike": k, "option_type": r, "bid": m[i] - half_spread(m[i]),
             "ask": m[i] + half_spread(m[i]), "bid_size": 10, "ask_size": 10, "underlying": SPX[i], "rate": 0.0,
             "dividend_yield": 0.0, "model_iv": np.nan, "provenance": "synthetic"} for (k, r), m in MIDS.items()]
    return pd.DataFrame(rows)


def market_day(i: int) -> engine.MarketDay:
    date = DAYS[i - 1]
    no_futures = pd.DataFrame({"contract": pd.Series(dtype=object), "expiry": pd.Series(dtype="datetime64[ns]"),
                               "month_index": pd.Series(dtype=float), **{c: pd.Series(dtype=float) for c in
                                                                         ("bid", "ask", "settle")}})
    return engine.MarketDay(
        date=date, spx=chain(i), vix=chain(i).iloc[0:0].assign(future_price=pd.Series(dtype=float)),
        futures=no_futures, spx_open=SPX[i], spx_close=SPX[i], vix_open=45.0, vix_close=45.0, rate=0.0,
        regime=pd.Series({"regime": "crisis"}, dtype=object), statarb=pd.DataFrame(columns=ss.SIGNAL_COLUMNS),
        equities=pd.DataFrame({"symbol": pd.Series(dtype=object), **{c: pd.Series(dtype=float) for c in
                                                                      ("close", "bid", "ask")}}),
        equity_vols=pd.Series(dtype=float), vx_beta=pd.Series(dtype=float), beta_rising=False,
        provenance="synthetic", days_since_previous=int((date - (START if i == 1 else DAYS[i - 2])).days))


def held_legs() -> pd.DataFrame:
    """The book at START's close, marked at START's quotes."""
    q = chain(0).set_index(["strike", "option_type"])
    rows = []
    for (k, r), n in HELD.items():
        condor_leg = (k, r) != (850.0, "P")
        rows.append({
            "date": START, "mode": "steward", "book": "condor" if condor_leg else "alvh",
            "layer": "condor" if condor_leg else "L3",
            "position_id": "condor:20080915:20090116" if condor_leg else "L3:20080915", "instrument": "SPX",
            "kind": "option", "right": r, "strike": k, "expiry": EXPIRY, "contract": "", "quantity": float(n),
            "multiplier": 100.0, "entry_date": pd.Timestamp("2008-09-15"), "entry_price": np.nan,
            "credit": CREDIT if condor_leg else np.nan, "bid": q.loc[(k, r), "bid"], "ask": q.loc[(k, r), "ask"],
            "mark": 0.5 * (q.loc[(k, r), "bid"] + q.loc[(k, r), "ask"]), "underlying": SPX[0],
            "mark_source": "quote", "provenance": "synthetic"})
    frame = pd.DataFrame(rows).reindex(columns=engine.LEG_COLUMNS)
    return frame.astype({c: engine._empty(engine.LEG_COLUMNS)[c].dtype for c in engine.LEG_COLUMNS})


@pytest.fixture(scope="module")
def crash():
    base = StrategyConfig().book_config()
    cfg = replace(base, modes=("steward",), hedge_spend_per_month=0.0,  # nothing new is bought
                  condor_rules=cd.CondorRules(take_profit=10.0, stop_loss=1e9, exit_dte=-1))  # only the call cuts
    legs0 = held_legs()
    state = replace(engine.fresh_state("steward", CASH), legs=legs0)
    _, legs, trades, account = engine.simulate([market_day(i) for i in range(1, 7)], {"steward": state}, cfg)
    return cfg, legs0, legs, trades, account.set_index("date")


def value(i: int, strikes=None) -> float:
    """Mark value (USD) of the held legs at session i's mids, by hand."""
    keys = strikes or HELD
    return sum(HELD[k] * 100.0 * MIDS[k][i] for k in keys)


CONDOR = [(900.0, "P"), (950.0, "P"), (1050.0, "C"), (1100.0, "C")]


def test_the_hand_table_itself():
    # the module doc's numbers, so a reader can check them against the arithmetic
    assert [value(i, CONDOR) for i in range(4)] == pytest.approx([-4000, -5600, -10000, -16220])
    assert [CASH + value(i) for i in range(4)] == pytest.approx([28150, 26700, 22700, 17280])
    assert cd.condor_margin(50.0, 50.0, CREDIT, CONTRACTS) == (50 - 5) * 100 * 4 == 18_000
    assert SPX[5] / SPX[0] - 1 == pytest.approx(-0.20)


def test_equity_and_the_margin_call_day_and_size(crash):
    cfg, _, _, _, account = crash
    for i, day in enumerate(DAYS[:3], start=1):  # before the cut: cash never moves (rate 0, no trades)
        assert account.loc[day, "equity"] == pytest.approx(CASH + value(i), abs=1e-9)
        assert account.loc[day, "margin_requirement"] == pytest.approx(18_000.0, abs=1e-9)
    calls = account[account["margin_call"]]
    assert list(calls.index) == [pd.Timestamp("2008-10-08")]  # the only call: at 10-08's close
    assert calls["margin_call_size"].iloc[0] == pytest.approx(18_000.0 - 17_280.0, abs=1e-9)  # 720
    assert not calls["margin_call_vx_alone"].iloc[0]  # the condors' requirement, not the VX leg
    assert "margin call" in calls["events"].iloc[0]


def test_the_forced_exit_fills_and_its_cost(crash):
    cfg, _, _, trades, account = crash
    cut = trades[trades["reason"] == "margin call"]
    assert set(pd.to_datetime(cut["date"])) == {pd.Timestamp("2008-10-09")}
    fills = {(k, r): f for k, r, f in zip(cut["strike"], cut["right"], cut["fill"])}
    assert fills == {(950.0, "P"): 112.5, (900.0, "P"): 67.5, (1050.0, "C"): 0.45, (1100.0, "C"): 0.05}
    fees = 16 * cfg.spx_option_fee
    # buy back 4 x 950P at 112.50 and 4 x 1050C at 0.45, sell 4 x 900P at 67.50 and 4 x 1100C at 0.05
    cash_flow = 400 * (-112.5 + 67.5 - 0.45 + 0.05) - fees
    assert cut["cash_flow"].sum() == pytest.approx(cash_flow, abs=1e-9)  # -18,160 - fees
    assert cut["spread_cost"].sum() == pytest.approx(400 * (0.5 + 0.5 + 0.05 + 0.05), abs=1e-9)  # 440
    on_cut = account.loc[pd.Timestamp("2008-10-09")]
    assert on_cut["margin_requirement"] == 0.0 and not on_cut["margin_call"]  # the long put needs none
    assert on_cut["equity"] == pytest.approx(CASH + cash_flow + value(4, [(850.0, "P")]), abs=1e-9)


def test_attribution_gives_the_hand_computed_pnl_by_leg(crash):
    cfg, legs0, legs, trades, account = crash
    pnl = attr.daily_pnl(legs, trades, account.reset_index(), initial_legs=legs0,
                         initial_account=pd.DataFrame({"date": [START], "mode": ["steward"],
                                                       "equity": [CASH + value(0)]})).set_index("date")
    fees = 16 * cfg.spx_option_fee
    cut_cash = 400 * (-112.5 + 67.5 - 0.45 + 0.05) - fees
    expected_condor = [value(1, CONDOR) - value(0, CONDOR), value(2, CONDOR) - value(1, CONDOR),
                       value(3, CONDOR) - value(2, CONDOR), cut_cash - value(3, CONDOR), 0.0, 0.0]
    put = [(850.0, "P")]
    expected_l3 = [value(i, put) - value(i - 1, put) for i in range(1, 7)]
    assert expected_condor[:3] == pytest.approx([-1600, -4400, -6220])
    assert expected_l3 == pytest.approx([150, 400, 800, 1700, 3000, 0])
    np.testing.assert_allclose(pnl["pnl_condor"].to_numpy(), expected_condor, atol=1e-9)
    np.testing.assert_allclose(pnl["pnl_L3"].to_numpy(), expected_l3, atol=1e-9)
    np.testing.assert_allclose(pnl["equity_change"].to_numpy(),
                               np.array(expected_condor) + np.array(expected_l3), atol=1e-9)
    assert np.abs(pnl["attribution_residual"]).max() < 1e-9
    assert pnl.loc["2008-10-08", "margin_calls"] == 1 and pnl["margin_calls"].sum() == 1
    assert pnl.loc["2008-10-08", "margin_call_size"] == pytest.approx(720.0, abs=1e-9)
    assert pnl.loc["2008-10-09", "forced_exit_cost"] == pytest.approx(440.0 + fees, abs=1e-9)
    # over the crash the L3 put paid 6,050 while the condors lost 14,160 + fees
    assert pnl["pnl_L3"].sum() == pytest.approx(6050.0, abs=1e-9)
    assert pnl["pnl_condor"].sum() == pytest.approx(-14_160.0 - fees, abs=1e-9)
