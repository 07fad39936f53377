"""Macro and regime features: proximity of FOMC / CPI / PPI releases, the NYSE advance-decline
line, REER and rate-differential changes, and an observable calm / elevated / stressed label.

Macro-event proximity on day t uses only the calendar *as known on t*: the ``macro_events``
snapshot with the latest as-of ``date <= t`` (normally t's own rows).  For each event type::

    next_event_t  = min{ event_date in that snapshot : event_date >= t }
    days_to_{E}_t = number of NYSE sessions in (t, next_event_t]      (0 on the event day)
    is_{E}_day_t  = next_event_t == t

NaN (and False) when the snapshot lists no upcoming release of that type (the synthetic and
replay calendars look 90 days ahead; FOMC meets at most ~7 weeks apart, CPI / PPI monthly).

A/D line: ``AD_t = sum_{s <= t} (advancers_s - decliners_s)`` from the first row given.  Its
level depends on where the input window starts; only its changes are comparable across runs.

Rates, over ``w`` trading days (rows), w = 20 by default::

    reer_change_t      = ln(REER_t / REER_{t-w})          (log change of the index)
    rate_diff_change_t = RD_t - RD_{t-w}                  (change in the differential, fraction)
    tbill_change_t     = TB_t - TB_{t-w}

Regime label from observable quantities only (VIX close, VX1 / VX2 settlements, breadth)::

    backwardated = VX1 > VX2
    stressed  if VIX >= 30, or VIX >= 20 and backwardated
    elevated  elif VIX >= 20, or backwardated, or breadth is weak
    calm      otherwise

Breadth is weak when the A/D line's ``ad_window``-day change is unusually negative: its z-score
against the previous ``ad_lookback`` days (excluding today) is below ``ad_z`` (-1.5).  20 / 30
are the conventional VIX bands (VIX long-run median ~ 18; above 30 only in market stress);
backwardation of the front of the curve is the futures market pricing near-term stress above
later months.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from alvh_pipeline.core.calendar import business_days_between
from alvh_pipeline.core.rolling import trailing_zscore

__all__ = [
    "REGIME_LABELS",
    "advance_decline_line",
    "days_to_next",
    "rates_changes",
    "regime_label",
    "vix_curve_inputs",
]

REGIME_LABELS = ("calm", "elevated", "stressed")


def days_to_next(
    macro_events: pd.DataFrame,
    dates: Sequence | pd.DatetimeIndex,
    event_types: Sequence[str] = ("FOMC", "CPI", "PPI"),
) -> pd.DataFrame:
    """Trading days to the next release of each type and event-day flags, per date.

    ``macro_events``: the validated table (``date`` = as-of, ``event_type``, ``event_date``).
    Returns a frame indexed by ``dates`` with ``days_to_{type}`` (float, NaN if unknown) and
    ``is_{type}_day`` (bool) for each type; definitions in the module docstring.
    """
    d = pd.DatetimeIndex(pd.to_datetime(list(dates))).normalize().as_unit("ns")
    ev = macro_events[macro_events["event_type"].isin(list(event_types))]
    ev = ev.assign(asof=pd.to_datetime(ev["date"]).astype("datetime64[ns]"),
                   event_date=pd.to_datetime(ev["event_date"]).astype("datetime64[ns]"))
    ev = ev[["asof", "event_type", "event_date"]]
    # the snapshot each day may use: latest as-of <= day
    snaps = np.sort(ev["asof"].unique())
    pos = np.searchsorted(snaps, d.values, side="right") - 1
    has = pos >= 0
    left = pd.DataFrame({"day": d[has], "asof": snaps[pos[has]]})
    joined = left.merge(ev, on="asof", how="inner")  # ~18 rows per day
    joined = joined[joined["event_date"] >= joined["day"]]
    nxt = joined.groupby(["day", "event_type"])["event_date"].min().unstack("event_type")
    nxt = nxt.reindex(index=d, columns=list(event_types))

    out = {}
    for t in event_types:  # one vectorised column per event type (3)
        e = nxt[t]
        known = e.notna().to_numpy()
        days = np.full(len(d), np.nan)
        if known.any():
            days[known] = business_days_between(d[known], pd.DatetimeIndex(e[known]))
        out[f"days_to_{t}"] = days
        out[f"is_{t}_day"] = days == 0
    return pd.DataFrame(out, index=d)


def advance_decline_line(breadth: pd.DataFrame, exchange: str = "NYSE") -> pd.Series:
    """Cumulative ``advancers - decliners`` of ``exchange`` by date (module docstring)."""
    b = breadth[breadth["exchange"] == exchange] if "exchange" in breadth else breadth
    net = (b["advancers"].astype(np.int64) - b["decliners"].astype(np.int64)).to_numpy()
    s = pd.Series(net, index=pd.DatetimeIndex(pd.to_datetime(b["date"])), name="ad_line").sort_index()
    if s.index.has_duplicates:
        raise ValueError(f"breadth: several rows per date for {exchange}")
    return s.cumsum()


def rates_changes(rates: pd.DataFrame, window: int = 20) -> pd.DataFrame:
    """``window``-row changes of REER (log), the rate differential and the T-bill, by date."""
    r = rates.set_index(pd.DatetimeIndex(pd.to_datetime(rates["date"]))).sort_index()
    if r.index.has_duplicates:
        raise ValueError("rates: several rows per date")
    return pd.DataFrame(
        {
            "reer_change": np.log(r["reer_index"].astype(np.float64)).diff(window),
            "rate_diff_change": r["rate_differential"].astype(np.float64).diff(window),
            "tbill_change": r["tbill_3m"].astype(np.float64).diff(window),
        }
    )


def vix_curve_inputs(index_levels: pd.DataFrame, vix_futures: pd.DataFrame) -> pd.DataFrame:
    """``vix`` (VIX close), ``vx1``, ``vx2`` (front / second VX settlements) by date."""
    vix = index_levels[index_levels["index"] == "VIX"].set_index("date")["close"]
    fut = vix_futures[vix_futures["month_index"].isin([1, 2])]
    w = fut.pivot_table(index="date", columns="month_index", values="settle", aggfunc="first")
    out = pd.DataFrame({"vix": vix}).join(w.reindex(columns=[1, 2]).set_axis(["vx1", "vx2"], axis=1), how="outer")
    out.index = pd.DatetimeIndex(out.index)
    return out.sort_index()


def regime_label(
    vix: pd.Series,
    vx1: pd.Series,
    vx2: pd.Series,
    ad_line: pd.Series | None = None,
    *,
    calm_below: float = 20.0,
    stressed_at: float = 30.0,
    ad_window: int = 20,
    ad_lookback: int = 252,
    ad_z: float = -1.5,
) -> pd.Series:
    """Calm / elevated / stressed label per date (rules in the module docstring).

    Inputs are Series by date (aligned on ``vix``'s index).  Returns an ordered categorical
    Series named ``regime``; NaN where VIX is missing.  A missing VX1 / VX2 counts as not
    backwardated, a missing breadth z-score as not weak.
    """
    idx = vix.index
    v = vix.astype(np.float64).to_numpy()
    f1 = vx1.reindex(idx).astype(np.float64).to_numpy()
    f2 = vx2.reindex(idx).astype(np.float64).to_numpy()
    with np.errstate(invalid="ignore"):
        bw = np.nan_to_num(f1 - f2, nan=0.0) > 0
        weak = np.zeros(len(idx), dtype=bool)
        if ad_line is not None:
            chg = ad_line.astype(np.float64).diff(ad_window)
            z = trailing_zscore(chg, ad_lookback).reindex(idx).to_numpy()
            weak = np.nan_to_num(z, nan=0.0) < ad_z
        stressed = (v >= stressed_at) | ((v >= calm_below) & bw)
        elevated = (v >= calm_below) | bw | weak
    code = np.where(stressed, 2, np.where(elevated, 1, 0))
    labels = np.asarray(REGIME_LABELS, dtype=object)[code]
    labels[np.isnan(v)] = None
    cat = pd.Categorical(labels, categories=list(REGIME_LABELS), ordered=True)
    return pd.Series(cat, index=idx, name="regime")
