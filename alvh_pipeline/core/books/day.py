"""The day loop: one day of one mode (`step`) and a run of every mode through the days
(`simulate`), with the allocation's sleeve weights, interest on cash and the account row.

A day t (`step`) starts from the state the lake holds for t-1 (open legs, the account, pending
orders), and:
1. accrues interest (cash at the T-bill, short stock less the borrow fee; futures' notional not
   financed), settles what expires today (SPX monthlies on today's open as the SOQ proxy, weeklies
   at the close; VIX options and VX futures on the CFE final settlement value where the market
   holds it, else today's VIX open),
2. marks the legs to today's quotes (a strike no longer quoted is marked on the same expiry's
   nearest-strike implied vol and labelled `mark_source` = "model"), cuts positions if yesterday's
   close left a margin call, and fills yesterday's orders (fill_timing "next"),
3. exits: the condor program's managed exits if configured (triggers on mid); hedge rolls (L1 at
   <= 7 DTE, L3 at <= 30 DTE, L2 and the static VX when the long month becomes the front),
4. allocation: steward = ERC between stat-arb and the hedge, promoter = stat-arb's Sharpe share
   levered to the gross limit (`core.allocation`); stat-arb exits and entries,
5. the condor program's entry on its monthly cycle, sized by equity at risk; its notional (max
   loss) is kept between cycles,
6. the hedge: the steward's ladder (option layers, L2 sized to its net VX delta target with
   hysteresis, futures or the second engine) and the sizing rule (net VX delta dollars <= cap x
   the program's notional); the promoter's static long VX future,
7. margin, a margin call flagged for tomorrow (and whether the VX futures' loss alone covers it),
   and the account row.

Everything is computed from rows dated <= t. The day loop is inherent (each day starts from the
previous day's positions); inside a day every operation is vectorized over legs and quotes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from alvh_pipeline.core import allocation as alloc
from alvh_pipeline.core.books.entries import _condor_exits, _cut_for_margin_call, _hedge_rolls, _open_condor, _statarb
from alvh_pipeline.core.books.hedge import _enforce_sizing_rule, _open_hedge, _resize_l2, _static_vx
from alvh_pipeline.core.books.margin import (
    STATIC_VX_LAYER,
    _leg_beta,
    _values,
    condor_max_loss,
    liquidation_value,
    margin_components,
    vx_delta_dollars,
    vx_equivalent,
    vx_futures_loss,
)
from alvh_pipeline.core.books.model import BookConfig, MarketDay, ModeState
from alvh_pipeline.core.books.orders import fill_orders, orders_json, pending
from alvh_pipeline.core.books.quotes import DayQuotes, mark_legs
from alvh_pipeline.core.books.tables import (
    LEG_COLUMNS,
    LEG_SORT,
    Table,
    _group_sums,
    _nansum,
    _sort,
    empty_legs,
    empty_trades,
    sleeve_of,
)
from alvh_pipeline.core.books.trades import _Day, _settle_expiries

# ---- one day --------------------------------------------------------------------------------

@dataclass
class DayResult:
    legs: pd.DataFrame  # open legs at today's close (LEG_COLUMNS)
    trades: pd.DataFrame  # today's fills and settlements (TRADE_COLUMNS)
    account: dict  # one row of books/account


def step(state: ModeState, day: MarketDay, cfg: BookConfig, quotes: DayQuotes | None = None) -> tuple[ModeState,
                                                                                                      DayResult]:
    """Day t for one mode, from the state at t-1's close (module doc for the order of events)."""
    quotes = DayQuotes(day) if quotes is None else quotes
    new_state, legs, trades, account = _step(_with_table(state), day, cfg, quotes)
    return (_with_frame(new_state),
            DayResult(legs.to_frame() if len(legs) else empty_legs(),
                      trades.to_frame() if trades is not None else empty_trades(), account))


def _with_table(state: ModeState) -> ModeState:
    """The state `_step` works on: legs as a Table, sleeve returns as `_Returns` (when they can be)."""
    if not isinstance(state.legs, Table):
        state = replace(state, legs=Table.from_frame(state.legs, LEG_COLUMNS))
    if isinstance(state.sleeve_returns, pd.DataFrame) and _Returns.fits(state.sleeve_returns):
        state = replace(state, sleeve_returns=_Returns.from_frame(state.sleeve_returns))
    return state


def _with_frame(state: ModeState) -> ModeState:
    if isinstance(state.legs, Table):
        state = replace(state, legs=state.legs.to_frame())
    if isinstance(state.sleeve_returns, _Returns):
        state = replace(state, sleeve_returns=state.sleeve_returns.to_frame())
    return state


class _Returns:
    """Trailing sleeve returns as arrays (dates strictly increasing, one column per SLEEVES): what
    `alloc.mode_weights` selects from a frame, without a frame built and sorted every day."""

    __slots__ = ("dates", "values")

    def __init__(self, dates: np.ndarray, values: np.ndarray) -> None:
        self.dates, self.values = dates, values

    @staticmethod
    def fits(frame: pd.DataFrame) -> bool:
        """Whether `frame` is held as is: the sleeves' columns as floats, dates strictly increasing
        (mode_weights' sort is then a no-op); otherwise the frame is kept and mode_weights reads it."""
        if not all(s in frame and frame[s].dtype == float for s in alloc.SLEEVES):
            return False
        dates = pd.DatetimeIndex(frame.index)
        return dates.is_monotonic_increasing and dates.is_unique and not dates.hasnans

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> _Returns:
        return cls(pd.DatetimeIndex(frame.index).to_numpy("datetime64[ns]"),
                   frame[list(alloc.SLEEVES)].to_numpy(float))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, index=pd.DatetimeIndex(self.dates), columns=list(alloc.SLEEVES))

    def trailing(self, day: pd.Timestamp, window: int, columns: list[int]) -> np.ndarray:
        """mode_weights' rows of `columns`: dated before `day`, the last `window`, those without a NaN."""
        rows = self.values[self.dates < day.to_datetime64()][:, columns]
        rows = rows[max(len(rows) - window, 0):]
        return rows[~np.isnan(rows).any(axis=1)]


_ALLOCATED_COLUMNS = [alloc.SLEEVES.index(s) for s in alloc.ALLOCATED]


def _weights(returns: pd.DataFrame | _Returns, date: pd.Timestamp, mode: str, cfg: BookConfig
             ) -> tuple[dict[str, float], str]:
    """The ALLOCATED sleeves' weights and their basis (prior / erc / sharpe) from the trailing returns."""
    if not isinstance(returns, _Returns):
        returns = _Returns.from_frame(returns.sort_index())
    return alloc.weights_from_history(returns.trailing(date, cfg.allocation_window, _ALLOCATED_COLUMNS), mode)


def _append_returns(history: pd.DataFrame | _Returns, date: pd.Timestamp, returns: dict[str, float],
                    keep: int) -> pd.DataFrame | _Returns:
    """`history` and today's row, the last `keep` rows."""
    if isinstance(history, _Returns) and (not len(history.dates) or date.to_datetime64() > history.dates[-1]):
        row = np.array([[returns[s] for s in alloc.SLEEVES]], dtype=float)
        dates = np.append(history.dates, date.to_datetime64().astype("datetime64[ns]"))
        return _Returns(dates[-keep:], np.vstack([history.values, row])[-keep:])
    if isinstance(history, _Returns):
        history = history.to_frame()
    history = pd.concat([history, pd.DataFrame([returns], index=[date])])
    return history.iloc[-keep:]


def _step(state: ModeState, day: MarketDay, cfg: BookConfig, quotes: DayQuotes
          ) -> tuple[ModeState, Table, Table | None, dict]:
    """`step` on Tables: (new state, legs at the close, the day's trades or None, account row)."""
    d = _Day(state, day, cfg, quotes)
    interest = _interest(d.cash, state.legs, day, cfg)
    d.cash += interest

    _settle_expiries(d)
    d.legs = mark_legs(d.legs, day, quotes)
    margin_call_cut = _cut_for_margin_call(d) if state.margin_call > 0 else 0.0
    fill_orders(d, state.orders)  # fill_timing "next": yesterday's decisions, at today's quotes
    _condor_exits(d)
    _hedge_rolls(d)

    equity_open = d.equity()
    allocated, basis = _weights(state.sleeve_returns, day.date, state.mode, cfg)
    weights = _sleeve_weights(allocated, state.mode, cfg)
    _statarb(d, _statarb_capital(allocated, state.mode, max(equity_open, 0.0), cfg))
    _open_condor(d, max(equity_open, 0.0))
    notional = condor_max_loss(d.legs) or state.program_notional  # kept between cycles (DESIGN §5)
    if state.mode == "steward":
        _open_hedge(d, weights["hedge"] * max(equity_open, 0.0), weights["hedge"])
        _resize_l2(d, notional, weights["hedge"])
        _enforce_sizing_rule(d, notional)
    else:
        _static_vx(d, max(equity_open, 0.0))

    # the lake's row order: a state restored from the lake sums in the same order (bit-identical runs)
    legs = _sort(d.legs, LEG_SORT)
    if len(legs):
        vx_eq = vx_equivalent(legs)
        legs = legs.assign(vx_equivalent=vx_eq, beta_to_vix=np.where(vx_eq != 0, _leg_beta(legs, day, quotes), np.nan),
                           date=day.date)
    equity = d.equity()
    components = margin_components(legs, day)
    requirement = float(sum(components.values()))
    margin_call = max(requirement - equity, 0.0) if len(legs) else 0.0
    vx_loss = vx_futures_loss(legs)
    if margin_call > 0:
        d.events.append(f"margin call: equity {equity:,.0f} below maintenance {requirement:,.0f}")

    # sleeve P&L: change in (cumulative sleeve cash flows + sleeve marks) since yesterday
    values = {s: d.sleeve_cash[s] for s in alloc.SLEEVES}
    if len(legs):
        for book, v in _group_sums(legs["book"], _values(legs)).items():
            values[sleeve_of(book)] += v
    pnl = {s: values[s] - state.sleeve_value.get(s, 0.0) for s in alloc.SLEEVES}
    prev_capital = {s: state.weights.get(s, np.nan) * (state.cash + _nansum(_values(state.legs))
                                                        if len(state.legs) else state.cash) for s in alloc.SLEEVES}
    # a sleeve that held nothing at yesterday's close has no return (NaN), not 0: a flat sleeve's
    # zero variance and zero Sharpe would otherwise lock its weight at 0 (or at everything) for good
    held = {sleeve_of(b) for b in np.unique(state.legs["book"])} if len(state.legs) else set()
    returns = {s: pnl[s] / prev_capital[s] if s in held and prev_capital[s] and np.isfinite(prev_capital[s])
               else np.nan for s in alloc.SLEEVES}
    history = _append_returns(state.sleeve_returns, day.date, returns, cfg.allocation_window + 5)

    trades = Table.concat(d.trades) if d.trades else None
    cml = condor_max_loss(legs)
    notional = cml or state.program_notional
    fut = legs["kind"] == "future" if len(legs) else np.zeros(0, dtype=bool)
    account = {
        "date": day.date, "mode": state.mode, "cash": d.cash, "equity": equity,
        "liquidation_equity": d.cash + (liquidation_value(legs) if len(legs) else 0.0),
        "margin_requirement": requirement, **{f"margin_{k}": v for k, v in components.items()},
        "margin_call": margin_call > 0, "margin_call_size": margin_call,
        # DESIGN §5: a call whose shortfall the VX futures leg's loss alone would cause (its loss
        # since the open contracts were bought covers the shortfall)
        "margin_call_vx_alone": bool(margin_call > 0 and vx_loss >= margin_call), "vx_futures_loss": vx_loss,
        "margin_call_cut": margin_call_cut, "interest": interest,
        "spread_costs": _nansum(trades["spread_cost"]) if trades is not None else 0.0,
        "fees": _nansum(trades["fee"]) if trades is not None else 0.0,
        "condor_max_loss": cml, "program_notional": notional,
        "vx_delta_dollars": vx_delta_dollars(legs, day, cfg, quotes),
        "vx_delta_dollars_static": vx_delta_dollars(legs, day, cfg, quotes, (STATIC_VX_LAYER,)),
        "vx_futures_contracts": float(np.abs(legs["quantity"][fut]).sum()) if len(legs) else 0.0,
        "cap_dollars": cfg.hedge_cap * notional, "l2_target_dollars": d.l2_target,
        "allocation_basis": basis,
        **{f"weight_{s}": weights[s] for s in alloc.SLEEVES},
        **{f"pnl_{s}": pnl[s] for s in alloc.SLEEVES},
        **{f"return_{s}": returns[s] for s in alloc.SLEEVES},
        **{f"sleeve_cash_{s}": d.sleeve_cash[s] for s in alloc.SLEEVES},
        **{f"sleeve_value_{s}": values[s] for s in alloc.SLEEVES},
        "hedge_budget_left": d.hedge_budget_left, "hedge_budget_month": d.hedge_month,
        "last_condor_expiry": d.last_condor_expiry,
        "events": "; ".join(d.events), "provenance": day.provenance,
        "pending_orders": orders_json(pending(d)),
    }
    new_state = ModeState(state.mode, d.cash, legs, d.sleeve_cash, values, history, weights, margin_call,
                          d.last_condor_expiry, d.hedge_month, d.hedge_budget_left, notional, d.l2_target,
                          pending(d))
    return new_state, legs, trades, account


def _interest(cash: float, legs: Table, day: MarketDay, cfg: BookConfig) -> float:
    """A day's interest, actual/360: the T-bill on the cash balance (short-sale proceeds included),
    less the borrow fee on the short stock's value at yesterday's marks, so the proceeds earn the
    T-bill minus the fee, not the full rate. The books carry a future at its notional (cash paid at
    the fill, value marked); a future needs no financing, so that notional is added back."""
    accrual = day.days_since_previous / 360.0
    short_value = futures_notional = 0.0
    if len(legs):
        eq = (legs["kind"] == "equity") & (legs["quantity"] < 0)
        short_value = float(-np.sum(legs["quantity"][eq] * legs["mark"][eq]))
        fut = legs["kind"] == "future"
        futures_notional = float(np.sum(legs["quantity"][fut] * legs["multiplier"][fut] * legs["mark"][fut]))
    return (cash + futures_notional) * day.rate * accrual - cfg.short_borrow_fee * short_value * accrual


def _sleeve_weights(allocated: dict[str, float], mode: str, cfg: BookConfig) -> dict[str, float]:
    """The account's sleeve weights: the allocated pair, and the condor program's equity at risk.
    The promoter's hedge weight is its static VX notional share (what its hedge returns are per)."""
    hedge = allocated["hedge"] if mode == "steward" else cfg.promoter_vx_share
    return {"statarb": allocated["statarb"], "condor": cfg.condor_risk_per_cycle, "hedge": hedge}


def _statarb_capital(allocated: dict[str, float], mode: str, equity: float, cfg: BookConfig) -> float:
    """What the pairs are sized on (their gross is capped at 1x it, `BookConfig.statarb_rules`):
    the steward's ERC share of equity, unlevered; the promoter's Sharpe share levered to the gross limit."""
    leverage = 1.0 if mode == "steward" else cfg.gross_limit
    return allocated["statarb"] * leverage * equity


# ---- the run --------------------------------------------------------------------------------

def simulate(days: list[MarketDay], states: dict[str, ModeState], cfg: BookConfig,
             quotes_by_day: list[DayQuotes] | None = None
             ) -> tuple[dict[str, ModeState], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Run every mode through `days` in order. Returns the final states and the legs, trades and
    account rows of every day (legs: the book at each day's close). `quotes_by_day`: the days'
    `DayQuotes` when a caller re-runs the same market under several configurations (their marks
    and memoized selections are keyed by the rules they depend on, so they can be shared)."""
    legs: list[Table] = []
    trades: list[Table] = []
    accounts = []
    running = {mode: _with_table(states[mode]) for mode in cfg.modes}
    for i, day in enumerate(days):
        quotes = DayQuotes(day) if quotes_by_day is None else quotes_by_day[i]  # marked once, shared by the modes
        for mode in cfg.modes:
            running[mode], day_legs, day_trades, account = _step(running[mode], day, cfg, quotes)
            if len(day_legs):
                legs.append(day_legs)
            if day_trades is not None:
                trades.append(day_trades)
            accounts.append(account)
    for mode in cfg.modes:
        states[mode] = _with_frame(running[mode])
    legs_f = Table.concat(legs).to_frame() if legs else empty_legs()
    trades_f = Table.concat(trades).to_frame() if trades else empty_trades()
    return states, legs_f, trades_f, pd.DataFrame(accounts)


def book_greeks(legs: pd.DataFrame) -> pd.DataFrame:
    """Per (date, mode, book): Σ quantity × multiplier × greek over the legs (delta in units of
    the underlying, gamma per point, vega per vol point, theta per day; USD per unit move)."""
    g = ["delta", "gamma", "vega", "theta"]
    scaled = legs[g].mul(legs["quantity"] * legs["multiplier"], axis=0)
    return scaled.groupby([legs["date"], legs["mode"], legs["book"]]).sum().reset_index()
