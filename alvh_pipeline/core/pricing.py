"""European option pricing, vectorized: Black-Scholes on spot with a continuous dividend yield
(SPX) and Black-76 on a future (VIX options on the same-month VX future).

Both are the Black formula on the forward F with discount factor D = exp(-rT):
    call = D (F N(d1) - K N(d2)),  put = D (K N(-d2) - F N(-d1)),
    d1 = (ln(F/K) + σ²T/2) / (σ√T),  d2 = d1 - σ√T,
with F = S exp((r - q) T) for Black-Scholes and F = the futures price for Black-76.

Degenerate total variance (σ√T = 0: zero vol or zero time) takes the σ√T -> 0+ limit, where
d1 -> +inf / -inf / 0 for F > K / F < K / F = K: price = discounted intrinsic, call delta ->
D·(1, 0, 1/2), put delta -> D·(0, -1, -1/2), vega -> 0 away from the money or at T = 0, and
vega -> D F √T φ(0) at the money with T > 0 (the right derivative of the ATM price
D F (2N(σ√T/2) - 1) at σ = 0; not 0: a zero-vol ATM option with time left still has vol risk).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

ArrayLike = np.ndarray | float

_SQRT_2PI = np.sqrt(2.0 * np.pi)
VOL_CAP = 10.0  # implied_vol's search bracket is (1e-9, VOL_CAP]: 1000 % annualised


def _npdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / _SQRT_2PI


def _d1(f: np.ndarray, k: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """d1, and its sd -> 0+ limit where sd <= 0 (+inf / -inf / 0 for F > K / F < K / F = K)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = (np.log(f / k) + 0.5 * sd * sd) / sd
    limit = np.where(f > k, np.inf, np.where(f < k, -np.inf, 0.0))
    return np.where(sd <= 0, limit, d1)


def _is_call(option_type) -> np.ndarray:
    ot = np.asarray(option_type)
    if ot.dtype.kind in "bi":
        return ot.astype(bool)
    if ot.dtype == object and ot.ndim == 1 and len(ot) > 16:
        # a chain repeats two labels: upper-case each distinct one, not every row (a missing label is not "C")
        codes, labels = pd.factorize(ot)
        return np.where(codes >= 0, (np.char.upper(np.asarray(labels).astype(str)) == "C")[codes], False)
    return np.char.upper(ot.astype(str)) == "C"


def black(forward, strike, t, vol, discount, option_type) -> np.ndarray:
    """Undiscounted-forward Black price times `discount`. option_type: 'C'/'P' or bool is_call."""
    f, k, t, v, d = np.broadcast_arrays(*map(np.asarray, (forward, strike, t, vol, discount)))
    call = _is_call(option_type)
    sd = v * np.sqrt(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = (np.log(f / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    c = d * (f * ndtr(d1) - k * ndtr(d2))
    p = d * (k * ndtr(-d2) - f * ndtr(-d1))
    intrinsic_c = d * np.maximum(f - k, 0.0)
    intrinsic_p = d * np.maximum(k - f, 0.0)
    zero_sd = sd <= 0
    c = np.where(zero_sd, intrinsic_c, c)
    p = np.where(zero_sd, intrinsic_p, p)
    return np.where(call, c, p)


def black_scholes(spot, strike, t, vol, rate, div_yield, option_type) -> np.ndarray:
    fwd = np.asarray(spot) * np.exp((np.asarray(rate) - np.asarray(div_yield)) * np.asarray(t))
    return black(fwd, strike, t, vol, np.exp(-np.asarray(rate) * np.asarray(t)), option_type)


def black76(future, strike, t, vol, rate, option_type) -> np.ndarray:
    return black(future, strike, t, vol, np.exp(-np.asarray(rate) * np.asarray(t)), option_type)


def black_delta(forward, strike, t, vol, discount_to_spot, option_type) -> np.ndarray:
    """Delta with respect to the spot (BS: discount_to_spot = exp(-qT)) or the future
    (Black-76: discount_to_spot = exp(-rT))."""
    f, k, t, v, d = np.broadcast_arrays(*map(np.asarray, (forward, strike, t, vol, discount_to_spot)))
    d1 = _d1(f, k, v * np.sqrt(t))  # zero vol / time: D·(1, 0, 1/2) for a call ITM / OTM / ATM
    call = _is_call(option_type)
    return np.where(call, d * ndtr(d1), d * (ndtr(d1) - 1.0))


def black_vega(forward, strike, t, vol, discount) -> np.ndarray:
    """dPrice/dσ of the Black formula (same for calls and puts). Zero vol / time: 0 away from
    the money or at T = 0, D F √T φ(0) at the money (module docstring)."""
    f, k, t, v, d = np.broadcast_arrays(*map(np.asarray, (forward, strike, t, vol, discount)))
    rt = np.sqrt(t)
    return d * f * _npdf(_d1(f, k, v * rt)) * rt


def no_arbitrage_bounds(forward, strike, discount, option_type) -> tuple[np.ndarray, np.ndarray]:
    """Model-free bounds on a European option: call in [D·max(F-K,0), D·F],
    put in [D·max(K-F,0), D·K]."""
    f, k, d = np.broadcast_arrays(*map(np.asarray, (forward, strike, discount)))
    call = _is_call(option_type)
    lower = np.where(call, d * np.maximum(f - k, 0.0), d * np.maximum(k - f, 0.0))
    upper = np.where(call, d * f, d * k)
    return lower, upper


def implied_vol(
    price,
    forward,
    strike,
    t,
    discount,
    option_type,
    tol: float = 1e-12,
    max_iter: int = 100,
    max_vol: float = VOL_CAP,
) -> np.ndarray:
    """Black implied vol by vectorized safeguarded Newton (bisection fallback keeps every
    iterate inside a bracket that holds the root). NaN where the price is outside the
    no-arbitrage bounds, above the price at `max_vol` (the root is outside the search bracket;
    returning the cap would report a made-up vol), or t <= 0.

    A row stops at its own first iterate within `tol` of the one before: its vol is a function of
    its own inputs, not of the rows solved beside it (iterating it until the slowest row of the
    batch converged moved it by a few ulps, so a day's IVs depended on the days of its run)."""
    inputs = (price, forward, strike, t, discount)
    price, f, k, t, d = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in inputs))
    call = np.broadcast_to(_is_call(option_type), price.shape)
    lower, upper = no_arbitrage_bounds(f, k, d, call)
    reachable = price <= black(f, k, t, max_vol, d, call)  # price is increasing in vol
    valid = (price > lower) & (price < upper) & (t > 0) & reachable
    lo = np.full(price.shape, 1e-9)
    hi = np.full(price.shape, float(max_vol))
    # Brenner-Subrahmanyam start, clipped into the bracket.
    with np.errstate(divide="ignore", invalid="ignore"):
        vol = np.sqrt(2 * np.pi / np.where(t > 0, t, 1.0)) * price / (d * f)
    vol = np.clip(np.nan_to_num(vol, nan=0.2), 0.01, min(5.0, 0.5 * max_vol))
    active = valid.copy()  # rows still iterating
    for _ in range(max_iter):
        model = black(f, k, t, vol, d, call)
        diff = model - price
        hi = np.where(diff > 0, vol, hi)
        lo = np.where(diff <= 0, vol, lo)
        vega = black_vega(f, k, t, vol, d)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = vol - diff / vega
        bisect = 0.5 * (lo + hi)
        vol_new = np.where((step > lo) & (step < hi) & np.isfinite(step), step, bisect)
        done = np.abs(vol_new - vol) < tol
        vol = np.where(active, vol_new, vol)
        active &= ~done
        if not active.any():
            break
    return np.where(valid, vol, np.nan)
