"""Stress windows, the full replay and the synthetic shock (pure pandas/numpy).

Windows are fixed calendar ranges evaluated on whatever the books materialized: the 2008 crisis
(Sep-Dec 2008, and the whole 2007-10..2009-03 drawdown: real SPX and real VX futures under the
replay source), Aug 2011, Aug 2015, Feb 2018 (real SPX; VX from the model where the shipped futures
end), each labelled with the provenance of the rows it read; a window the books do not cover is
reported as not evaluated (the verdict: "cannot be tested"), never as a pass. A last row, the full
replay (`full_replay_window`), covers every session the books hold.

A window's drawdown runs from a peak inside the window to the lowest equity after it, followed past
the window's end until the equity regains that peak (or the books end): a crash that bottoms after
the window's last session is measured to its trough (`window_stats`).

The synthetic shock reprices the last day's book under a scenario (default: VIX +30 points over 5
sessions with the curve in backwardation, SPX -15 %): options by a full Black revaluation (so a
condor's loss stops at its wings) on the shocked underlying (SPX; for VIX options their VX
future, moved by its month's beta to spot VIX), SPX implied vols raised by the VIX move, five
sessions of decay; futures and stocks linearly; the VIX-futures margin takes its stress multiplier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alvh_pipeline.core import margin as mg
from alvh_pipeline.core.metrics import xirr
from alvh_pipeline.core.pricing import black

WINDOWS: dict[str, tuple[str, str]] = {
    "2008 crisis (Sep-Dec 2008)": ("2008-09-01", "2008-12-31"),
    "2007-10..2009-03 drawdown": ("2007-10-09", "2009-03-09"),
    "Aug 2011": ("2011-07-25", "2011-08-31"),
    "Aug 2015": ("2015-08-10", "2015-09-30"),
    "Feb 2018": ("2018-01-26", "2018-02-28"),
}
CRISIS_2008 = ("2008 crisis (Sep-Dec 2008)", "2007-10..2009-03 drawdown")
MIN_COVERAGE = 0.9  # share of a window's sessions the books must hold for it to be evaluated
# the account's columns `window_stats` reads beside attribution/daily_pnl
SIZING_COLUMNS = ["date", "mode", "vx_delta_dollars", "cap_dollars", "margin_call_vx_alone", "vx_futures_contracts"]


def with_sizing(daily: pd.DataFrame, account: pd.DataFrame) -> pd.DataFrame:
    """attribution/daily_pnl rows joined with the account's sizing columns (what `window_stats` reads)."""
    acc = account[SIZING_COLUMNS].assign(date=lambda x: pd.to_datetime(x["date"]))
    return daily.assign(date=pd.to_datetime(daily["date"])).merge(acc, on=["date", "mode"], how="left")
HEDGE_PNL = ("pnl_L1", "pnl_L2", "pnl_L3", "pnl_synthetic", "pnl_static")  # the hedge book's P&L by layer
FULL_REPLAY = "full replay"  # the name of the whole-history row starts with it: "full replay (start..end)"
VX_FUTURES = "vx_futures_contracts"  # books/account: gross VX futures contracts held at the close


@dataclass(frozen=True)
class Shock:
    vix_points: float = 30.0
    spx_return: float = -0.15
    sessions: int = 5
    name: str = "synthetic shock: VIX +30 in 5 sessions, backwardation, SPX -15 %"


def full_replay_window(daily: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """The window over every session `daily` holds, first to last (any mode), named
    "full replay (YYYY-MM-DD..YYYY-MM-DD)"; no window for empty books."""
    if not len(daily):
        return {}
    d = pd.to_datetime(daily["date"])
    a, b = str(d.min().date()), str(d.max().date())
    return {f"{FULL_REPLAY} ({a}..{b})": (a, b)}


def _drawdown(equity: np.ndarray, dates: pd.DatetimeIndex, first: int, last: int) -> dict:
    """The deepest fall from a peak inside a window to the lowest equity after it.

    `equity[first..last]` are the window's sessions, `equity[first - 1]` the equity before them
    (the starting point, itself a candidate peak); later entries are the sessions after the window.
    The running maximum is taken over the window only (a peak before it is never used) and held at
    the window's highest equity after its end; the curve is followed past the end until it regains
    that highest equity (then every peak of the window has been regained) or the data end. The
    depth is ``min_t(E_t / R_t) - 1`` over that stretch, R the restricted running maximum: per peak,
    the lowest equity before its recovery, the deepest over the window's peaks. Dates as
    `metrics.max_drawdown`: trough = first day of the deepest point, peak = the last day on or before
    it at the peak's value, recovered = the first day after the trough back at or above the peak."""
    s = first - 1
    inside = np.maximum.accumulate(equity[s:last + 1])
    top = inside[-1]
    regained = np.flatnonzero(equity[last + 1:] >= top)
    stop = last + 1 + (int(regained[0]) if regained.size else len(equity) - last - 1)  # exclusive
    running = np.r_[inside, np.full(stop - last - 1, top)]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = equity[s:stop] / running
    k = int(np.nanargmin(ratio))
    depth = float(ratio[k] - 1.0)
    if not depth < 0:
        return {"max_drawdown": 0.0, "drawdown_peak": None, "drawdown_trough": None, "drawdown_recovered": None,
                "trough_after_window_end": False}
    trough = s + k
    peak_value = running[k]
    peak = s + int(np.flatnonzero(equity[s:trough + 1] == peak_value)[-1])
    back = np.flatnonzero(equity[trough + 1:] >= peak_value)
    recovered = dates[trough + 1 + int(back[0])] if back.size else None
    return {"max_drawdown": depth, "drawdown_peak": str(dates[peak].date()),
            "drawdown_trough": str(dates[trough].date()),
            "drawdown_recovered": str(recovered.date()) if recovered is not None else None,
            "trough_after_window_end": bool(trough > last)}


def _vx_futures_days(w: pd.DataFrame) -> float:
    """Sessions of `w` on which the mode held VX futures at the close; NaN (unknown) when the books
    do not report the holdings (no `vx_futures_contracts` column, or a missing value in the window)."""
    if VX_FUTURES not in w:
        return np.nan
    held = pd.to_numeric(w[VX_FUTURES], errors="coerce").to_numpy(float)
    return float(np.count_nonzero(held > 0)) if np.isfinite(held).all() else np.nan


def window_stats(daily: pd.DataFrame, sessions: pd.DatetimeIndex, name: str, start: str, end: str,
                 min_coverage: float = MIN_COVERAGE) -> list[dict]:
    """Per mode, for the window [start, end]: maximum drawdown, worst day, margin calls (all, and
    those the VIX-futures leg alone causes), hedge payoff / condor loss, sizing-cap use, IRR of the
    window (its starting equity in, its ending equity out), sessions holding VX futures, coverage
    and provenance. `daily` = attribution/daily_pnl rows joined with the account's sizing columns
    (`vx_delta_dollars`, `cap_dollars`, `margin_call_vx_alone`, `vx_futures_contracts`), every
    session the books hold (the drawdown reads past the window's end).

    A mode's window is evaluated when the books hold at least `min_coverage` of its sessions (of
    `sessions`, the exchange calendar) and more than one.

    Drawdown (`max_drawdown` <= 0, `drawdown_peak`, `drawdown_trough`, `drawdown_recovered` as ISO
    dates or None, `trough_after_window_end`): from the highest equity at or after the window's start
    and not after its end (the equity at the close before its first session is the starting point,
    dated that close, or the day before the books' first session) to the lowest equity after
    that peak, followed past the window's end until the equity regains the peak or the books end,
    the deepest over the window's peaks (`_drawdown`). So a window that stops before the trough still
    measures the whole fall from its peak; a peak before the window is never used. No drawdown:
    0.0 and no dates.

    Every other figure is over the window's own sessions: worst day, margin calls, hedge and
    condor P&L, sizing-cap use, IRR, provenance, and `vx_futures_days` (the sessions on which the
    mode held VX futures at the close; NaN when the books do not report it, never 0)."""
    want = sessions[(sessions >= start) & (sessions <= end)]
    out = []
    for mode, g in daily.groupby("mode", sort=True):
        g = g.assign(date=pd.to_datetime(g["date"])).sort_values("date").reset_index(drop=True)
        inside = ((g["date"] >= start) & (g["date"] <= end)).to_numpy()
        w = g[inside]
        coverage = len(w) / len(want) if len(want) else 0.0
        row = {"window": name, "start": start, "end": end, "mode": mode, "sessions": len(w),
               "coverage": coverage, "evaluated": bool(coverage >= min_coverage and len(w) > 1)}
        if not row["evaluated"]:
            out.append(row | {"provenance": "not materialized"})
            continue
        # the whole curve: the books' starting equity (the day before their first session), then each close
        initial = float(g["equity"].iloc[0] - g["equity_change"].iloc[0])
        equity = np.r_[initial, g["equity"].to_numpy(float)]
        dates = pd.DatetimeIndex([g["date"].iloc[0] - pd.Timedelta(days=1), *g["date"]])
        at = np.flatnonzero(inside) + 1  # the window's sessions' places on the curve
        first = float(equity[at[0] - 1])
        ret = w["equity_change"].to_numpy() / np.r_[first, w["equity"].to_numpy()[:-1]]
        worst = int(np.argmin(ret))
        hedge = float(w[[c for c in HEDGE_PNL if c in w]].sum().sum())
        condor_loss = -float(w["pnl_condor"].sum())
        cap = w["cap_dollars"].to_numpy(float)
        use = np.where(cap > 0, w["vx_delta_dollars"].to_numpy(float) / np.where(cap > 0, cap, 1.0), 0.0)
        row.update(_drawdown(equity, dates, int(at[0]), int(at[-1])))
        row.update({
            "worst_day": str(w["date"].iloc[worst].date()), "worst_day_return": float(ret[worst]),
            "margin_calls": int(w["margin_calls"].sum()), "margin_calls_vx_alone": int(w["margin_call_vx_alone"].sum()),
            "margin_call_size": float(w["margin_call_size"].sum()),
            "hedge_pnl": hedge, "condor_pnl": -condor_loss,
            "hedge_payoff_over_condor_loss": hedge / condor_loss if condor_loss > 0 else np.nan,
            "max_sizing_cap_use": float(use.max()) if len(use) else 0.0,
            "vx_futures_days": _vx_futures_days(w),
            "irr": xirr([w["date"].iloc[0] - pd.Timedelta(days=1), w["date"].iloc[-1]],
                        [-first, float(w["equity"].iloc[-1])]),
            "provenance": "; ".join(sorted(set(w["provenance"].astype(str)))),
        })
        out.append(row)
    return out


def stress_table(daily: pd.DataFrame, sessions: pd.DatetimeIndex, windows: dict[str, tuple[str, str]] = WINDOWS,
                 full_replay: bool = True) -> pd.DataFrame:
    """`window_stats` for each of `windows`, then (`full_replay`) the full replay over every
    session the books hold (`full_replay_window`; evaluated whenever a mode holds > 1 session,
    whatever its coverage of the calendar)."""
    rows = [r for name, (a, b) in windows.items() for r in window_stats(daily, sessions, name, a, b)]
    if full_replay:
        rows += [r for name, (a, b) in full_replay_window(daily).items()
                 for r in window_stats(daily, sessions, name, a, b, min_coverage=0.0)]
    return pd.DataFrame(rows)


def shock_scenario(legs: pd.DataFrame, account: pd.DataFrame, shock: Shock = Shock()) -> pd.DataFrame:
    """The last day's book of each mode under `shock`, repriced with its greeks (module doc)."""
    rows = []
    last = pd.to_datetime(account["date"]).max()
    acc = account[pd.to_datetime(account["date"]) == last]
    book = legs[pd.to_datetime(legs["date"]) == last] if len(legs) else legs
    for _, a in acc.iterrows():
        m = book[book["mode"] == a["mode"]] if len(book) else book
        pnl = {"condor": 0.0, "hedge": 0.0, "statarb": 0.0}
        vx_margin_after = float(a.get("margin_vx", 0.0))
        if len(m):
            q = m["quantity"].to_numpy(float) * m["multiplier"].to_numpy(float)
            spx = m["instrument"].eq("SPX").to_numpy()
            vix_linked = m["instrument"].isin(["VIX", "VX"]).to_numpy()
            level = m["underlying"].to_numpy(float)
            beta = np.where(np.isfinite(m["beta_to_vix"].to_numpy(float)), m["beta_to_vix"].to_numpy(float), 0.7)
            d_s = np.where(spx, level * shock.spx_return, np.where(vix_linked, beta * shock.vix_points, 0.0))
            d_s = np.where(m["kind"].eq("equity").to_numpy(), level * shock.spx_return, d_s)
            change = q * d_s  # futures and stocks: linear in their own price
            opt = m["kind"].eq("option").to_numpy()
            if opt.any():  # options: full Black revaluation, so a condor's loss stops at its wings
                t_left = (pd.to_datetime(m["expiry"]) - last).dt.days.to_numpy(float) / 365.0
                t_after = np.maximum(t_left - shock.sessions * 7 / 5 / 365.0, 1e-6)
                iv = np.where(np.isfinite(m["iv"].to_numpy(float)), m["iv"].to_numpy(float), 0.2)
                vol_after = np.where(spx, iv + shock.vix_points / 100.0, iv)  # SPX vols rise with VIX
                value = black(level + d_s, m["strike"].to_numpy(float), t_after, vol_after, 1.0,
                              m["right"].to_numpy())
                change = np.where(opt, q * (value - m["mark"].to_numpy(float)), change)
            for book_name, v in pd.Series(change).groupby(m["book"].to_numpy()).sum().items():
                pnl["hedge" if book_name == "alvh" else book_name] += float(v)
            stress_after = mg.vx_stress_multiplier(float(np.nanmax(level[vix_linked])) + shock.vix_points) \
                if vix_linked.any() else 1.0
            stress_now = mg.vx_stress_multiplier(float(np.nanmax(level[vix_linked]))) if vix_linked.any() else 1.0
            vx_margin_after = float(a.get("margin_vx", 0.0)) * stress_after / stress_now
        equity_after = float(a["equity"]) + sum(pnl.values())
        requirement_after = float(a["margin_requirement"]) - float(a.get("margin_vx", 0.0)) + vx_margin_after
        rows.append({"window": shock.name, "mode": a["mode"], "as_of": str(last.date()),
                     "equity_before": float(a["equity"]), "pnl_condor": pnl["condor"], "pnl_hedge": pnl["hedge"],
                     "pnl_statarb": pnl["statarb"], "drawdown": equity_after / float(a["equity"]) - 1.0,
                     "margin_requirement_after": requirement_after, "margin_call": requirement_after > equity_after,
                     "margin_call_vx_alone": bool(requirement_after > equity_after
                                                  and vx_margin_after >= requirement_after - equity_after),
                     "hedge_payoff_over_condor_loss": pnl["hedge"] / -pnl["condor"] if pnl["condor"] < 0 else np.nan,
                     "sizing_cap_use": float(a["vx_delta_dollars"]) / float(a["cap_dollars"])
                     if float(a["cap_dollars"]) > 0 else 0.0,
                     "provenance": f"model scenario on the book of {last.date()} ({a['provenance']})"})
    return pd.DataFrame(rows)
