"""Exits and entries of one mode's day: the cut a margin call left by yesterday's close forces
(at today's bid / ask), condor exits (take-profit / stop / 21 DTE, triggered on the cost to close
at mid), hedge rolls (L1 at <= 7 DTE, L3 at <= 30 DTE, L2 and the static VX when their long month
becomes the front), stat-arb exits, stops and entries from the day's signals, and the condor
program's entry on its monthly cycle, sized by equity at risk per cycle."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alvh_pipeline.core import condor
from alvh_pipeline.core import statarb_book as sab
from alvh_pipeline.core.books.margin import HEDGE_VX_LAYERS, STATIC_VX_LAYER, margin_requirement
from alvh_pipeline.core.books.quotes import DayQuotes, _Chain
from alvh_pipeline.core.books.tables import SPX_MULT, Table, _group_sums, _nansum
from alvh_pipeline.core.books.trades import _Day, _days_to_expiry, _new_legs


def _cut_for_margin_call(d: _Day) -> float:
    """Yesterday's close left equity below maintenance: today, close whole groups at bid/ask in
    the order the method fears most (VX futures and synthetic futures, then stat-arb, then the
    condors, then the rest) until the requirement released covers the shortfall."""
    shortfall = d.state.margin_call
    released = 0.0
    before = margin_requirement(d.legs, d.day)
    for group in ((*HEDGE_VX_LAYERS, STATIC_VX_LAYER), ("statarb",), ("condor",), ("L1", "L3")):
        if released >= shortfall or not len(d.legs):
            break
        mask = np.isin(d.legs["layer"], group)
        if not mask.any():
            continue
        d.close(mask, "margin call", forced=True)
        released = before - margin_requirement(d.legs, d.day)
    d.events.append(f"margin call cut: shortfall {shortfall:,.0f}, requirement released {released:,.0f}")
    return released


def _condor_exits(d: _Day) -> None:
    rows = np.flatnonzero(d.has("book", "condor"))
    if not len(rows):
        return
    c = d.legs.take(rows)
    if d.cfg.condor_rules.held_to_expiry:
        return
    # the triggers read the cost to close at mid (DESIGN §5): a spread that widens alone does not
    # stop a condor out; the close itself fills at bid/ask (`_Day.close`)
    close_px = -np.sign(c["quantity"]) * c["mark"]
    dte = _days_to_expiry(c, d.day.date)
    pids = np.unique(c["position_id"])
    cost = _group_sums(c["position_id"], close_px)
    credit = [_first_valid(c["credit"][c["position_id"] == p]) for p in pids]
    min_dte = [dte[c["position_id"] == p].min() for p in pids]
    reason = condor.exit_reason(np.array(credit), np.array([cost[p] for p in pids]), np.array(min_dte),
                                d.cfg.condor_rules)
    for why in ("take_profit", "stop_loss", "dte"):
        closing = set(pids[reason == why].tolist())
        if closing:
            d.close(np.array([p in closing for p in d.legs["position_id"].tolist()], dtype=bool), f"condor {why}")


def _first_valid(values: np.ndarray) -> float:
    """groupby "first": the first non-NaN value, NaN when there is none."""
    ok = values[~np.isnan(values)]
    return float(ok[0]) if len(ok) else np.nan


def _hedge_rolls(d: _Day) -> None:
    """Time-shifting: L1 rolls at <= l1_roll_dte, L3 at <= l3_roll_dte, L2 / synthetic when the
    long month has become the front month (the new position is opened by `_open_hedge`)."""
    if not len(d.legs):
        return
    r = d.cfg.ladder_rules
    d.close(d.has("layer", "L1") & (_days_to_expiry(d.legs, d.day.date) <= r.l1_roll_dte), "L1 roll (time-shift)")
    d.close(d.has("layer", "L3") & (_days_to_expiry(d.legs, d.day.date) <= r.l3_roll_dte), "L3 roll")
    front_expiry = d.quotes.front_expiry
    if front_expiry is not None and len(d.legs):
        legs = d.legs
        long_leg = (np.isin(legs["layer"], [*HEDGE_VX_LAYERS, STATIC_VX_LAYER]) & (legs["quantity"] > 0)
                    & ((legs["kind"] == "future") | (legs["right"] == "C")))
        due = long_leg & (legs["expiry"] <= front_expiry)
        for label, layers in (("L2", HEDGE_VX_LAYERS), ("static VX", (STATIC_VX_LAYER,))):
            rolling = set(legs["position_id"][due & np.isin(legs["layer"], layers)].tolist())
            if rolling:
                d.close(np.array([p in rolling for p in d.legs["position_id"].tolist()], dtype=bool),
                        f"{label} roll: long month is now the front")


def _statarb(d: _Day, capital: float) -> None:
    """Pairs from today's signals: closes on exit / stop / broken cointegration, opens on entry
    (dollar-neutral, volatility-sized, scaled by conviction: `core.statarb_book`); held pairs are
    not rebalanced day to day (each trade pays the spread)."""
    sig, q = d.day.statarb, d.quotes
    pairs = _open_pairs(d.legs.take(d.has("book", "statarb")))
    if not len(sig) and not pairs:
        return
    if not _signals_may_act(q.memo("signals", lambda: _signal_rows(sig)), pairs):
        return
    prices = q.memo("stock closes", lambda: d.day.equities.set_index("symbol")["close"])
    targets = sab.pair_target_arrays(sig, pairs, prices, d.day.equity_vols, capital, d.cfg.statarb_rules)
    if targets is None:  # inputs pair_target_arrays does not take: the frame formulation
        held = pd.DataFrame([{"symbol_y": y, "symbol_x": x, **p} for (y, x), p in pairs.items()],
                            columns=PAIR_COLUMNS)
        t = sab.pair_targets(sig, held, prices, d.day.equity_vols, capital, d.cfg.statarb_rules)
        targets = sab.Targets(t["symbol_y"].tolist(), t["symbol_x"].tolist(),
                              *(t[c].to_numpy(np.int64) for c in ("direction", "qty_y", "qty_x")),
                              t["action_taken"].to_numpy(object))
    if not len(targets.action_taken):
        return
    y, x = targets.symbol_y, targets.symbol_x
    pid = np.array([f"pair:{a}|{b}" for a, b in zip(y, x)], dtype=object)
    action = targets.action_taken
    for taken in sorted(set(action.tolist()) - {"open", "hold"}):
        closing = set(pid[action == taken].tolist())
        d.close(np.array([p in closing for p in d.legs["position_id"].tolist()], dtype=bool), f"statarb {taken}")
    opens = np.flatnonzero(action == "open")
    if not len(opens):
        return
    sym = np.concatenate([np.array(y, dtype=object)[opens], np.array(x, dtype=object)[opens]])
    qty = np.concatenate([targets.qty_y[opens], targets.qty_x[opens]]).astype(float)
    ids = np.concatenate([pid[opens], pid[opens]])
    ok = (qty != 0) & np.array([s in q.stocks for s in sym.tolist()], dtype=bool)
    rows = {c: q.stocks.values(sym[ok], f) for c, f in (("bid", "bid"), ("ask", "ask"), ("mid", "close"))}
    rows["option_type"] = np.full(int(ok.sum()), "", dtype=object)
    d.open(_new_legs(rows, d.day, d.mode, "statarb", "statarb", ids[ok], qty[ok], sym[ok], "equity", 1.0),
           "statarb open")


PAIR_COLUMNS = ["symbol_y", "symbol_x", "direction", "qty_y", "qty_x"]


def _open_pairs(held: Table) -> dict[tuple[str, str], dict]:
    """(symbol_y, symbol_x) -> direction, qty_y, qty_x of each held pair, in position-id order."""
    pairs = {}
    instrument, qty = held["instrument"], held["quantity"]
    for pid in np.unique(held["position_id"]):
        mine = held["position_id"] == pid
        y, x = pid.split(":", 1)[1].split("|")
        qy = _nansum(qty[mine & (instrument == y)])
        qx = _nansum(qty[mine & (instrument == x)])
        pairs[(y, x)] = {"direction": int(np.sign(qy) or -np.sign(qx)), "qty_y": qy, "qty_x": qx}
    return pairs


def _signal_rows(sig: pd.DataFrame) -> list[tuple] | None:
    """((symbol_y, symbol_x), action, direction, selected, p-value) per signal row; None when a pair
    has two rows (pair_targets refuses that day, so it must be called)."""
    keys = list(zip(sig["symbol_y"].astype(str).tolist(), sig["symbol_x"].astype(str).tolist()))
    if len(set(keys)) < len(keys):
        return None
    n = len(sig)
    return list(zip(keys, sig["action"].fillna("none").tolist(), sig["direction"].fillna(0).to_numpy(float).tolist(),
                    sig["selected"].tolist() if "selected" in sig else [True] * n,
                    sig["pvalue"].to_numpy(float).tolist() if "pvalue" in sig else [np.nan] * n))


def _signals_may_act(rows: list[tuple] | None, pairs: dict[tuple[str, str], dict]) -> bool:
    """Whether `sab.pair_targets` could do anything but hold today (its docstring's rules): an
    entry with a direction on a pair not held; or, on a held pair, an exit / stop, an entry the
    other way, or the pair no longer selected or cointegrated (p-value above BROKEN_P). Without
    any, it returns every held pair as "hold" and opens nothing, so the call (~20 ms) is skipped."""
    if rows is None:
        return True
    for key, action, direction, selected, pvalue in rows:
        held = pairs.get(key)
        if held is None:
            if action == "entry" and direction != 0:
                return True
        elif (action in ("exit", "stop") or (action == "entry" and direction != 0 and direction != held["direction"])
              or (not pd.isna(selected) and not bool(selected)) or pvalue > sab.BROKEN_P):
            return True
    return False


def _open_condor(d: _Day, equity: float) -> None:
    """The condor program's entry (the same legs in every mode): on its monthly cycle, as many
    condors as keep the cycle's max loss within `condor_risk_per_cycle` x the mode's equity, and
    within the margin headroom."""
    if d.has("book", "condor").any() or not len(d.day.spx):
        return
    rules, q = d.cfg.condor_rules, d.quotes
    # the expiry a condor would be opened on (select_condor's), known before selecting its strikes
    expiry = q.memo(("condor expiry", rules), lambda: _condor_expiry(q.chain("SPX"), rules))
    if expiry is None:
        return
    if d.last_condor_expiry is not None and expiry <= d.last_condor_expiry:
        return  # one condor per monthly expiry: after an early exit the cycle waits for the next month
    pick = q.memo(("condor", rules), lambda: _condor_pick(q, rules))
    if pick is None:
        return
    legs, expiry, credit, pw, cw = pick
    per_condor = condor.max_loss_per_condor(pw, cw, credit)
    if credit <= 0 or per_condor <= 0:
        return
    n = int(np.floor(d.cfg.condor_risk_per_cycle * equity / per_condor))
    if n < 1:
        d.events.append(f"condor skipped: equity {equity:,.0f} x risk per cycle {d.cfg.condor_risk_per_cycle} "
                        f"< one condor's max loss {per_condor:,.0f}")
        return
    headroom = d.equity() - margin_requirement(d.legs, d.day)
    n = min(n, int(np.floor(headroom / max(condor.condor_margin(pw, cw, credit, 1), 1e-9))))
    if n < 1:
        d.events.append("condor skipped: no margin headroom")
        return
    pid = f"condor:{d.day.date:%Y%m%d}:{expiry:%Y%m%d}"
    new = _new_legs(legs, d.day, d.mode, "condor", "condor", pid, legs["side"].to_numpy(float) * n, "SPX", "option",
                    SPX_MULT, credit)
    d.open(new, "condor open")
    d.last_condor_expiry = expiry


def _condor_expiry(chain: _Chain, rules: condor.CondorRules) -> pd.Timestamp | None:
    """The nearest expiry with min_dte <= dte <= max_dte (monthly only when the rules say so): the
    one `condor.select_condor` opens on, if it finds all four legs."""
    if not chain.n:
        return None
    expiries, first = np.unique(chain.cols["expiry"], return_index=True)
    dte = chain.cols["dte"][first]
    ok = (dte >= rules.min_dte) & (dte <= rules.max_dte)
    if rules.monthly_only:
        ok &= condor.is_monthly_expiry(pd.DatetimeIndex(expiries))
    return pd.Timestamp(expiries[ok].min()) if ok.any() else None


def _condor_pick(quotes: DayQuotes, rules: condor.CondorRules) -> tuple | None:
    """The day's condor (the same for every mode): (legs, expiry, credit, put width, call width)."""
    spx = quotes.chain("SPX").frame_within_dte(rules.min_dte, rules.max_dte)  # all select_condor reads
    legs = condor.select_condor(spx, rules)
    if not len(legs):
        return None
    pw, cw = condor.condor_widths(legs)
    return legs, pd.Timestamp(legs["expiry"].iloc[0]), condor.condor_credit(legs), pw, cw
