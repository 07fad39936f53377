"""Johansen cointegration tests on sector baskets (statsmodels `coint_johansen`), per feature day
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


def johansen_baskets(closes: pd.DataFrame, sectors: pd.Series, feature_dates, window: int = WINDOW) -> pd.DataFrame:
    from statsmodels.tsa.vector_ar.vecm import coint_johansen

    closes = closes.sort_index()
    logp = np.log(closes.to_numpy(dtype=float))
    sect = sectors.reindex(closes.columns).to_numpy()
    pos = closes.index.get_indexer(pd.DatetimeIndex(feature_dates))
    rows = []
    for t in pos[pos >= window - 1]:  # days × ~10 sectors, ~0.6 ms per test
        panel = logp[t - window + 1 : t + 1]
        ok = np.isfinite(panel).all(axis=0)
        for sector in np.unique(sect[ok]):
            cols = np.flatnonzero(ok & (sect == sector))[:MAX_VARIABLES]
            if len(cols) < 2:
                continue
            res = coint_johansen(panel[:, cols], DET_ORDER, K_AR_DIFF)
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
