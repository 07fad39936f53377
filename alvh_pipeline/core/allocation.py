"""Capital split between stat-arb and the hedge for the two modes.

Methodology ("Steward vs. Promoter Distinction"): a steward keeps strict risk parity between the
statistical edge and the volatility hedge; a promoter over-allocates to the higher-Sharpe stat-arb
leg and treats the hedge as an afterthought. In computable terms (DESIGN §5), over the two
ALLOCATED sleeves (stat-arb and the hedge; the condor program is shared and sized apart):

- steward = equal risk contribution (ERC, Maillard-Roncalli-Teïletche 2010): long-only weights
  with RC_i = w_i (Σw)_i / w'Σw = 1/2 for both sleeves, on the trailing covariance.
- promoter = stat-arb's share ∝ max(Sharpe, 0) (its capital is then levered up to the gross limit
  by the books; its hedge is a static VX position, not sized from these weights).

Only returns dated strictly before the allocation day are read (no look-ahead).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from threadpoolctl import ThreadpoolController  # scikit-learn's dependency

SLEEVES = ("statarb", "condor", "hedge")  # the account's sleeves (P&L is reported for each)
# the sleeves a mode splits its equity between; the condor program is the same in both modes and
# sized by equity at risk per cycle (DESIGN §5), so it is not allocated
ALLOCATED = ("statarb", "hedge")
MODES = ("steward", "promoter")

# Priors used until `min_obs` complete observations exist.
STEWARD_PRIOR = (0.5, 0.5)
PROMOTER_PRIOR = (1.0, 0.0)

# A covariance whose smallest eigenvalue is below this fraction of the largest is treated as
# singular: ERC is undefined with a zero-variance sleeve (its risk contribution is 0 at any weight).
_SINGULAR_RTOL = 1e-12


_BLAS: list[ThreadpoolController] = []  # created on first use: it lists the BLAS libraries loaded


def _one_blas_thread() -> AbstractContextManager:
    """BLAS / LAPACK on one thread: on a 3x3 problem, OpenBLAS's thread pool only costs wake-ups and
    spinning (ERC took ~15 ms a call instead of ~0.5 on a busy 2-core machine); the arithmetic on
    matrices this small is the same on one thread."""
    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def _equal(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n) if n else np.zeros(0)


def erc_weights(cov: np.ndarray) -> np.ndarray:
    """Long-only equal-risk-contribution weights, summing to 1.

    Solved through the strictly convex log-barrier problem (Spinu 2013)
        min_y ½ y'Σy − (1/n) Σ_i log y_i,  y > 0,
    whose first-order condition Σy = 1/(n y) gives y_i (Σy)_i = 1/n for every i; w = y / Σ_j y_j.
    For conditioning it is solved on the correlation matrix C (y_i = z_i / σ_i, since
    y_i (Σy)_i = z_i (Cz)_i) with L-BFGS-B, then polished by safeguarded Newton steps
    (Hessian C + diag(1 / (n z²)) is positive definite). Returns equal weights when `cov` is not
    usable: non-finite, not square, fewer than 2 assets, or singular (e.g. a zero-variance asset).
    """
    cov = np.asarray(cov, dtype=float)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        return _equal(cov.shape[0] if cov.ndim else 0)
    n = cov.shape[0]
    if n < 2 or not np.isfinite(cov).all():
        return _equal(n)
    with _one_blas_thread():
        return _erc(cov, n)


def _erc(cov: np.ndarray, n: int) -> np.ndarray:
    """`erc_weights` of a finite square `cov` of n >= 2 assets."""
    cov = 0.5 * (cov + cov.T)
    eig = np.linalg.eigvalsh(cov)
    if eig[-1] <= 0 or eig[0] <= _SINGULAR_RTOL * eig[-1]:
        return _equal(n)
    sigma = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sigma, sigma)

    def f(z: np.ndarray) -> tuple[float, np.ndarray]:
        cz = corr @ z
        return 0.5 * z @ cz - np.log(z).sum() / n, cz - 1.0 / (n * z)

    z0 = np.full(n, 1.0 / np.sqrt(corr.sum()))  # inverse-vol start scaled so that z'Cz = 1
    res = minimize(f, z0, jac=True, method="L-BFGS-B", bounds=[(1e-12, None)] * n,
                   options={"ftol": 1e-15, "gtol": 1e-13, "maxiter": 10_000})
    z = np.maximum(res.x, 1e-12)
    for _ in range(20):  # Newton polish: quadratic convergence from the quasi-Newton point
        grad = corr @ z - 1.0 / (n * z)
        if np.max(np.abs(grad * z)) < 1e-15:
            break
        step = np.linalg.solve(corr + np.diag(1.0 / (n * z * z)), grad)
        t = 1.0
        while np.any(z - t * step <= 0):  # stay inside the barrier's domain
            t *= 0.5
        z = z - t * step
    y = z / sigma
    return y / y.sum()


def _floored_proportional(score: np.ndarray, floor: dict[int, float]) -> np.ndarray:
    """w ∝ score, with w_i >= floor[i]: sleeves below their floor are pinned at it and the rest of
    the mass is re-spread ∝ score over the others, until no floor binds (at most n passes)."""
    n = len(score)
    lo = np.zeros(n)
    for i, v in floor.items():
        lo[i] = float(v)
    if lo.sum() > 1 + 1e-12 or (lo < 0).any():
        raise ValueError(f"floors must be >= 0 and sum to <= 1, got {floor}")
    pinned = np.zeros(n, dtype=bool)
    for _ in range(n + 1):  # each pass pins at least one more sleeve, or stops
        free = ~pinned
        mass = 1.0 - lo[pinned].sum()
        s = score[free]
        w = lo.copy()
        # no positive score left among free sleeves: spread their mass equally
        w[free] = mass * (s / s.sum() if s.sum() > 0 else np.full(free.sum(), 1.0 / free.sum()))
        newly = free & (w < lo - 1e-15)
        if not newly.any():
            break
        pinned |= newly
    return w


def sharpe_weights(mean: np.ndarray, std: np.ndarray, floor: dict[int, float]) -> np.ndarray:
    """Weights ∝ max(mean_i / std_i, 0) (a non-finite or non-positive std scores 0), with sleeve i
    in `floor` held at >= floor[i] (the others scaled ∝ Sharpe to fill the rest). Equal weights
    (still subject to the floors) when every Sharpe is <= 0."""
    mean = np.asarray(mean, dtype=float)
    std = np.asarray(std, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = np.where(np.isfinite(std) & (std > 0), mean / std, 0.0)
    score = np.where(np.isfinite(sr), np.maximum(sr, 0.0), 0.0)
    if not (score > 0).any():
        score = np.ones(len(score))
    return _floored_proportional(score, floor)


def mode_weights(sleeve_returns: pd.DataFrame, day: pd.Timestamp, mode: str, window: int = 63,
                 min_obs: int = 20) -> dict[str, float]:
    """Weights of the ALLOCATED sleeves for `mode` on `day`, from the trailing `window` rows of
    `sleeve_returns` dated strictly before `day` (rows with a missing sleeve return dropped; sample
    moments, ddof 1): `weights_from_history` of those rows."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (steward | promoter)")
    r = sleeve_returns[list(ALLOCATED)]
    r = r.set_axis(pd.DatetimeIndex(r.index)).sort_index()
    hist = r[r.index < pd.Timestamp(day)].tail(window).dropna(how="any").to_numpy(float)
    return weights_from_history(hist, mode, min_obs)[0]


def weights_from_history(hist: np.ndarray, mode: str, min_obs: int = 20) -> tuple[dict[str, float], str]:
    """(weights of the ALLOCATED sleeves, basis) from complete rows (columns ALLOCATED, oldest first).

    steward: `erc_weights` of the trailing covariance (basis "erc"): each sleeve's risk
    contribution w_i (Σw)_i is half of w'Σw. promoter: stat-arb's share is its Sharpe's share,
    max(SR_statarb, 0) / (max(SR_statarb, 0) + max(SR_hedge, 0)) (basis "sharpe"); with no
    positive Sharpe it is all stat-arb. Fewer than `min_obs` rows: the prior (basis "prior"):
    steward 1/2 each, promoter all stat-arb."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (steward | promoter)")
    if len(hist) < max(min_obs, 2):
        w, basis = (np.array(STEWARD_PRIOR) if mode == "steward" else np.array(PROMOTER_PRIOR)), "prior"
    elif mode == "steward":
        w, basis = erc_weights(np.cov(hist, rowvar=False, ddof=1)), "erc"
    else:
        basis = "sharpe"
        w = (sharpe_weights(hist.mean(axis=0), hist.std(axis=0, ddof=1), {}) if _any_positive_sharpe(hist)
             else np.array(PROMOTER_PRIOR))
    return {s: float(v) for s, v in zip(ALLOCATED, w)}, basis


def _any_positive_sharpe(hist: np.ndarray) -> bool:
    mean, std = hist.mean(axis=0), hist.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return bool(np.any(np.where(std > 0, mean / std, 0.0) > 0))


def risk_contributions(weights: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Each sleeve's share of the portfolio variance: w_i (Σw)_i / w'Σw (they sum to 1)."""
    w = np.asarray(weights, dtype=float)
    sw = np.asarray(cov, dtype=float) @ w
    return w * sw / float(w @ sw)
