"""SPX short iron condor: leg selection, payoff, margin and exit rules (books layer,
/tmp/books_api.md `core/condor.py`). Prices in index points per unit of SPX; USD figures use
the SPX option multiplier of 100.

A short iron condor sells a put spread (long put K_pl < short put K_ps) and a call spread
(short call K_cs < long call K_cl) on one expiry for a net credit c. At expiry, settlement S:

    payoff(S) = -[(K_ps - S)⁺ - (K_pl - S)⁺] - [(S - K_cs)⁺ - (S - K_cl)⁺]   (points, ≤ 0)
    P&L(S)    = c + payoff(S),   max loss = max(K_ps - K_pl, K_cl - K_cs) - c,
    break-evens K_ps - c and K_cs + c.

Margin (Cboe strategy-based rule for a short iron condor, Cboe Margin Manual: "short put spread
and short call spread on the same underlying and expiry"): only one side can finish in the
money, so the requirement is the greater of the two spread widths × 100 × contracts, and the
sale proceeds (the credit) may be applied against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from alvh_pipeline.core import calendar as cal

__all__ = [
    "MULTIPLIER",
    "LEG_COLUMNS",
    "CondorRules",
    "CNDR_RULES",
    "MANAGED_RULES",
    "is_monthly_expiry",
    "select_condor",
    "condor_credit",
    "condor_widths",
    "max_loss_per_condor",
    "condor_margin",
    "condor_payoff",
    "exit_reason",
    "break_evens",
]

MULTIPLIER = 100.0  # USD per index point per SPX option contract
LEG_COLUMNS = ["expiry", "strike", "option_type", "side", "bid", "ask", "mid", "iv",
               "delta", "gamma", "vega", "theta", "dte", "fill"]


@dataclass(frozen=True)
class CondorRules:
    min_dte: int = 30
    max_dte: int = 45
    short_delta: float = 0.16        # target |delta| of the short put and short call
    wing_delta: float = 0.05         # target |delta| of the long wings ...
    wing_width: float | None = None  # ... or a fixed width in index points (overrides wing_delta)
    take_profit: float | None = 0.50  # close when the cost to close <= (1 - 0.50) x credit; None: never
    stop_loss: float | None = 2.0     # close when the loss >= 2 x credit (cost to close >= 3 x credit); None: never
    exit_dte: int | None = 21         # close at <= 21 days to expiry; None: hold to expiry
    monthly_only: bool = True         # open only on third-Friday (monthly) expiries

    @property
    def held_to_expiry(self) -> bool:
        return self.take_profit is None and self.stop_loss is None and self.exit_dte is None


# The condor program's default (DESIGN §5): Cboe CNDR's legs (~0.20 |delta| shorts, ~0.05 |delta|
# wings) on the next monthly expiry, held to expiry. On a roll day the expiring month has 0 days
# left, so the nearest monthly with 21..45 days is the next one (28 or 35 days out), as CNDR rolls.
CNDR_RULES = CondorRules(min_dte=21, max_dte=45, short_delta=0.20, wing_delta=0.05, take_profit=None,
                         stop_loss=None, exit_dte=None)
# The managed variant: 16-delta shorts 30-45 days out, exits at 50 % of the credit, a loss of 2x the
# credit or 21 days to expiry (triggers on mid, fills at bid/ask: `books`).
MANAGED_RULES = CondorRules()


def is_monthly_expiry(expiry: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """True where the date is its month's SPX monthly expiry: the third Friday, or the session
    before it when that Friday is an exchange holiday (`calendar.spx_monthly_expiry`, e.g. Good
    Friday 2014-04-18 -> 2014-04-17). NaT -> False."""
    d = pd.DatetimeIndex(pd.to_datetime(expiry)).normalize()
    ok = ~d.isna()
    out = np.zeros(len(d), dtype=bool)
    if ok.any():
        dd = d[ok]
        months, inverse = np.unique(np.asarray(dd.year * 12 + dd.month - 1), return_inverse=True)
        monthly = np.array([_monthly_expiry_ns(int(m) // 12, int(m) % 12 + 1) for m in months], dtype=np.int64)
        out[ok] = monthly[inverse] == dd.as_unit("ns").asi8
    return out


@cache
def _monthly_expiry_ns(year: int, month: int) -> int:
    """`calendar.spx_monthly_expiry` of one month in ns (the exchange calendar is fixed; ~1 ms a call)."""
    return int(cal.spx_monthly_expiry(np.array([year]), np.array([month])).as_unit("ns").asi8[0])


def _empty_legs() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float) for c in LEG_COLUMNS}).astype(
        {"expiry": "datetime64[ns]", "option_type": str, "side": np.int64, "dte": np.int64})


def _nearest(mask: np.ndarray, key: np.ndarray, target: float, strike: np.ndarray,
             tie_strike_sign: float) -> int | None:
    """Position of the row within `mask` whose `key` is nearest `target`; ties go to the larger
    `tie_strike_sign * strike` (callers pick the lower-risk strike). None when the mask is empty."""
    pos = np.flatnonzero(mask)
    if pos.size == 0:
        return None
    order = np.lexsort((-tie_strike_sign * strike[pos], np.abs(key[pos] - target)))
    return int(pos[order[0]])


def select_condor(marked_day: pd.DataFrame, rules: CondorRules) -> pd.DataFrame:
    """The four legs to open on one day's marked SPX chain (`option_marks.mark_chain(..., "spx")`).

    Expiry: the nearest (smallest dte) expiry with min_dte <= dte <= max_dte, monthly only when
    `rules.monthly_only`. Shorts: among out-of-the-money quotes with bid > 0 and a finite delta
    (puts K < F, calls K >= F, as in `vol_surface`), the strike with |delta| nearest
    `short_delta`. Wings: strictly further out of the money with ask > 0, the strike with |delta|
    nearest `wing_delta`, or, when `wing_width` is set, the listed strike nearest K_ps - width /
    K_cs + width. Ties: the strike further from the money for shorts, nearer the short for wings.

    Returns rows long put, short put, short call, long call with LEG_COLUMNS; fill = ask for a
    buy (side +1), bid for a sale (side -1). Empty frame (same columns) when no expiry qualifies
    or any leg is missing.
    """
    if marked_day.empty:
        return _empty_legs()
    if marked_day["date"].nunique() != 1:
        raise ValueError("select_condor takes one day's chain")
    dte = marked_day["dte"].to_numpy()
    ok = (dte >= rules.min_dte) & (dte <= rules.max_dte)
    if rules.monthly_only:
        ok &= is_monthly_expiry(marked_day["expiry"])
    if not ok.any():
        return _empty_legs()
    expiry = pd.to_datetime(marked_day["expiry"]).to_numpy("datetime64[ns]")
    x = marked_day[expiry == expiry[ok].min()]

    is_call = x["option_type"].astype(str).str.upper().eq("C").to_numpy()
    strike, fwd = x["strike"].to_numpy(float), x["forward"].to_numpy(float)
    absdelta = np.abs(x["delta"].to_numpy(float))
    bid, ask = x["bid"].to_numpy(float), x["ask"].to_numpy(float)
    quoted = np.isfinite(absdelta)
    otm_put, otm_call = ~is_call & (strike < fwd), is_call & (strike >= fwd)
    # Shorts are sold, so they need a bid; further-OTM ties are the lower-risk pick.
    sp = _nearest(otm_put & quoted & (bid > 0), absdelta, rules.short_delta, strike, -1.0)
    sc = _nearest(otm_call & quoted & (bid > 0), absdelta, rules.short_delta, strike, +1.0)
    if sp is None or sc is None:
        return _empty_legs()

    # Wings are bought, so they need an ask; ties go to the narrower spread.
    put_wing = ~is_call & (strike < strike[sp]) & (ask > 0)
    call_wing = is_call & (strike > strike[sc]) & (ask > 0)
    if rules.wing_width is None:
        lp = _nearest(put_wing & quoted, absdelta, rules.wing_delta, strike, +1.0)
        lc = _nearest(call_wing & quoted, absdelta, rules.wing_delta, strike, -1.0)
    else:
        lp = _nearest(put_wing, strike, strike[sp] - rules.wing_width, strike, +1.0)
        lc = _nearest(call_wing, strike, strike[sc] + rules.wing_width, strike, -1.0)
    if lp is None or lc is None:
        return _empty_legs()

    legs = x.iloc[[lp, sp, sc, lc]].reset_index(drop=True)
    legs["side"] = np.array([1, -1, -1, 1], dtype=np.int64)
    legs["fill"] = np.where(legs["side"] > 0, legs["ask"], legs["bid"]).astype(float)
    legs["dte"] = legs["dte"].astype(np.int64)
    legs["expiry"] = pd.to_datetime(legs["expiry"])
    return legs[LEG_COLUMNS]


def condor_credit(legs: pd.DataFrame) -> float:
    """Net credit at the fills, points per condor: Σ -side × fill."""
    return float((-legs["side"].to_numpy(float) * legs["fill"].to_numpy(float)).sum())


def condor_widths(legs: pd.DataFrame) -> tuple[float, float]:
    """(put width K_ps - K_pl, call width K_cl - K_cs) in index points."""
    call = legs["option_type"].astype(str).str.upper().eq("C").to_numpy()
    side, k = legs["side"].to_numpy(), legs["strike"].to_numpy(float)

    def one(mask: np.ndarray) -> float:
        short, long_ = k[mask & (side < 0)], k[mask & (side > 0)]
        if len(short) != 1 or len(long_) != 1:
            raise ValueError("a condor has exactly one short and one long leg per option type")
        return float(abs(short[0] - long_[0]))

    return one(~call), one(call)


def _scalar_or_array(x: np.ndarray) -> float | np.ndarray:
    return float(x) if np.ndim(x) == 0 else x


def max_loss_per_condor(put_width: ArrayLike, call_width: ArrayLike, credit: ArrayLike) -> float | np.ndarray:
    """USD per condor: (max(put width, call width) - credit) × 100. Vectorized."""
    return _scalar_or_array((np.maximum(put_width, call_width) - np.asarray(credit, dtype=float)) * MULTIPLIER)


def condor_margin(put_width: ArrayLike, call_width: ArrayLike, credit: ArrayLike,
                  contracts: ArrayLike) -> float | np.ndarray:
    """USD, Cboe strategy-based short iron condor requirement (module doc):
    max(put width, call width) × 100 × contracts less the credit × 100 × contracts, floored at 0.
    Vectorized; `contracts` is the number of condors (its absolute value is used)."""
    n = np.abs(np.asarray(contracts, dtype=float))
    req = (np.maximum(put_width, call_width) - np.asarray(credit, dtype=float)) * MULTIPLIER * n
    return _scalar_or_array(np.maximum(req, 0.0))


def condor_payoff(settlement: ArrayLike, kp_long: ArrayLike, kp_short: ArrayLike, kc_short: ArrayLike,
                  kc_long: ArrayLike) -> np.ndarray:
    """Points per short condor at expiry, excluding the credit (module doc):
    -[(K_ps - S)⁺ - (K_pl - S)⁺] - [(S - K_cs)⁺ - (S - K_cl)⁺]. Broadcasts over all inputs."""
    s, kpl, kps, kcs, kcl = (np.asarray(a, dtype=float) for a in (settlement, kp_long, kp_short, kc_short, kc_long))
    put_spread = np.maximum(kps - s, 0.0) - np.maximum(kpl - s, 0.0)
    call_spread = np.maximum(s - kcs, 0.0) - np.maximum(s - kcl, 0.0)
    return -(put_spread + call_spread)


def exit_reason(credit: ArrayLike, cost_to_close: ArrayLike, dte: ArrayLike, rules: CondorRules) -> np.ndarray:
    """Per open condor: "stop_loss" when cost_to_close - credit >= stop_loss × credit,
    else "take_profit" when cost_to_close <= (1 - take_profit) × credit, else "dte" when
    dte <= exit_dte, else "". A rule set to None never fires (CNDR holds to expiry). Price rules
    take precedence over the calendar one so the label records the P&L event; a NaN cost triggers
    neither price rule. Points per condor (the books pass the cost to close at mid); vectorized."""
    c, cost, days = np.broadcast_arrays(np.asarray(credit, dtype=float), np.asarray(cost_to_close, dtype=float),
                                        np.asarray(dte))
    never = np.zeros(c.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        stop = never if rules.stop_loss is None else cost - c >= rules.stop_loss * c
        take = never if rules.take_profit is None else cost <= (1.0 - rules.take_profit) * c
        late = never if rules.exit_dte is None else days <= rules.exit_dte
    return np.select([stop, take, late], ["stop_loss", "take_profit", "dte"], default="")


def break_evens(kp_short: float, kc_short: float, credit: float) -> tuple[float, float]:
    """(K_ps - credit, K_cs + credit): the settlements where P&L at expiry is zero."""
    return float(kp_short - credit), float(kc_short + credit)
