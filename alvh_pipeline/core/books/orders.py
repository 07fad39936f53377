"""Fills at the next session (`BookConfig.fill_timing = "next"`): a decision taken at day t's close
is an order (`_Day.order`: the leg, the quantity to trade, the reason), filled at day t+1's quotes
after t+1's settlements, marks and any margin-call cut, before t+1's own decisions.

- Each order row is marked with t+1's quotes (`mark_legs`: the same lookups by key as the held
  legs) and fills at the touch: buys at the ask, sells at the bid, fees per contract.
- A position's orders fill together or not at all: if one of its rows is not quoted at t+1 (no
  bid / ask, or a strike only the model marks), the whole position's order lapses (an event), so a
  condor is never left with three legs; a held position is decided again from t+1's close.
- An order on a held leg (same position, instrument, right, strike, expiry, contract) changes its
  quantity (a close, a cut); any other opens a leg at the fill. A close whose leg has since settled
  lapses. A new condor's credit is its own fills: Σ -quantity x fill / contracts.
- Margin-call cuts and the sizing rule's cuts are not orders: they act on the day they are due.

Pending orders are part of a mode's state, so they are written with the day's account row
(`pending_orders`, JSON) and restored with it (`orders_from_json`)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from alvh_pipeline.core.books.quotes import mark_legs
from alvh_pipeline.core.books.tables import LEG_COLUMNS, ORDER_COLUMNS, Table, _dtype
from alvh_pipeline.core.books.trades import _Day, trade_rows

_KEY = ("position_id", "instrument", "right", "strike", "expiry", "contract")


def _keys(t: Table) -> list[tuple]:
    strike = np.where(np.isnan(t["strike"]), -1.0, t["strike"]).tolist()
    expiry = t["expiry"].astype("datetime64[ns]").view("i8").tolist()
    return list(zip(t["position_id"].tolist(), t["instrument"].tolist(), t["right"].tolist(), strike, expiry,
                    t["contract"].tolist()))


def fill_orders(d: _Day, orders: Table | None) -> None:
    """Yesterday's orders, filled at today's quotes (module doc)."""
    if orders is None or not len(orders):
        return
    marked = mark_legs(orders, d.day, d.quotes)
    quoted = (np.isfinite(marked["bid"]) & np.isfinite(marked["ask"]) & (marked["mark_source"] == "quote"))
    held = {k: i for i, k in enumerate(_keys(d.legs))} if len(d.legs) else {}
    keys = _keys(marked)
    on_held = np.array([k in held for k in keys], dtype=bool)
    closing_gone = ~on_held & (orders["action"] == "change")
    pids = marked["position_id"]
    bad = {p for p in set(pids[~quoted | closing_gone].tolist())}
    if bad:
        d.events.append(f"orders lapsed (not quoted at this session, or settled): {', '.join(sorted(bad))}")
    go = np.array([p not in bad for p in pids.tolist()], dtype=bool)
    if not go.any():
        return
    todo = marked.take(go)
    qty = todo["quantity"]
    for reason in dict.fromkeys(todo["reason"].tolist()):  # one trade set per reason, in order
        sel = todo["reason"] == reason
        d.book_trades(trade_rows(todo.take(sel), qty[sel], d.day, d.mode, f"{reason} (next-session fill)", d.cfg))
    _apply(d, todo, [k for k, g in zip(keys, go) if g], held)


def _apply(d: _Day, todo: Table, keys: list[tuple], held: dict[tuple, int]) -> None:
    """The filled orders in the book: quantity changes on held legs, new legs at their fills."""
    legs = d.legs
    if len(legs):
        qty = legs["quantity"].copy()
        for i, k in enumerate(keys):
            if k in held:  # a close or cut, or (rare) an open adding to a leg already held
                qty[held[k]] += todo["quantity"][i]
        legs = legs.assign(quantity=qty)
        legs = legs.take(np.abs(legs["quantity"]) > 1e-12)
    new = np.array([k not in held for k in keys], dtype=bool) & (todo["action"] == "open")
    if new.any():
        opened = todo.take(new)
        fill = np.where(opened["quantity"] > 0, opened["ask"], opened["bid"])
        opened = opened.assign(entry_date=d.day.date, entry_price=fill, date=d.day.date,
                               credit=_credits(opened, fill))
        opened = Table({c: opened[c] for c in LEG_COLUMNS})
        legs = Table.concat([legs, opened]) if len(legs) else opened
    d.legs = legs


def _credits(opened: Table, fill: np.ndarray) -> np.ndarray:
    """A new condor's credit from its own fills (points per condor); NaN for other legs."""
    out = np.full(len(opened), np.nan)
    condor = opened["book"] == "condor"
    for pid in set(opened["position_id"][condor].tolist()):
        rows = condor & (opened["position_id"] == pid)
        n = float(np.abs(opened["quantity"][rows]).max())
        out[rows] = float(np.sum(-opened["quantity"][rows] * fill[rows])) / n
    return out


def pending(d: _Day) -> Table | None:
    return Table.concat(d.orders) if d.orders else None


def orders_json(orders: Table | None) -> str:
    """The pending orders as JSON text for the account row ("" when there are none)."""
    if orders is None or not len(orders):
        return ""
    frame = orders.to_frame()
    for c in ("date", "expiry", "entry_date"):
        frame[c] = frame[c].dt.strftime("%Y-%m-%d")
    return frame.to_json(orient="records")


def orders_from_json(text: object) -> Table | None:
    """`orders_json`'s inverse (None for no orders)."""
    if not isinstance(text, str) or not text:
        return None
    frame = pd.DataFrame(json.loads(text))
    for c in ORDER_COLUMNS:
        if c not in frame:
            frame[c] = np.nan
        if _dtype(c) == "datetime64[ns]":
            frame[c] = pd.to_datetime(frame[c])
        elif _dtype(c) == "object":
            frame[c] = frame[c].fillna("").astype(str) if c != "mark_source" else frame[c].astype(object)
    return Table.from_frame(frame, ORDER_COLUMNS)
