"""Trades and settlement: fills of a quantity at bid / ask with fees per contract, expiry
settlements (SPX monthlies AM-settled on today's open as the SOQ proxy, weeklies at the close; VIX
options and VX futures on the CFE final settlement value where the market holds it, else on
today's VIX open; labelled `settle_source`), new legs from quote rows, and `_Day`: one mode's
working state during a day, through which every cash movement goes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alvh_pipeline.core import condor
from alvh_pipeline.core.books.margin import _values
from alvh_pipeline.core.books.model import BookConfig, MarketDay, ModeState
from alvh_pipeline.core.books.quotes import DayQuotes
from alvh_pipeline.core.books.tables import (
    LEG_COLUMNS,
    TRADE_COLUMNS,
    Table,
    _col,
    _group_sums,
    _nansum,
    sleeve_of,
)

# ---- trades ---------------------------------------------------------------------------------

def _fee(kind: np.ndarray, instrument: np.ndarray, qty: np.ndarray, cfg: BookConfig) -> np.ndarray:
    per = np.select([kind == "future", kind == "equity", instrument == "VIX"],
                    [cfg.vx_future_fee, cfg.equity_fee_per_share, cfg.vix_option_fee], cfg.spx_option_fee)
    return per * np.abs(qty)


def trade_rows(legs: Table, qty: np.ndarray, day: MarketDay, mode: str, reason: str, cfg: BookConfig) -> Table:
    """Fills of `qty` (signed: + buys at ask, - sells at bid) on the instruments of `legs`."""
    qty = np.asarray(qty, dtype=float)
    mid, mult = legs["mark"], legs["multiplier"]
    fill = np.where(qty > 0, legs["ask"], legs["bid"])
    fee = _fee(legs["kind"], legs["instrument"], qty, cfg)
    return Table.new(
        TRADE_COLUMNS, len(legs), date=day.date, mode=mode, book=legs["book"], layer=legs["layer"],
        position_id=legs["position_id"], instrument=legs["instrument"], kind=legs["kind"], right=legs["right"],
        strike=legs["strike"], expiry=legs["expiry"], contract=legs["contract"], quantity=qty, multiplier=mult,
        fill=fill, mid=mid, spread_cost=np.abs(fill - mid) * mult * np.abs(qty), fee=fee,
        cash_flow=-qty * fill * mult - fee, reason=reason, provenance=day.provenance)


def settle_rows(legs: Table, value: np.ndarray, day: MarketDay, mode: str, source: str, cfg: BookConfig) -> Table:
    """Expiry settlements: the position closes at its settlement value, no spread, no fee."""
    t = trade_rows(legs, -legs["quantity"], day, mode, f"expiry ({source})", cfg)
    return t.assign(fill=value, mid=value, spread_cost=0.0, fee=0.0,
                    cash_flow=legs["quantity"] * value * legs["multiplier"])


# ---- settlement -----------------------------------------------------------------------------

def settlement_values(legs: Table, day: MarketDay) -> tuple[np.ndarray, np.ndarray]:
    """(value per unit, source label) of legs expiring on or before today. SPX monthlies are
    AM-settled on the opening quotation (today's SPX open stands in for the SOQ), weeklies
    PM-settled at the close; VIX options and VX futures settle on VIX's opening quotation: the
    published CFE final settlement value where the market holds it (`vx_final_settlement`), else
    today's VIX open stands in for it."""
    spx = _col(legs, "instrument") == "SPX"
    expiry = pd.DatetimeIndex(_col(legs, "expiry"))
    monthly = condor.is_monthly_expiry(expiry)
    final = np.array([day.vx_final_settlement.get(e, np.nan) for e in expiry], dtype=float)
    published = ~spx & np.isfinite(final)
    vix = np.where(published, final, day.vix_open)
    underlying = np.where(spx, np.where(monthly, day.spx_open, day.spx_close), vix)
    source = np.where(spx, np.where(monthly, "SPX open as SOQ proxy", "SPX close"),
                      np.where(published, "CFE final settlement value", "VIX open as SOQ proxy"))
    strike = _col(legs, "strike", float)
    call = _col(legs, "right") == "C"
    intrinsic = np.where(call, np.maximum(underlying - strike, 0.0), np.maximum(strike - underlying, 0.0))
    value = np.where(_col(legs, "kind") == "future", underlying, intrinsic)
    return value, source


# ---- positions ------------------------------------------------------------------------------

def _new_legs(rows: pd.DataFrame | dict, day: MarketDay, mode: str, book: str, layer: str,
              position_id: str | np.ndarray, qty: np.ndarray, instrument: str | np.ndarray, kind: str,
              multiplier: float, credit: float = np.nan) -> Table:
    """New legs from quote rows (a DataFrame or a dict of arrays)."""
    def num(name: str, default: float) -> np.ndarray | float:
        return np.asarray(rows[name], dtype=float) if name in rows else default

    bid, ask = np.asarray(rows["bid"], dtype=float), np.asarray(rows["ask"], dtype=float)
    return Table.new(
        LEG_COLUMNS, len(bid), date=day.date, mode=mode, book=book, layer=layer, position_id=position_id,
        instrument=instrument, kind=kind, right=np.asarray(rows["option_type"]) if "option_type" in rows else "",
        strike=num("strike", np.nan), expiry=rows["expiry"] if "expiry" in rows else pd.NaT,
        contract=np.asarray(rows["contract"]) if "contract" in rows else "", quantity=qty, multiplier=multiplier,
        entry_date=day.date, entry_price=np.where(np.asarray(qty) > 0, ask, bid), credit=credit,
        mark=num("mid", np.nan) if "mid" in rows else num("settle", np.nan), bid=bid, ask=ask,
        delta=num("delta", 1.0), gamma=num("gamma", 0.0), vega=num("vega", 0.0), theta=num("theta", 0.0),
        underlying=_level(rows, kind, len(bid)), iv=num("iv", np.nan), beta_to_vix=np.nan, vx_equivalent=0.0,
        mark_source="quote", provenance=day.provenance)


def _level(rows: pd.DataFrame | dict, kind: str, n: int) -> np.ndarray:
    """The underlying level of new legs: an option's from its quote row when it carries it (else
    filled from the day's quotes when the leg is opened), a future's settle, a stock's close."""
    if "underlying_level" in rows:
        return np.asarray(rows["underlying_level"], dtype=float)
    if kind == "future" and "settle" in rows:
        return np.asarray(rows["settle"], dtype=float)
    if kind == "equity" and "mid" in rows:
        return np.asarray(rows["mid"], dtype=float)
    return np.full(n, np.nan)


# ---- one day: the working state -------------------------------------------------------------

class _Day:
    """The working state of one mode during one day: legs, cash and the day's trades."""

    def __init__(self, state: ModeState, day: MarketDay, cfg: BookConfig, quotes: DayQuotes) -> None:
        self.state, self.day, self.cfg, self.quotes = state, day, cfg, quotes
        self.mode = state.mode
        self.legs: Table = state.legs
        self.cash = state.cash
        self.sleeve_cash = dict(state.sleeve_cash)
        self.trades: list[Table] = []
        self.events: list[str] = []
        self.last_condor_expiry = state.last_condor_expiry
        self.hedge_month = state.last_hedge_spend_month
        self.hedge_budget_left = state.hedge_budget_left
        self.l2_target = state.l2_target
        # fill_timing "next": today's decisions become orders, filled at the next session's quotes
        self.deferred = cfg.fill_timing == "next"
        self.orders: list[Table] = []

    # every cash movement goes through here, so sleeve P&L and the account agree
    def book_trades(self, t: Table) -> None:
        if not len(t):
            return
        self.trades.append(t)
        self.cash += _nansum(t["cash_flow"])
        for book, flow in _group_sums(t["book"], t["cash_flow"]).items():
            self.sleeve_cash[sleeve_of(book)] += flow

    def close(self, mask: np.ndarray, reason: str, forced: bool = False) -> None:
        """Close the legs at `mask`: now, or (fill_timing "next", unless `forced`: a margin call's or
        the sizing rule's cut) as an order filled at the next session."""
        if not mask.any():
            return
        closing = self.legs.take(mask)
        if self.deferred and not forced:
            self.order(closing.assign(quantity=-closing["quantity"]), reason, "change")
            return
        self.book_trades(trade_rows(closing, -closing["quantity"], self.day, self.mode, reason, self.cfg))
        self.legs = self.legs.take(~mask)

    def order(self, legs: Table, reason: str, action: str) -> None:
        """A decision for the next session: `legs` with the quantity to trade (+ buy, - sell);
        `action` "open" (a new position) or "change" (of held legs)."""
        n = len(legs)
        self.orders.append(Table({**{c: legs[c] for c in LEG_COLUMNS}, "reason": np.full(n, reason, object),
                                  "action": np.full(n, action, object)}))

    def open(self, new: Table, reason: str) -> None:
        if not len(new):
            return
        if self.deferred:
            self.order(new, reason, "open")
            return
        opt = (new["kind"] == "option") & np.isnan(new["underlying"])
        if opt.any():  # the level each option's greeks were taken against, from the day's quotes
            level = new["underlying"].copy()
            level[opt] = self.quotes.underlying_levels(new.take(opt))
            new = new.assign(underlying=level)
        self.book_trades(trade_rows(new, new["quantity"], self.day, self.mode, reason, self.cfg))
        self.legs = Table.concat([self.legs, new]) if len(self.legs) else new

    def has(self, column: str, value: str) -> np.ndarray:
        return self.legs[column] == value

    def equity(self) -> float:
        return self.cash + _nansum(_values(self.legs)) if len(self.legs) else self.cash


def _days_to_expiry(legs: Table, date: pd.Timestamp) -> np.ndarray:
    """Whole calendar days from `date` to each leg's expiry (`.dt.days`); NaN without an expiry."""
    return np.floor((legs["expiry"] - date.to_datetime64()) / np.timedelta64(1, "D"))


def _settle_expiries(d: _Day) -> None:
    if not len(d.legs):
        return
    mask = (d.legs["expiry"] <= d.day.date.to_datetime64()) & np.isin(d.legs["kind"], ["option", "future"])
    if not mask.any():
        return
    expiring = d.legs.take(mask)
    value, source = settlement_values(expiring, d.day)
    rows = []
    for src in np.unique(source):
        sel = source == src
        rows.append(settle_rows(expiring.take(sel), value[sel], d.day, d.mode, str(src), d.cfg))
    for t in rows:
        d.book_trades(t)
    d.legs = d.legs.take(~mask)
