"""The Adaptive Layered VIX Hedge (ALVH) ladder in computable terms (DESIGN §5, §9; books API).

Layers
    L1  short-dated VIX calls, 2-6 weeks (``l1_min_dte``..``l1_max_dte``), |Δ| ≈ 0.30, rolled
        forward at ``l1_roll_dte`` ("time-shifting"). Rising CAPM beta lengthens the target dte by
        ``l1_long_dte_tilt`` (methodology: "tilts toward longer-dated VIX calls, reducing the
        frequency of rolls").
    L2  VX futures calendar, long M2 / short M4. Never opened or rolled into a backwardated front
        (VX1 >= VX2): the exposure shifts to L1 instead.
    L3  SPX put wings, 60-90 dte, |Δ| ≈ 0.05, rolled at ``l3_roll_dte``.
    Second engine: when a futures leg fails the liquidity filter, the calendar is replicated with
        VIX options (synthetic future = long call + short put at one strike, Black-76 parity
        C - P = D (F - K)); a parity deviation beyond ``parity_cost_multiple`` x the quoted
        half-spreads is a data error, and that expiry's legs are not traded.

Adaptive weights (``layer_weights``), scores normalised to sum to 1::

    s_L1 = 1 + [event within 2 sessions] + [backwardated] + 0.5 [CAPM beta rising]
    s_L2 = 0 if backwardated else 1 + [calm regime in contango]
    s_L3 = 1 + [A/D line falling over 252 sessions]

backwardated = ``backwardation`` or VX1 >= VX2; contango = not backwardated and ``slope_cm`` > 0
(VX2 > VX1 when the slope is missing). Event proximity and backwardation are when a sudden VIX
spike is most likely, which convex short-dated calls capture best; a calm contango curve is where
the M2/M4 calendar carries cheapest; falling breadth is the slow equity deterioration that SPX put
wings hedge directly; rising beta moves exposure from futures (rolls) to longer-dated calls.
A missing field counts as "condition not met" (NaN is not evidence of stress).

Sizing rule (blocking, every day, every mode): the ladder's NET VX delta dollars <= cap x the
condor program's notional risk, cap in [0.15, 0.20]; computed by `books.vx_delta_dollars` and
checked by `book_checks.sizing_rule_failures` (one definition).

Conventions: ``dte`` calendar days, ``t = dte / 365``, D = e^{-rT}; fills buy at ask, sell at bid;
side +1 long / -1 short. Everything here is pure numpy / pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "BACKWARDATION_REASON",
    "BETA_CAP",
    "MISSING_MONTH_REASON",
    "LadderRules",
    "beta_fallback",
    "futures_blocked",
    "l1_target_dte",
    "l2_calendar",
    "layer_weights",
    "liquidity_ok",
    "parity_report",
    "select_l1_call",
    "select_l3_put",
    "synthetic_calendar",
    "vx_beta_to_spot",
    "vxth_budget_fraction",
]

BACKWARDATION_REASON = "backwardation: VX1 >= VX2, exposure shifted to L1"
MISSING_MONTH_REASON = "missing month"
BETA_CAP = 1.5  # vx_beta_to_spot clips to [0, BETA_CAP]; also the conservative stand-in for an unknown beta
PARITY_ABS_TOL = 1e-8  # index points: float noise, so a zero-width quote does not flag exact parity
PARITY_COLUMNS = ["date", "expiry", "strike", "parity_mid", "cost_band", "data_error"]


@dataclass(frozen=True)
class LadderRules:
    l1_min_dte: int = 14
    l1_max_dte: int = 42
    l1_delta: float = 0.30
    l1_roll_dte: int = 7  # roll L1 forward when dte <= this ("time-shifting")
    l1_long_dte_tilt: int = 14  # extra target dte when CAPM beta is rising (fewer rolls)
    l2_long_month: int = 2
    l2_short_month: int = 4
    l3_min_dte: int = 60
    l3_max_dte: int = 90
    l3_delta: float = 0.05
    l3_roll_dte: int = 30
    quick_ratio_min: float = 1.0
    parity_cost_multiple: float = 1.0  # a parity deviation beyond this x the round-trip half-spreads is a data error


# ---- regime row helpers --------------------------------------------------------------------------

def _num(row: pd.Series, name: str) -> float:
    v = row.get(name, np.nan)
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _flag(row: pd.Series, name: str) -> bool:
    v = row.get(name)
    return False if v is None or pd.isna(v) else bool(v)


def _backwardated(row: pd.Series) -> bool:
    vx1, vx2 = _num(row, "vx1"), _num(row, "vx2")
    return _flag(row, "backwardation") or bool(np.isfinite(vx1) and np.isfinite(vx2) and vx1 >= vx2)


def _contango(row: pd.Series) -> bool:
    if _backwardated(row):
        return False
    slope = _num(row, "slope_cm")
    if np.isfinite(slope):
        return slope > 0
    vx1, vx2 = _num(row, "vx1"), _num(row, "vx2")
    return bool(np.isfinite(vx1) and np.isfinite(vx2) and vx2 > vx1)


def _event_near(row: pd.Series) -> bool:
    days = [_num(row, c) for c in ("days_to_FOMC", "days_to_CPI", "days_to_PPI")]
    return _flag(row, "event_within_2d") or any(np.isfinite(d) and d <= 2 for d in days)


# ---- weights, budgets, gates ---------------------------------------------------------------------

def layer_weights(regime: pd.Series, beta_rising: bool, rules: LadderRules = LadderRules()) -> dict[str, float]:
    """Weights of L1 / L2 / L3 (sum 1, each in [0, 1]) from one ``signals/regime`` row: the score
    rule of the module docstring (DESIGN §5 "Adaptive weights")."""
    backwardated = _backwardated(regime)
    calm_contango = str(regime.get("regime", "")) == "calm" and _contango(regime)
    ad = _num(regime, "ad_line_252d")
    scores = {
        "L1": 1.0 + float(_event_near(regime)) + float(backwardated) + 0.5 * float(bool(beta_rising)),
        # never open or roll the futures calendar into a backwardated front (DESIGN §5)
        "L2": 0.0 if backwardated else 1.0 + float(calm_contango),
        "L3": 1.0 + float(bool(np.isfinite(ad) and ad < 0)),
    }
    total = sum(scores.values())  # >= 2: L1 and L3 scores are >= 1
    return {k: v / total for k, v in scores.items()}


def vxth_budget_fraction(vx1: np.ndarray) -> np.ndarray:
    """Cboe VXTH schedule (DESIGN §9): fraction of NAV in one-month 30Δ VIX calls by the front VX
    level: 1 % when 15 < VX <= 30, 0.5 % when 30 < VX <= 50, 0 otherwise (and 0 where unknown)."""
    v = np.asarray(vx1, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where((v > 15) & (v <= 30), 0.01, np.where((v > 30) & (v <= 50), 0.005, 0.0))


def liquidity_ok(regime: pd.Series, rules: LadderRules = LadderRules()) -> tuple[bool, str]:
    """DESIGN §5 liquidity filter: depth quick ratio >= ``quick_ratio_min`` and QQQ / IWM
    participation confirmed. A missing quick ratio is not depth (fails)."""
    reasons = []
    qr = _num(regime, "depth_quick_ratio")
    if not np.isfinite(qr):
        reasons.append("depth quick ratio unknown")
    elif qr < rules.quick_ratio_min:
        reasons.append(f"depth quick ratio {qr:.2f} < {rules.quick_ratio_min:g}")
    if not _flag(regime, "participation_ok"):
        reasons.append("QQQ/IWM participation not confirmed")
    return (not reasons, "; ".join(reasons))


def futures_blocked(regime: pd.Series) -> tuple[bool, str]:
    """A liquidity-evaporation warning on the front VX quote blocks new futures legs."""
    if _flag(regime, "evap_warning"):
        return True, "liquidity evaporation warning: no new futures legs"
    return False, ""


# ---- option legs ---------------------------------------------------------------------------------

def _is_call(chain: pd.DataFrame) -> np.ndarray:
    return np.char.upper(chain["option_type"].to_numpy().astype(str)) == "C"


def l1_target_dte(beta_rising: bool, rules: LadderRules = LadderRules()) -> int:
    """The middle of the L1 window (4 weeks by default), plus ``l1_long_dte_tilt`` when CAPM beta is
    rising (fewer rolls), never beyond ``l1_max_dte``."""
    base = round((rules.l1_min_dte + rules.l1_max_dte) / 2)
    return int(min(base + (rules.l1_long_dte_tilt if beta_rising else 0), rules.l1_max_dte))


def _with_fill(row: pd.DataFrame) -> pd.DataFrame:
    out = row.copy()
    out["side"] = 1
    out["fill"] = out["ask"].astype(float)
    return out.reset_index(drop=True)


def _no_pick(chain: pd.DataFrame) -> pd.DataFrame:
    return chain.iloc[0:0].assign(side=pd.Series(dtype=int), fill=pd.Series(dtype=float)).reset_index(drop=True)


def _nearest_delta(delta: np.ndarray, rows: np.ndarray, target: float) -> int:
    """The position among `rows` (a mask) with |Δ| nearest `target`; a stable sort: ties keep the
    chain's order, so the pick is deterministic (rows are taken by position)."""
    at = np.flatnonzero(rows)
    dist = np.abs(np.abs(delta[at]) - target)
    return int(at[np.argsort(dist, kind="stable")[0]])


def l1_call_row(call: np.ndarray, dte: np.ndarray, ask: np.ndarray, delta: np.ndarray, target_dte: int,
                rules: LadderRules = LadderRules()) -> int | None:
    """`select_l1_call`'s pick as a position in a marked chain's arrays (None: no pick)."""
    ok = call & (dte >= rules.l1_min_dte) & (dte <= rules.l1_max_dte) & (ask > 0) & np.isfinite(delta)
    if not ok.any():
        return None
    dtes = np.unique(dte[ok])
    dist = np.abs(dtes - target_dte)
    return _nearest_delta(delta, ok & (dte == dtes[dist == dist.min()].max()), rules.l1_delta)


def l3_put_row(call: np.ndarray, dte: np.ndarray, ask: np.ndarray, delta: np.ndarray,
               rules: LadderRules = LadderRules()) -> int | None:
    """`select_l3_put`'s pick as a position in a marked chain's arrays (None: no pick)."""
    ok = ~call & (dte >= rules.l3_min_dte) & (dte <= rules.l3_max_dte) & (ask > 0) & np.isfinite(delta)
    if not ok.any():
        return None
    return _nearest_delta(delta, ok & (dte == dte[ok].max()), rules.l3_delta)


def select_l1_call(marked_vix_day: pd.DataFrame, target_dte: int, rules: LadderRules = LadderRules()) -> pd.DataFrame:
    """0 or 1 row: the VIX call with dte in [l1_min_dte, l1_max_dte] on the expiry nearest
    ``target_dte`` (a tie goes to the longer expiry: fewer rolls), |Δ| nearest ``l1_delta``, ask > 0.
    Columns as marked plus side (+1) and fill (= ask)."""
    c = marked_vix_day
    i = l1_call_row(_is_call(c), c["dte"].to_numpy(), c["ask"].to_numpy(float), c["delta"].to_numpy(float),
                    target_dte, rules)
    return _no_pick(c) if i is None else _with_fill(c.iloc[[i]])


def select_l3_put(marked_spx_day: pd.DataFrame, rules: LadderRules = LadderRules()) -> pd.DataFrame:
    """0 or 1 row: the SPX put with dte in [l3_min_dte, l3_max_dte], |Δ| nearest ``l3_delta``, ask > 0,
    on the longest such expiry (the most time before the ``l3_roll_dte`` roll). Columns as marked plus
    side (+1) and fill (= ask)."""
    c = marked_spx_day
    i = l3_put_row(_is_call(c), c["dte"].to_numpy(), c["ask"].to_numpy(float), c["delta"].to_numpy(float), rules)
    return _no_pick(c) if i is None else _with_fill(c.iloc[[i]])


# ---- L2 futures calendar -------------------------------------------------------------------------

def _tradable_futures(futures_day: pd.DataFrame) -> pd.DataFrame:
    """Rows that can be traded today: settle > 0 (listed-but-untraded rows settle 0), not expired."""
    f = futures_day
    day = pd.to_datetime(f["date"]).to_numpy("datetime64[ns]").astype("datetime64[D]")  # the date, normalized
    keep = (f["settle"].to_numpy(float) > 0) & (pd.to_datetime(f["expiry"]).to_numpy("datetime64[ns]") > day)
    return f[keep]


def l2_calendar(futures_day: pd.DataFrame, rules: LadderRules = LadderRules()) -> tuple[pd.DataFrame, str]:
    """Long ``l2_long_month`` (side +1, fill = ask) / short ``l2_short_month`` (side -1, fill = bid).

    Empty with ``MISSING_MONTH_REASON`` when M1, the long or the short month is not tradable (no row,
    settle 0, expired, or no bid / ask to fill at); empty with ``BACKWARDATION_REASON`` when
    VX1 >= VX2 (DESIGN §5: never open or roll into a backwardated front)."""
    f = _tradable_futures(futures_day)
    row: dict[object, int] = {}  # month_index -> its first tradable row
    for i, month in enumerate(f["month_index"].tolist()):
        row.setdefault(month, i)
    empty = futures_day.iloc[0:0].assign(side=pd.Series(dtype=int), fill=pd.Series(dtype=float))
    if not {1, 2, rules.l2_long_month, rules.l2_short_month} <= row.keys():
        return empty, MISSING_MONTH_REASON
    settle = f["settle"].to_numpy(float)
    if settle[row[1]] >= settle[row[2]]:
        return empty, BACKWARDATION_REASON
    legs = f.iloc[[row[rules.l2_long_month], row[rules.l2_short_month]]].reset_index(drop=True)
    side = np.array([1, -1])
    fill = np.where(side > 0, legs["ask"].to_numpy(float), legs["bid"].to_numpy(float))
    if not (np.isfinite(fill).all() and (fill > 0).all()):
        return empty, MISSING_MONTH_REASON
    return legs.assign(side=side, fill=fill)[list(futures_day.columns) + ["side", "fill"]], ""


# ---- second engine: put-call parity and synthetic futures ----------------------------------------

def _forward_discount(chain: pd.DataFrame, kind: Literal["spx", "vix"]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, forward, D) per row: the marked columns when present, else rebuilt like mark_chain
    (T = calendar days / 365; SPX F = S e^{(r-q)T}, VIX F = future_price; D = e^{-rT})."""
    if "t" in chain:
        t = chain["t"].to_numpy(float)
    else:
        days = (pd.to_datetime(chain["expiry"]) - pd.to_datetime(chain["date"])).dt.days.to_numpy(float)
        t = days / 365.0
    r = chain["rate"].to_numpy(float)
    if "forward" in chain:
        fwd = chain["forward"].to_numpy(float)
    elif kind == "spx":
        fwd = chain["underlying"].to_numpy(float) * np.exp((r - chain["dividend_yield"].to_numpy(float)) * t)
    elif kind == "vix":
        fwd = chain["future_price"].to_numpy(float)
    else:
        raise ValueError(f"kind must be 'spx' or 'vix', got {kind!r}")
    return t, fwd, np.exp(-r * t)


def _pairs(chain: pd.DataFrame, kind: Literal["spx", "vix"]) -> pd.DataFrame:
    """One row per (date, expiry, strike) listing both a call and a put, with both quotes, F and D
    (columns row_c, date, expiry, strike, bid_c, ask_c, forward, discount, row_p, bid_p, ask_p;
    sorted by the keys)."""
    t, fwd, disc = _forward_discount(chain, kind)
    x = {"row": np.arange(len(chain)), "date": pd.to_datetime(chain["date"]).dt.normalize().to_numpy(),
         "expiry": pd.to_datetime(chain["expiry"]).to_numpy(), "strike": chain["strike"].to_numpy(float),
         "call": _is_call(chain), "bid": chain["bid"].to_numpy(float), "ask": chain["ask"].to_numpy(float),
         "forward": fwd, "discount": disc}
    call, date, expiry, strike = x["call"], x["date"], x["expiry"], x["strike"]
    keys = list(zip(date.view("i8").tolist(), expiry.view("i8").tolist(), strike.tolist()))
    calls, puts = np.flatnonzero(call), np.flatnonzero(~call)
    put_of = {keys[i]: i for i in puts.tolist()}
    if (len(put_of) < len(puts) or len({keys[i] for i in calls.tolist()}) < len(calls) or np.isnat(date).any()
            or np.isnat(expiry).any() or np.isnan(strike).any()):
        return _pairs_merged(pd.DataFrame(x))  # repeated or missing keys: the join's own rules
    # each key once per side: a lookup gives the inner join's rows (~5x faster than the merge)
    rc = np.array([i for i in calls.tolist() if keys[i] in put_of], dtype=np.int64)
    rc = rc[np.lexsort((strike[rc], expiry[rc], date[rc]))]
    rp = np.array([put_of[keys[i]] for i in rc.tolist()], dtype=np.int64)
    return pd.DataFrame({"row_c": rc, "date": date[rc], "expiry": expiry[rc], "strike": strike[rc],
                         "bid_c": x["bid"][rc], "ask_c": x["ask"][rc], "forward": fwd[rc], "discount": disc[rc],
                         "row_p": rp, "bid_p": x["bid"][rp], "ask_p": x["ask"][rp]})


def _pairs_merged(x: pd.DataFrame) -> pd.DataFrame:
    keys = ["date", "expiry", "strike"]
    c = x[x["call"]].drop(columns="call")
    p = x[~x["call"]].drop(columns=["call", "forward", "discount"])
    return c.merge(p, on=keys, suffixes=("_c", "_p")).sort_values(keys, kind="stable").reset_index(drop=True)


def _check(pairs: pd.DataFrame, future_half: np.ndarray | float, rules: LadderRules) -> pd.DataFrame:
    """Parity C_mid - P_mid - D (F - K) against the round-trip cost band (half-spreads)."""
    bid_c, ask_c, bid_p, ask_p, disc, fwd, k = (pairs[c].to_numpy(float) for c in (
        "bid_c", "ask_c", "bid_p", "ask_p", "discount", "forward", "strike"))
    parity = 0.5 * (bid_c + ask_c) - 0.5 * (bid_p + ask_p) - disc * (fwd - k)
    band = 0.5 * (ask_c - bid_c) + 0.5 * (ask_p - bid_p) + future_half
    bad = np.abs(parity) > rules.parity_cost_multiple * band + PARITY_ABS_TOL
    return pd.DataFrame({"date": pairs["date"].to_numpy(), "expiry": pairs["expiry"].to_numpy(), "strike": k,
                         "parity_mid": parity, "cost_band": band,
                         # an unusable quote (NaN) cannot confirm parity either
                         "data_error": bad | ~np.isfinite(parity)}, index=pairs.index)


def parity_report(marked_chain_day: pd.DataFrame, kind: Literal["spx", "vix"],
                  rules: LadderRules = LadderRules()) -> pd.DataFrame:
    """Put-call parity over every listed strike with both a call and a put (DESIGN §5: violations
    beyond costs are data errors). parity_mid = C_mid - P_mid - D (F - K); cost_band = the two
    half-spreads; data_error = |parity_mid| > parity_cost_multiple x cost_band. Columns: date,
    expiry, strike, parity_mid, cost_band, data_error."""
    return _check(_pairs(marked_chain_day, kind), 0.0, rules)[PARITY_COLUMNS]


def synthetic_calendar(marked_vix_day: pd.DataFrame, futures_day: pd.DataFrame,
                       rules: LadderRules = LadderRules()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Second engine (methodology "conversions / reversals"): replicate long M``l2_long_month`` /
    short M``l2_short_month`` with VIX options. On each expiry, the strike nearest the future
    (both quotes with bid > 0; a tie goes to the lower strike): synthetic long = +call -put,
    synthetic short = -call +put, so each pair's delta to its future is ±D (C - P = D (F - K)).

    Returns (legs, parity report). legs: chain columns plus month_index, side, fill (ask for +1, bid
    for -1); an expiry whose parity check is a data error contributes no legs. The report has one
    row per expiry checked (PARITY_COLUMNS plus month_index); its cost band adds the future's
    half-spread (the trade the synthetic replaces) to the options' half-spreads."""
    fut = _tradable_futures(futures_day).drop_duplicates("month_index").set_index("month_index")
    chain = marked_vix_day.reset_index(drop=True)
    pairs = _pairs(chain, "vix")
    pairs = pairs[(pairs["bid_c"] > 0) & (pairs["bid_p"] > 0)]
    legs, checks = [], []
    for month, side in ((rules.l2_long_month, 1), (rules.l2_short_month, -1)):  # two expiries
        if month not in fut.index:
            continue
        expiry = pd.Timestamp(fut.at[month, "expiry"])
        on = pairs[pairs["expiry"] == expiry]
        if on.empty:
            continue
        dist = np.abs(on["strike"].to_numpy(float) - on["forward"].to_numpy(float))
        pick = on.iloc[[np.argsort(dist, kind="stable")[0]]]  # ties: the first (lower) strike
        half = 0.5 * (float(fut.at[month, "ask"]) - float(fut.at[month, "bid"]))
        check = _check(pick, half if np.isfinite(half) else 0.0, rules)
        checks.append(check[PARITY_COLUMNS].assign(month_index=month))
        if bool(check["data_error"].iloc[0]):
            continue
        rows = chain.loc[[int(pick["row_c"].iloc[0]), int(pick["row_p"].iloc[0])]].copy()
        rows["month_index"] = month
        rows["side"] = np.array([side, -side])  # call row first, put row second
        rows["fill"] = np.where(rows["side"] > 0, rows["ask"].to_numpy(float), rows["bid"].to_numpy(float))
        legs.append(rows)
    leg_cols = list(chain.columns) + ["month_index", "side", "fill"]
    legs_df = pd.concat(legs, ignore_index=True) if legs else pd.DataFrame(columns=leg_cols)
    report = (pd.concat(checks, ignore_index=True) if checks
              else pd.DataFrame(columns=PARITY_COLUMNS + ["month_index"]))
    return legs_df[leg_cols], report


# ---- VX beta to spot VIX and the sizing rule -----------------------------------------------------

def vx_beta_to_spot(futures: pd.DataFrame, vix_close: pd.Series, window: int = 60,
                    min_obs: int | None = None) -> pd.DataFrame:
    """Per date and month_index: OLS slope (with intercept) of the daily settle change of the
    contract holding that month_index on the daily change of spot VIX, over the trailing ``window``
    sessions ending that date (no look-ahead), clipped to [0, BETA_CAP].

    Changes compare the same contract from the previous session of ``futures`` to this one (so a
    roll never mixes two contracts); a contract without a previous-session settle (newly listed)
    or a missing VIX close drops that observation. NaN until ``window`` sessions of changes exist
    and while fewer than ``min_obs`` (default window // 2) valid observations are in the window or
    spot VIX did not move; the engine then applies ``beta_fallback``. Columns: date, month_index, beta."""
    min_obs = window // 2 if min_obs is None else min_obs
    f = futures[futures["settle"].to_numpy(float) > 0].copy()
    f["date"] = pd.to_datetime(f["date"]).dt.normalize()
    dates = pd.DatetimeIndex(f["date"].unique()).sort_values()
    settle = f.drop_duplicates(["date", "contract"]).pivot(index="date", columns="contract", values="settle")
    settle = settle.reindex(dates)
    d_settle = settle.diff()  # consecutive sessions of the table, same contract
    vix = pd.Series(vix_close.to_numpy(float), index=pd.DatetimeIndex(vix_close.index).normalize())
    d_vix = vix[~vix.index.duplicated()].reindex(dates).diff()

    pos_row = dates.get_indexer(f["date"])
    pos_col = d_settle.columns.get_indexer(f["contract"])
    f["x"] = d_vix.to_numpy()[pos_row]
    f["y"] = d_settle.to_numpy()[pos_row, pos_col]
    y = f.drop_duplicates(["date", "month_index"]).pivot(index="date", columns="month_index", values="y")
    y = y.reindex(dates)
    x = pd.DataFrame(np.repeat(d_vix.to_numpy()[:, None], y.shape[1], axis=1), index=dates, columns=y.columns)
    valid = x.notna() & y.notna()
    xv, yv, w = x.where(valid, 0.0), y.where(valid, 0.0), valid.astype(float)

    def roll(a: pd.DataFrame) -> pd.DataFrame:
        # each window summed on its own (not a running sum): a date's beta is bit-identical
        # whatever earlier history the frame happens to start with (split runs = one run)
        arr = np.vstack([np.zeros((window - 1, a.shape[1])), a.to_numpy(float)])
        sums = np.lib.stride_tricks.sliding_window_view(arr, window, axis=0).sum(axis=-1)
        return pd.DataFrame(sums, index=a.index, columns=a.columns)

    n, sx, sy, sxy, sxx = roll(w), roll(xv), roll(yv), roll(xv * yv), roll(xv * xv)
    with np.errstate(invalid="ignore", divide="ignore"):
        var_x = sxx - sx * sx / n
        beta = (sxy - sx * sy / n) / var_x
    filled = np.arange(len(dates))[:, None] >= window  # row p holds changes at rows p-window+1..p >= 1
    ok = filled & (n.to_numpy() >= max(min_obs, 2)) & (var_x.to_numpy() > 1e-12)  # spot VIX must have moved
    beta = beta.where(ok).clip(0.0, BETA_CAP)
    out = beta.stack().rename("beta").reset_index()
    out.columns = ["date", "month_index", "beta"]
    present = f[["date", "month_index"]].drop_duplicates()
    out = present.merge(out, on=["date", "month_index"], how="left")
    return out.sort_values(["date", "month_index"], kind="stable").reset_index(drop=True)


def beta_fallback(month_index: np.ndarray) -> np.ndarray:
    """Documented fallback while ``vx_beta_to_spot`` is NaN: 1 / sqrt(month_index) (an assumption:
    later months move less than the front, roughly like the square root of time to expiry)."""
    return 1.0 / np.sqrt(np.asarray(month_index, dtype=float))
