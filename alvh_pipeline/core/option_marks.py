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

from alvh_pipeline.core.pricing import (
    VOL_CAP,
    _d1,
    _is_call,
    _npdf,
    black,
    black_delta,
    black_vega,
    no_arbitrage_bounds,
)
from alvh_pipeline.core.vol_surface import DAYS_PER_YEAR

__all__ = ["black_gamma", "black_theta", "mark_chain", "mark_inputs", "mark_greeks", "VOL_POINT", "DAYS_PER_YEAR"]

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
    m = mark_inputs(chain, kind)
    out = chain.copy()
    for col in ("mid", "dte", "t", "forward", "iv"):
        out[col] = m[col]
    for col, values in mark_greeks(m).items():
        out[col] = values
    out["iv_from_model"] = m["iv_from_model"]
    return out


def mark_inputs(chain: pd.DataFrame, kind: Literal["spx", "vix"]) -> dict[str, np.ndarray]:
    """The per-row numbers `mark_chain` marks with (arrays aligned with `chain`'s rows): date and
    expiry (datetime64[ns]), mid, dte, t, forward, iv, iv_from_model, iv_from_smile (no vol of its own
    nor a model vol: the smile's, `smile_vols`), and what `mark_greeks` needs.
    The implied vols are solved on the whole chain at once (their values depend on it: see
    `_implied_vols`); the greeks are row-by-row, so `mark_greeks` may mark only the rows a caller
    needs."""
    if kind not in ("spx", "vix"):
        raise ValueError(f"kind must be 'spx' or 'vix', got {kind!r}")
    date = pd.to_datetime(chain["date"]).to_numpy("datetime64[ns]")
    expiry = pd.to_datetime(chain["expiry"]).to_numpy("datetime64[ns]")
    dte = (expiry - date).astype("timedelta64[D]").astype(np.int64)
    t = dte / DAYS_PER_YEAR
    bid, ask = chain["bid"].to_numpy(float), chain["ask"].to_numpy(float)
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
    discount = np.exp(-r * t)
    mid = 0.5 * (bid + ask)
    iv = _implied_vols(mid, forward, chain["strike"].to_numpy(float), t, discount, call, bid, ask)
    model_iv = chain["model_iv"].to_numpy(float) if "model_iv" in chain else np.full(len(chain), np.nan)
    vol = np.where(np.isfinite(iv), iv, model_iv)
    strike = chain["strike"].to_numpy(float)
    from_smile = ~np.isfinite(vol) & (t > 0)
    if from_smile.any():  # real quotes only (model rows carry model_iv): a wing with no bid, say
        vol = np.where(from_smile, smile_vols(date, expiry, strike, iv, from_smile), vol)
        from_smile &= np.isfinite(vol)
    return {
        "date": date, "expiry": expiry, "mid": mid, "dte": dte, "t": t, "forward": forward, "iv": iv,
        "iv_from_model": ~np.isfinite(iv) & np.isfinite(model_iv), "iv_from_smile": from_smile,
        "strike": strike, "call": call, "rate": r, "underlying": underlying,
        "spot_df": spot_df, "carry": carry, "discount": discount, "vol": vol,
        "t_ok": np.where(t >= 0, t, np.nan),  # an expired row has no greeks (and no sqrt warning)
    }


def smile_vols(date: np.ndarray, expiry: np.ndarray, strike: np.ndarray, iv: np.ndarray,
               rows: np.ndarray) -> np.ndarray:
    """For `rows` (a mask): the implied vol of the same (date, expiry) smile at the row's strike,
    linear in strike between the nearest strikes with a solved vol (calls and puts pooled) and flat
    beyond the outermost one; NaN where the smile has none. Real chains need it where a quote has no
    implied vol (a zero bid on a far wing) and no model vol stands in: the greeks of a held leg must
    stay finite."""
    pair = pd.factorize(pd.MultiIndex.from_arrays([date, expiry]))[0].astype(float)
    scale = 10.0 * (np.nanmax(np.abs(strike)) + 1.0)  # composite key: pair, then strike within it
    known = np.isfinite(iv)
    key = pair[known] * scale + strike[known]
    order = np.argsort(key, kind="stable")
    key, vols, k_strike, k_pair = key[order], iv[known][order], strike[known][order], pair[known][order]
    q = pair[rows] * scale + strike[rows]
    right = np.searchsorted(key, q, side="left")
    left = right - 1
    has_l = (left >= 0) & (k_pair[np.clip(left, 0, None)] == pair[rows]) if len(key) else np.zeros(len(q), bool)
    has_r = (right < len(key)) & (k_pair[np.clip(right, 0, len(key) - 1)] == pair[rows]) if len(key) \
        else np.zeros(len(q), bool)
    lc, rc = np.clip(left, 0, max(len(key) - 1, 0)), np.clip(right, 0, max(len(key) - 1, 0))
    out = np.full(len(q), np.nan)
    if len(key):
        kl, kr, vl, vr = k_strike[lc], k_strike[rc], vols[lc], vols[rc]
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(kr > kl, (strike[rows] - kl) / (kr - kl), 0.0)
        out = np.select([has_l & has_r, has_l, has_r], [vl + w * (vr - vl), vl, vr], np.nan)
    full = np.full(len(strike), np.nan)
    full[rows] = out
    return full


def mark_greeks(m: dict[str, np.ndarray], rows: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
    """delta, gamma, vega (per vol point) and theta (per calendar day) of `rows` of a chain's
    `mark_inputs` (module-doc formulas; each row on its own, so a subset marks as the whole does)."""
    f, k, t, vol = m["forward"][rows], m["strike"][rows], m["t_ok"][rows], m["vol"][rows]
    spot_df, call = m["spot_df"][rows], m["call"][rows]
    return {
        "delta": black_delta(f, k, t, vol, spot_df, call),
        "gamma": black_gamma(f, k, t, vol, spot_df, m["underlying"][rows]),
        "vega": black_vega(f, k, t, vol, m["discount"][rows]) * VOL_POINT,
        "theta": black_theta(f, k, t, vol, m["rate"][rows], m["carry"][rows], call) / DAYS_PER_YEAR,
    }


def _implied_vols(mid: np.ndarray, forward: np.ndarray, strike: np.ndarray, t: np.ndarray, discount: np.ndarray,
                  call: np.ndarray, bid: np.ndarray, ask: np.ndarray) -> np.ndarray:
    """`vol_surface.implied_vols` of a chain from its arrays: the same inputs to the same solver,
    NaN where bid <= 0, ask < bid or T <= 0."""
    iv = _newton_implied_vol(mid, forward, strike, np.where(t > 0, t, 1.0), discount, call)
    return np.where((bid > 0) & (ask >= bid) & (t > 0), iv, np.nan)


def _newton_implied_vol(price: np.ndarray, f: np.ndarray, k: np.ndarray, t: np.ndarray, d: np.ndarray,
                        call: np.ndarray, tol: float = 1e-12, max_iter: int = 100,
                        max_vol: float = VOL_CAP) -> np.ndarray:
    """`pricing.implied_vol` with its default arguments, bit for bit, in a third of the time on a
    whole chain (t > 0 on every row, as `_implied_vols` passes it).

    As there, a row stops at its first iterate within `tol` of the one before (its vol depends on
    its own inputs only); here a stopped row also leaves the arrays the loop computes on (whenever
    a quarter of them have stopped). Each iterate uses `pricing`'s expressions, one option type per
    row (two normal CDFs, not four) and ln(F/K), sqrt(T) once; late iterations run on a few rows,
    where numpy's per-call cost is all there is, so the loop makes as few calls as it can."""
    lower, upper = no_arbitrage_bounds(f, k, d, call)
    reachable = price <= black(f, k, t, max_vol, d, call)  # price is increasing in vol
    valid = (price > lower) & (price < upper) & (t > 0) & reachable
    out = np.full(price.shape, np.nan)
    rows = np.flatnonzero(valid)  # an invalid row never holds the loop up: its result is NaN
    price, f, k, t, d, call = (a[rows] for a in (price, f, k, t, d, call))
    sign = np.where(call, 1.0, -1.0)  # puts price on N(-d1), N(-d2)
    log_fk, sqrt_t, df = np.log(f / k), np.sqrt(t), d * f
    lo = np.full(rows.shape, 1e-9)
    hi = np.full(rows.shape, float(max_vol))
    active = np.ones(rows.shape, dtype=bool)  # rows still iterating
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Brenner-Subrahmanyam start, clipped into the bracket.
        vol = np.sqrt(2 * np.pi / t) * price / (d * f)
        vol = np.clip(np.nan_to_num(vol, nan=0.2), 0.01, min(5.0, 0.5 * max_vol))
        for _ in range(max_iter):
            sd = vol * sqrt_t  # > 0: vol stays inside the finite bracket (lo, hi) and t > 0
            d1 = (log_fk + 0.5 * sd * sd) / sd
            # `pricing.black`: a put's K N(-d2) - F N(-d1) is exactly -(F N(-d1) - K N(-d2)) (a signed
            # zero aside, which price > 0 removes from diff)
            diff = d * (sign * (f * ndtr(sign * d1) - k * ndtr(sign * (d1 - sd)))) - price
            new_hi = np.where(diff > 0, vol, hi)
            new_lo = np.where(diff <= 0, vol, lo)
            step = vol - diff / (df * _npdf(d1) * sqrt_t)  # vega: `pricing.black_vega`
            # an infinite or NaN step fails both comparisons: the bisection takes over, as in `pricing`
            vol_new = np.where((step > new_lo) & (step < new_hi), step, 0.5 * (new_lo + new_hi))
            stopping = active & (np.abs(vol_new - vol) < tol)
            vol, lo, hi = vol_new, new_lo, new_hi
            out[rows[stopping]] = vol[stopping]
            active &= ~stopping
            if not active.any():
                return out
            # on fewer rows, dropping the stopped ones costs more than computing them on
            if len(rows) >= 64 and (len(rows) - active.sum()) * 4 >= len(rows):
                rows, price, f, k, d, sign, log_fk, sqrt_t, df, vol, lo, hi, active = (
                    a[active] for a in (rows, price, f, k, d, sign, log_fk, sqrt_t, df, vol, lo, hi, active))
    out[rows[active]] = vol[active]
    return out
