"""Johansen cointegration tests on sector baskets (statsmodels `coint_johansen`, bit for bit:
`johansen`), per feature day
on the trailing `window` sessions of log closes ending that day.

Known caveats (read before trusting a rank):
- Critical values are Osterwald-Lenum's asymptotic tables, tabulated for at most 12 variables;
  with 10 names and 252 days the trace test over-rejects in small samples (Reinsel-Ahn: scale the
  statistic by (T - p·k)/T; we report the unscaled statistic and the scaled rank).
- `det_order=0` (constant outside the cointegration relation) and `k_ar_diff=1` are fixed choices;
  the rank is sensitive to both.
- Rank says how many stationary combinations exist, not which names form them; a rank > 0 basket
  may be driven by one planted pair inside it.
- Names with a gap in the window are left out that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

WINDOW = 252
DET_ORDER = 0
K_AR_DIFF = 1
MAX_VARIABLES = 12  # Osterwald-Lenum tables stop at 12


def _rank(stats: np.ndarray, crit: np.ndarray) -> int:
    """Number of leading hypotheses r = 0, 1, ... rejected in sequence."""
    rejected = stats > crit
    return int(np.argmin(rejected)) if not rejected.all() else len(rejected)


@dataclass(frozen=True)
class Johansen:
    """What the basket rows read of statsmodels' `JohansenTestResult` (same names)."""

    eig: np.ndarray  # eigenvalues, largest first
    lr1: np.ndarray  # trace statistics for r = 0, 1, ...
    lr2: np.ndarray  # maximum-eigenvalue statistics
    cvt: np.ndarray  # trace critical values (90 / 95 / 99 %) per r
    cvm: np.ndarray  # maximum-eigenvalue critical values


@lru_cache(maxsize=8)
def _constant(nobs: int) -> tuple[np.ndarray, np.ndarray]:
    """statsmodels' order-0 detrend regressor for `nobs` rows and its pseudo-inverse."""
    from statsmodels.tools.tools import pinv_extended

    x = np.vander(np.linspace(-1, 1, nobs), 1)
    return x, pinv_extended(x)[0]


def _demean(y: np.ndarray) -> np.ndarray:
    """`OLS(y, constant).fit().resid`, as coint_johansen's detrend computes it."""
    x, pinv_x = _constant(len(y))
    return y - np.dot(x, np.dot(pinv_x, y))


@lru_cache(maxsize=32)
def _critical_values(neqs: int) -> tuple[np.ndarray, np.ndarray]:
    from statsmodels.tsa.coint_tables import c_sja, c_sjt

    return (np.array([c_sjt(neqs - i, DET_ORDER) for i in range(neqs)]),
            np.array([c_sja(neqs - i, DET_ORDER) for i in range(neqs)]))


def johansen(endog: np.ndarray) -> Johansen:
    """statsmodels `coint_johansen(endog, det_order=0, k_ar_diff=1)`, bit for bit (tested), in
    less than half its time: the same operations in the same order, without building a statsmodels
    OLS model for each of its four detrends (the constant's pseudo-inverse is the same for every
    window) or the unused eigenvector normalisation. ~2,800 tests a year of feature days."""
    from statsmodels.tsa.tsatools import lagmat

    neqs = endog.shape[1]
    endog = _demean(np.asarray(endog, dtype=float))
    dx = np.diff(endog, 1, axis=0)
    z = _demean(lagmat(dx, K_AR_DIFF)[K_AR_DIFF:])
    dx = _demean(dx[K_AR_DIFF:])
    pinv_z = np.linalg.pinv(z)
    r0t = dx - np.dot(z, np.dot(pinv_z, dx))
    lx = _demean(endog[: endog.shape[0] - K_AR_DIFF][1:])
    rkt = lx - np.dot(z, np.dot(pinv_z, lx))
    skk = np.dot(rkt.T, rkt) / rkt.shape[0]
    sk0 = np.dot(rkt.T, r0t) / rkt.shape[0]
    s00 = np.dot(r0t.T, r0t) / r0t.shape[0]
    sig = np.dot(sk0, np.dot(np.linalg.inv(s00), sk0.T))
    eig = np.linalg.eig(np.dot(np.linalg.inv(skk), sig))[0]
    eig = eig[np.flipud(np.argsort(eig))]
    t = rkt.shape[0]
    logs = np.log(np.ones(neqs) - eig)
    cvt, cvm = _critical_values(neqs)
    return Johansen(eig=eig, lr1=np.array([-t * np.sum(logs[i:], 0) for i in range(neqs)]),
                    lr2=-t * np.log(1 - eig), cvt=cvt, cvm=cvm)


def johansen_baskets(closes: pd.DataFrame, sectors: pd.Series, feature_dates, window: int = WINDOW) -> pd.DataFrame:
    closes = closes.sort_index()
    logp = np.log(closes.to_numpy(dtype=float))
    sect = sectors.reindex(closes.columns).to_numpy()
    pos = closes.index.get_indexer(pd.DatetimeIndex(feature_dates))
    rows = []
    for t in pos[pos >= window - 1]:  # days × ~10 sectors, ~0.7 ms per test
        panel = logp[t - window + 1 : t + 1]
        ok = np.isfinite(panel).all(axis=0)
        for sector in np.unique(sect[ok]):
            cols = np.flatnonzero(ok & (sect == sector))[:MAX_VARIABLES]
            if len(cols) < 2:
                continue
            res = johansen(panel[:, cols])
            n_obs = window - K_AR_DIFF - 1
            scale = (n_obs - len(cols) * (K_AR_DIFF + 1)) / n_obs
            rows.append({
                "date": closes.index[t], "sector": sector, "n_names": len(cols),
                "trace_stat_r0": res.lr1[0], "trace_crit95_r0": res.cvt[0, 1],
                "maxeig_stat_r0": res.lr2[0], "maxeig_crit95_r0": res.cvm[0, 1],
                "rank_trace": _rank(res.lr1, res.cvt[:, 1]),
                "rank_maxeig": _rank(res.lr2, res.cvm[:, 1]),
                "rank_trace_small_sample": _rank(res.lr1 * scale, res.cvt[:, 1]),
                "top_eigenvalue": res.eig[0],
            })
    return pd.DataFrame(rows, columns=BASKET_COLUMNS)


BASKET_COLUMNS = ["date", "sector", "n_names", "trace_stat_r0", "trace_crit95_r0", "maxeig_stat_r0",
                  "maxeig_crit95_r0", "rank_trace", "rank_maxeig", "rank_trace_small_sample", "top_eigenvalue"]
