"""Margin, exposure and value of the legs: the account's maintenance requirement by leg (condors
by the Cboe strategy rule, VX futures from `core.margin`'s dated assumptions with its stress
multiplier, short index options as naked, stocks at Reg-T maintenance), the condor program's max
loss, the sizing rule's net VX delta dollars (VX equivalents x each month's beta to spot VIX), the
VX futures' loss, and the legs' mark and liquidation values."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from alvh_pipeline.core import condor
from alvh_pipeline.core import margin as mg
from alvh_pipeline.core.books.model import BookConfig, MarketDay
from alvh_pipeline.core.books.quotes import DayQuotes
from alvh_pipeline.core.books.tables import Table, _col

HEDGE_VX_LAYERS = ("L2", "synthetic")  # the ALVH ladder's VX exposure: what the sizing rule caps
STATIC_VX_LAYER = "static"  # the promoter's static long VX futures (DESIGN §5), outside the ladder


def vx_equivalent(legs: Table | pd.DataFrame) -> np.ndarray:
    """Signed VX contracts of exposure per leg: a future counts quantity x its multiplier / $1,000;
    a synthetic future (long call + short put on one strike) counts once, on its call leg, at $100
    per point (a tenth of a contract), with the call's sign; VIX options otherwise count 0."""
    fut = _col(legs, "kind") == "future"
    syn_call = (_col(legs, "layer") == "synthetic") & (_col(legs, "right") == "C")
    q = _col(legs, "quantity", float) * _col(legs, "multiplier", float) / 1000.0
    return np.where(fut | syn_call, q, 0.0)


def vx_delta_dollars(legs: Table | pd.DataFrame, day: MarketDay, cfg: BookConfig,
                     quotes: DayQuotes | None = None, layers: tuple[str, ...] = HEDGE_VX_LAYERS) -> float:
    """The sizing rule's NET VX delta dollars of `layers` (DESIGN §5): |Σ signed VX contracts ×
    $1,000 × that month's beta to spot VIX| × the stress move, so a calendar's legs offset by their
    betas."""
    if not len(legs):
        return 0.0
    mine = np.isin(_col(legs, "layer"), layers)
    if not mine.any():
        return 0.0
    legs = legs.take(mine) if isinstance(legs, Table) else legs[mine]
    eq = vx_equivalent(legs)
    beta = _leg_beta(legs, day, quotes)
    return float(abs(np.sum(eq * beta)) * 1000.0 * cfg.stress_move_vix_points)


def _leg_beta(legs: Table | pd.DataFrame, day: MarketDay, quotes: DayQuotes | None = None) -> np.ndarray:
    """Beta to spot VIX of the VX month each leg's exposure is on (futures by contract, synthetic
    legs by the future with their expiry)."""
    q = quotes if quotes is not None else DayQuotes(day)
    month = q.futures.values(_col(legs, "contract"), "month_index")
    expiry = _col(legs, "expiry")
    if expiry.dtype != np.dtype("datetime64[ns]"):  # a Table's already is
        expiry = pd.to_datetime(expiry).to_numpy("datetime64[ns]")
    expiry = expiry.view("i8")
    by_expiry = np.array([q.month_by_expiry.get(e, np.nan) for e in expiry.tolist()], dtype=float)
    month = np.where(np.isnan(month), by_expiry, month)
    beta = np.array([q.beta.get(m, np.nan) for m in month.tolist()], dtype=float)
    fallback = 1.0 / np.sqrt(np.maximum(month, 1.0))  # documented: beta decays with maturity
    return np.where(np.isfinite(beta), beta, np.where(np.isfinite(fallback), fallback, 1.0))


def _positions(legs: Table, book: str) -> Iterable[Table]:
    """The legs of each position of `book`, by position id in sorted order (as groupby)."""
    rows = np.flatnonzero(_col(legs, "book") == book)
    pid = legs["position_id"][rows]
    for p in np.unique(pid):
        yield legs.take(rows[pid == p])


def _condor_terms(pos: Table) -> tuple[float, float, float, float]:
    """(put width, call width, credit, contracts) of one condor's legs."""
    k, right = pos["strike"], pos["right"]
    return (float(np.ptp(k[right == "P"])), float(np.ptp(k[right == "C"])), float(pos["credit"][0]),
            float(np.abs(pos["quantity"]).max()))


def condor_max_loss(legs: Table) -> float:
    """Σ over open condors of (max wing width × $100 − credit × $100) × contracts."""
    total = 0.0
    for pos in _positions(legs, "condor"):  # a handful of open condors at most
        pw, cw, credit, n = _condor_terms(pos)
        total += condor.max_loss_per_condor(pw, cw, credit) * n
    return total


def margin_requirement(legs: Table, day: MarketDay) -> float:
    """Maintenance requirement of the whole account (USD): the sum of `margin_components`."""
    return float(sum(margin_components(legs, day).values()))


def margin_components(legs: Table, day: MarketDay) -> dict[str, float]:
    """Maintenance requirement by leg (USD): condors by the Cboe strategy rule; VX futures from the
    dated assumption table with its stress multiplier, plus the short VIX options of synthetic
    futures as naked index options (together: the VIX-futures leg); stocks at Reg-T maintenance
    (25 % long, 30 % short); long options are paid in full (no requirement)."""
    out = {"condor": 0.0, "vx": 0.0, "statarb": 0.0}
    if not len(legs):
        return out
    for pos in _positions(legs, "condor"):
        pw, cw, credit, n = _condor_terms(pos)
        out["condor"] += condor.condor_margin(pw, cw, credit, n)
    kind, qty = legs["kind"], legs["quantity"]
    fut = kind == "future"
    if fut.any():
        contracts = qty[fut]
        spread_pairs = min(contracts[contracts > 0].sum(), -contracts[contracts < 0].sum())
        outright = np.abs(contracts).sum() - 2 * spread_pairs
        stress = mg.vx_stress_multiplier(day.vix_close)
        out["vx"] += mg.vx_margin(day.date, outright, spread_pairs, stress)[1]
    short_opt = (legs["layer"] == "synthetic") & (qty < 0)
    if short_opt.any():
        out["vx"] += float(np.sum(naked_index_option_margin(legs.take(short_opt), day)))
    eq = kind == "equity"
    if eq.any():
        mv = qty[eq] * legs["mark"][eq]
        out["statarb"] += float(0.25 * mv[mv > 0].sum() + 0.30 * -mv[mv < 0].sum())
    return out


def naked_index_option_margin(legs: Table | pd.DataFrame, day: MarketDay) -> np.ndarray:
    """Cboe customer margin of a short index option (DESIGN §9): premium + max(15 % × underlying
    − out-of-the-money amount, 10 % × strike) per unit, × multiplier × contracts."""
    under = np.where(_col(legs, "instrument") == "SPX", day.spx_close, day.vix_close)
    k = _col(legs, "strike", float)
    otm = np.where(_col(legs, "right") == "C", np.maximum(k - under, 0), np.maximum(under - k, 0))
    per = _col(legs, "mark", float) + np.maximum(0.15 * under - otm, 0.10 * k)
    return per * _col(legs, "multiplier", float) * np.abs(_col(legs, "quantity", float))


def mark_value(legs: pd.DataFrame) -> pd.Series:
    """Mark-to-market value of each leg (mid), USD."""
    return legs["quantity"] * legs["multiplier"] * legs["mark"]


def _values(legs: Table) -> np.ndarray:
    """`mark_value` of a Table."""
    return legs["quantity"] * legs["multiplier"] * legs["mark"]


def liquidation_value(legs: Table | pd.DataFrame) -> float:
    """What closing everything would fetch: longs at the bid, shorts at the ask."""
    q = _col(legs, "quantity", float)
    px = np.where(q > 0, _col(legs, "bid", float), _col(legs, "ask", float))
    return float(np.sum(q * px * _col(legs, "multiplier", float)))


def vx_futures_loss(legs: Table | pd.DataFrame) -> float:
    """The open VX futures' loss since they were bought or sold (entry price to today's mark), USD;
    negative when they gain."""
    if not len(legs):
        return 0.0
    fut = _col(legs, "kind") == "future"
    q, mult = _col(legs, "quantity", float)[fut], _col(legs, "multiplier", float)[fut]
    return float(np.sum(q * mult * (_col(legs, "entry_price", float)[fut] - _col(legs, "mark", float)[fut])))
