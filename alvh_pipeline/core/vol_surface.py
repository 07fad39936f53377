"""Implied-volatility surface features from option chains (DESIGN §4 `features/vol_surface`, §9).

Inversion (``implied_vols``): mid = (bid + ask) / 2 is inverted through the Black formula
(`core.pricing.implied_vol`, vectorized safeguarded Newton) on the forward F and discount
D = exp(-rT), T = calendar days to expiry / 365:

* SPX (Black-Scholes): F = S exp((r - q) T) from the chain's underlying, rate and dividend yield;
* VIX (Black-76): F = the same-month VX future (`future_price`), options priced on it, not on spot.

A quote with bid <= 0 (or ask < bid, or a mid outside the no-arbitrage bounds) gets NaN.

SPX smile points per (date, expiry) (``smile_points``), on out-of-the-money quotes only (puts
for K < F, calls for K >= F, bid > 0):

* ATM: IV linearly interpolated in log-moneyness k = ln(K/F) at k = 0 between the last put
  strike below F and the first call strike at or above it;
* 25Δ put / 25Δ call: Black-Scholes spot delta with each strike's own IV,
  Δ_put = -e^{-qT} N(-d1), Δ_call = e^{-qT} N(d1), d1 = (ln(F/K) + σ²T/2)/(σ√T); the IV at
  Δ = -0.25 (puts) / +0.25 (calls) is linearly interpolated in delta between the two adjacent
  strikes that bracket it (the bracket nearest the money when the delta is not monotone).

Constant maturity (``spx_surface``): each point (fixed delta / ATM) is interpolated to the target
maturity τ linearly in total variance w = σ²T between the bracketing expiries T1 <= τ < T2
among expiries with at least ``min_days`` (7) days:

    σ²(τ) τ = w1 (T2 - τ)/(T2 - T1) + w2 (τ - T1)/(T2 - T1),

flat in vol outside the listed range. Skew features (DESIGN §4):
``skew_slope = iv_25p - iv_25c``, ``skew_curvature = iv_25p + iv_25c - 2 iv_atm``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from alvh_pipeline.core.pricing import black_delta, implied_vol

__all__ = [
    "implied_vols",
    "smile_points",
    "spx_surface",
    "term_interpolate",
    "vix_option_atm_iv",
]

DAYS_PER_YEAR = 365.0


def _inputs(chain: pd.DataFrame, kind: Literal["spx", "vix"]) -> pd.DataFrame:
    """Per-row inversion inputs: date, expiry, days, T, K, is_call, mid, F, D, div-discount, valid."""
    date = pd.to_datetime(chain["date"]).to_numpy("datetime64[ns]")
    expiry = pd.to_datetime(chain["expiry"]).to_numpy("datetime64[ns]")
    days = (expiry - date).astype("timedelta64[D]").astype(float)
    t = days / DAYS_PER_YEAR
    bid = chain["bid"].to_numpy(float)
    ask = chain["ask"].to_numpy(float)
    r = chain["rate"].to_numpy(float)
    if kind == "spx":
        q = chain["dividend_yield"].to_numpy(float)
        fwd = chain["underlying"].to_numpy(float) * np.exp((r - q) * t)
        spot_df = np.exp(-q * t)
    elif kind == "vix":
        fwd = chain["future_price"].to_numpy(float)
        spot_df = np.exp(-r * t)
    else:
        raise ValueError(f"kind must be 'spx' or 'vix', got {kind!r}")
    is_call = np.char.upper(chain["option_type"].to_numpy().astype(str)) == "C"
    return pd.DataFrame(
        {
            "date": date, "expiry": expiry, "days": days, "t": t,
            "strike": chain["strike"].to_numpy(float), "is_call": is_call,
            "mid": 0.5 * (bid + ask), "forward": fwd, "discount": np.exp(-r * t),
            "delta_df": spot_df, "valid": (bid > 0) & (ask >= bid) & (t > 0),
        }
    )


def _invert(x: pd.DataFrame) -> np.ndarray:
    iv = implied_vol(x["mid"].to_numpy(), x["forward"].to_numpy(), x["strike"].to_numpy(),
                     np.where(x["t"] > 0, x["t"], 1.0), x["discount"].to_numpy(), x["is_call"].to_numpy())
    return np.where(x["valid"].to_numpy(), iv, np.nan)


def implied_vols(chain: pd.DataFrame, kind: Literal["spx", "vix"] = "spx") -> np.ndarray:
    """Per-row implied vol of the mid, aligned with ``chain``'s rows (module doc).

    kind="spx": Black-Scholes on F = S e^{(r-q)T}; kind="vix": Black-76 on ``future_price``.
    Both: D = e^{-rT}, T = days/365. NaN where bid <= 0, ask < bid, T <= 0 or the mid is
    outside the no-arbitrage bounds.
    """
    return _invert(_inputs(chain, kind))


def _otm(x: pd.DataFrame) -> pd.DataFrame:
    """Valid out-of-the-money quotes (puts K < F, calls K >= F) with their IV, log-moneyness,
    delta and a group id per (date, expiry), sorted by group then strike."""
    otm = np.where(x["is_call"], x["strike"] >= x["forward"], x["strike"] < x["forward"])
    x = x[otm & x["valid"]].copy()
    x["iv"] = _invert(x)
    x = x[np.isfinite(x["iv"])]
    x["k"] = np.log(x["strike"] / x["forward"])
    x["delta"] = black_delta(x["forward"].to_numpy(), x["strike"].to_numpy(), x["t"].to_numpy(),
                             x["iv"].to_numpy(), x["delta_df"].to_numpy(), x["is_call"].to_numpy())
    x = x.sort_values(["date", "expiry", "strike", "is_call"], kind="stable").reset_index(drop=True)
    x["gid"] = x.groupby(["date", "expiry"], sort=False).ngroup()
    return x


def _crossing(x: pd.DataFrame, xcol: str, ycol: str, target: float, prefer: Literal["first", "last"]) -> pd.Series:
    """Per group ``gid``: y linearly interpolated at xcol == target between adjacent rows
    (in the frame's order) that bracket the target; the first or last such pair per group."""
    gid = x["gid"].to_numpy()
    x0, y0 = x[xcol].to_numpy(), x[ycol].to_numpy()
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    same = np.r_[gid[1:] == gid[:-1], False]
    with np.errstate(invalid="ignore", divide="ignore"):
        hit = same & ((x0 - target) * (x1 - target) <= 0) & (x0 != x1)
        y = y0 + (target - x0) / (x1 - x0) * (y1 - y0)
    found = pd.Series(y[hit], index=gid[hit])
    found = found[~found.index.duplicated(keep="first" if prefer == "first" else "last")]
    return found


def smile_points(chain: pd.DataFrame) -> pd.DataFrame:
    """SPX 25Δ put, ATM and 25Δ call implied vols per (date, expiry) (module doc).

    Columns: date, expiry, days, forward, iv_25p, iv_atm, iv_25c (NaN where the chain does not
    reach the point). Rows sorted by date, expiry.
    """
    x = _otm(_inputs(chain, "spx"))
    groups = x.drop_duplicates("gid")[["gid", "date", "expiry", "days", "forward"]].set_index("gid")
    puts, calls = x[~x["is_call"]], x[x["is_call"]]
    # Puts: delta runs from ~0 (low strikes) to ~-0.5 near F, so the last bracket is nearest the money.
    groups["iv_25p"] = _crossing(puts, "delta", "iv", -0.25, prefer="last")
    groups["iv_atm"] = _crossing(x, "k", "iv", 0.0, prefer="first")
    groups["iv_25c"] = _crossing(calls, "delta", "iv", 0.25, prefer="first")
    return groups.reset_index(drop=True)


def term_interpolate(points: pd.DataFrame, column: str, target_days: float, min_days: float = 7) -> pd.Series:
    """Per date, ``column`` (a vol) interpolated to ``target_days`` linearly in total variance
    σ²T between the bracketing expiries (days <= target < days); flat vol outside the range.
    Only rows with ``days >= min_days`` and a finite value are used. Index: date."""
    p = points.loc[(points["days"] >= min_days) & np.isfinite(points[column]), ["date", "days", column]]
    p = p.sort_values(["date", "days"], kind="stable")
    lo = p[p["days"] <= target_days].groupby("date").last()
    hi = p[p["days"] > target_days].groupby("date").first()
    both = lo.join(hi, how="outer", lsuffix="_lo", rsuffix="_hi")
    t1, t2 = both["days_lo"].to_numpy(), both["days_hi"].to_numpy()
    v1, v2 = both[f"{column}_lo"].to_numpy(), both[f"{column}_hi"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        w = (v1**2 * t1 * (t2 - target_days) + v2**2 * t2 * (target_days - t1)) / (t2 - t1)
        inside = np.sqrt(w / target_days)
    out = np.where(np.isnan(t1), v2, np.where(np.isnan(t2), v1, inside))  # flat vol outside
    out = np.where(t1 == target_days, v1, out)
    return pd.Series(out, index=pd.DatetimeIndex(both.index, name="date"), name=column)


def spx_surface(
    chain: pd.DataFrame,
    target_days: float = 30,
    term_days: Sequence[float] = (60, 90),
    min_days: float = 7,
) -> pd.DataFrame:
    """Per-date SPX surface features at ``target_days`` (module doc).

    Columns: iv_25p, iv_atm, iv_25c (each interpolated to ``target_days`` in total variance),
    skew_slope = iv_25p - iv_25c, skew_curvature = iv_25p + iv_25c - 2 iv_atm, and the ATM term
    structure iv_atm_<d> for each d in ``term_days``. Index ``date``.
    """
    pts = smile_points(chain)
    out = pd.DataFrame({c: term_interpolate(pts, c, target_days, min_days) for c in ("iv_25p", "iv_atm", "iv_25c")})
    out["skew_slope"] = out["iv_25p"] - out["iv_25c"]
    out["skew_curvature"] = out["iv_25p"] + out["iv_25c"] - 2.0 * out["iv_atm"]
    for d in term_days:
        out[f"iv_atm_{int(d) if float(d).is_integer() else d}"] = term_interpolate(pts, "iv_atm", d, min_days)
    out.index.name = "date"
    return out.sort_index()


def vix_option_atm_iv(chain: pd.DataFrame, min_days: float = 1) -> pd.DataFrame:
    """Black-76 ATM implied vol of the front-month VIX options per date.

    Front month = the nearest expiry with at least ``min_days`` calendar days. ATM IV = OTM
    Black-76 IVs (puts K < F, calls K >= F, F = future_price) linearly interpolated in
    ln(K/F) at 0. Columns: expiry, days, future_price, iv_atm. Index ``date``.
    """
    x = _inputs(chain, "vix")
    x = x[x["days"] >= min_days]
    front = x.groupby("date")["expiry"].transform("min")
    x = _otm(x[x["expiry"] == front])
    groups = x.drop_duplicates("gid")[["gid", "date", "expiry", "days", "forward"]].set_index("gid")
    groups["iv_atm"] = _crossing(x, "k", "iv", 0.0, prefer="first")
    out = groups.rename(columns={"forward": "future_price"}).set_index("date")
    out.index = pd.DatetimeIndex(out.index, name="date")
    return out[["expiry", "days", "future_price", "iv_atm"]].sort_index()
