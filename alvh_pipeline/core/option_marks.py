"""Marks and greeks for SPX and VIX option chains (books layer, /tmp/books_api.md `core/option_marks.py`).

Every row is marked on the Black formula with forward F, discount D = e^{-rT}, T = calendar
days to expiry / 365 (the same inputs as `core.vol_surface`):

* SPX (Black-Scholes on spot S with dividend yield q): F = S e^{(r-q)T}, carry b = r - q,
  greeks w.r.t. S, so the "spot discount" is e^{-qT};
* VIX (Black-76 on the same-expiry VX future F): carry b = 0, greeks w.r.t. F, spot discount D.

With d1 = (ln(F/K) + σ²T/2)/(σ√T), φ the normal density, U the underlying (S or F) and
D_U the spot discount:

    delta = D_U N(d1) (call),  D_U (N(d1) - 1) (put)
    gamma = D_U φ(d1) / (U σ √T)                                   (calls and puts alike)
    vega  = D F φ(d1) √T × 0.01                                     (per vol point)
    Θ_year = r V - D F φ(d1) σ / (2√T) - b D F N(d1)      (call)
    Θ_year = r V - D F φ(d1) σ / (2√T) + b D F N(-d1)     (put)
    theta = Θ_year / 365                                            (per calendar day)

Θ_year = -∂V/∂T at fixed S (SPX) or F (VIX): for SPX it is the textbook
-S e^{-qT} φ σ/(2√T) - r K e^{-rT} N(d2) + q S e^{-qT} N(d1) (call), since S e^{-qT} = D F.
At zero total variance (T = 0 or σ = 0) gamma and the decay term take their σ√T -> 0+ limits:
0 away from the money, undefined (NaN) exactly at F = K, where gamma is a Dirac mass.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import ndtr

from alvh_pipeline.core.pricing import _d1, _is_call, _npdf, black, black_delta, black_vega
from alvh_pipeline.core.vol_surface import DAYS_PER_YEAR, implied_vols

__all__ = ["black_gamma", "black_theta", "mark_chain", "VOL_POINT", "DAYS_PER_YEAR"]

VOL_POINT = 0.01  # vega is quoted per 1 vol point


def black_gamma(forward: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike, discount_to_spot: ArrayLike,
                underlying: ArrayLike) -> np.ndarray:
    """d delta / d underlying = D_U φ(d1) / (U σ √T), per index point of the underlying U
    (spot for Black-Scholes with D_U = e^{-qT}; the future for Black-76 with D_U = e^{-rT}).
    σ√T = 0: 0 off the money, NaN at F = K (module doc)."""
    f, k, t, v, du, u = np.broadcast_arrays(*(np.asarray(a, dtype=float)
                                              for a in (forward, strike, t, vol, discount_to_spot, underlying)))
    sd = v * np.sqrt(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = du * _npdf(_d1(f, k, sd)) / (u * sd)
    return np.where(sd <= 0, np.where(f != k, 0.0, np.nan), g)  # a NaN vol stays NaN


def black_theta(forward: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike, rate: ArrayLike, carry: ArrayLike,
                option_type: ArrayLike) -> np.ndarray:
    """Θ_year = -∂V/∂T per year at a fixed underlying (module doc):
    r V - D F φ(d1) σ/(2√T) ∓ b D F N(±d1), D = e^{-rT}, carry b = r - q (SPX) or 0 (Black-76).
    Divide by 365 for the change per calendar day."""
    f, k, t, v, r, b = np.broadcast_arrays(*(np.asarray(a, dtype=float)
                                             for a in (forward, strike, t, vol, rate, carry)))
    call = np.broadcast_to(_is_call(option_type), f.shape)
    d = np.exp(-r * t)
    sd = v * np.sqrt(t)
    d1 = _d1(f, k, sd)
    with np.errstate(divide="ignore", invalid="ignore"):
        decay = d * f * _npdf(d1) * v / (2.0 * np.sqrt(t))
    decay = np.where(sd <= 0, np.where(f != k, 0.0, np.nan), decay)
    value = black(f, k, t, v, d, call)
    carry_term = np.where(call, -b * d * f * ndtr(d1), b * d * f * ndtr(-d1))
    return r * value - decay + carry_term


def mark_chain(chain: pd.DataFrame, kind: Literal["spx", "vix"]) -> pd.DataFrame:
    """A copy of `chain` (validated SPX or VIX chain rows, any number of days) with columns
    mid = (bid + ask)/2, dte (int calendar days), t = dte/365, forward, iv (Black implied vol of
    the mid, `vol_surface.implied_vols`: NaN where bid <= 0, ask < bid, T <= 0 or the mid is
    outside the no-arbitrage bounds), delta, gamma, vega (per vol point), theta (per calendar
    day) from the module-doc formulas, and iv_from_model (True where iv is NaN and the greeks
    use the row's `model_iv` instead; greeks are NaN where neither vol is available)."""
    if kind not in ("spx", "vix"):
        raise ValueError(f"kind must be 'spx' or 'vix', got {kind!r}")
    out = chain.copy()
    date = pd.to_datetime(chain["date"]).to_numpy("datetime64[ns]")
    expiry = pd.to_datetime(chain["expiry"]).to_numpy("datetime64[ns]")
    dte = (expiry - date).astype("timedelta64[D]").astype(np.int64)
    t = dte / DAYS_PER_YEAR
    t_ok = np.where(t >= 0, t, np.nan)  # an expired row has no greeks (and no sqrt warning)
    bid, ask = chain["bid"].to_numpy(float), chain["ask"].to_numpy(float)
    strike = chain["strike"].to_numpy(float)
    r = chain["rate"].to_numpy(float)
    call = _is_call(chain["option_type"].to_numpy())
    if kind == "spx":
        q = chain["dividend_yield"].to_numpy(float)
        underlying = chain["underlying"].to_numpy(float)
        forward = underlying * np.exp((r - q) * t)
        spot_df, carry = np.exp(-q * t), r - q
    else:
        forward = chain["future_price"].to_numpy(float)
        underlying, spot_df, carry = forward, np.exp(-r * t), np.zeros_like(r)
    iv = implied_vols(chain, kind)
    model_iv = chain["model_iv"].to_numpy(float) if "model_iv" in chain else np.full(len(chain), np.nan)
    from_model = ~np.isfinite(iv) & np.isfinite(model_iv)
    vol = np.where(np.isfinite(iv), iv, model_iv)
    discount = np.exp(-r * t)

    out["mid"] = 0.5 * (bid + ask)
    out["dte"] = dte
    out["t"] = t
    out["forward"] = forward
    out["iv"] = iv
    out["delta"] = black_delta(forward, strike, t_ok, vol, spot_df, call)
    out["gamma"] = black_gamma(forward, strike, t_ok, vol, spot_df, underlying)
    out["vega"] = black_vega(forward, strike, t_ok, vol, discount) * VOL_POINT
    out["theta"] = black_theta(forward, strike, t_ok, vol, r, carry, call) / DAYS_PER_YEAR
    out["iv_from_model"] = from_model
    return out
