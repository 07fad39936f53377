"""Fit of the chain model's free parameters (`chain_model.FITTED`) to the published calendar-year
returns of Cboe's CNDR, PUT and BXM (`benchmarks.PUBLISHED_RETURNS`), on the in-sample years only.

Sample split (issue 17): fit on 2004-2006 and 2010-2014; 2007, 2008 and 2009 are the
out-of-sample test and are never replicated by the fit. Each in-sample segment starts on the last
roll date before its first year (the index needs a value at the previous year-end) and ends on its
last year's last session: [2003-12-19, 2006-12-29] and [2009-12-18, 2014-12-31]. The two weeks of
December 2009 enter only as the start of 2010's cycle; no 2007-2009 return is computed.

Objective: Σ over in-sample index-years of (replicated - published)², in percentage points, each
index weighted alike, plus a penalty of 100 · Σ_index max(0, MAE_index - 2)² so the fit also meets
the issue's in-sample target (mean absolute error ≤ 2 points per index) where it can. Minimised by
Powell's method within `BOUNDS` from `chain_model.ChainParams()`'s defaults (derivative-free: a
return is a step function of the strikes the deltas select). The chains come from a caller's function
`inputs_for(dates, params) -> (days, chain)` (the replay source's `benchmark_inputs`), so this
module stays free of any source.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from alvh_pipeline.core import benchmarks as bm
from alvh_pipeline.core import calendar as cal
from alvh_pipeline.core import chain_model as cm

__all__ = ["BOUNDS", "IN_SAMPLE_SEGMENTS", "segment_dates", "replicate_years", "in_sample_objective", "fit"]

InputsFor = Callable[[pd.DatetimeIndex, cm.ChainParams], tuple[pd.DataFrame, pd.DataFrame]]

BOUNDS: dict[str, tuple[float, float]] = {
    "atm_to_vix": (0.70, 1.05), "put_skew": (-1.2, 0.0), "skew_saturation": (0.5, 6.0),
    "skew_stress": (0.0, 3.0), "smile_curvature": (0.0, 0.10),
}
IN_SAMPLE_SEGMENTS = ((2004, 2006), (2010, 2014))


def segment_dates(first_year: int, last_year: int, month_ends: bool = False) -> pd.DatetimeIndex:
    """The sessions a replication of calendar years [first_year, last_year] marks: every roll date
    from the last one before the first year, and each year-end (every month-end with
    `month_ends`). The benchmark values on these days equal those of a daily replication."""
    sessions = cal.sessions_between(f"{first_year - 1}-12-01", f"{last_year}-12-31")
    rolls = bm.roll_dates(sessions[0], sessions[-1])
    s = pd.Series(sessions, index=sessions)
    key = sessions.year * 12 + sessions.month if month_ends else sessions.year
    ends = pd.DatetimeIndex(s.groupby(key).max().to_numpy())
    out = rolls.union(ends)
    return out[out >= rolls[0]]


def replicate_years(years: tuple[int, int], params: cm.ChainParams, inputs_for: InputsFor,
                    month_ends: bool = False) -> pd.DataFrame:
    """Rows of `benchmarks.replicate` for every index over one segment of calendar years."""
    days, chain = inputs_for(segment_dates(*years, month_ends=month_ends), params)
    return pd.concat([bm.replicate(name, days, chain) for name in bm.INDEXES], ignore_index=True)


def in_sample_errors(params: cm.ChainParams, inputs_for: InputsFor) -> pd.DataFrame:
    """`benchmarks.compare_to_published` rows of the in-sample years (only they are replicated)."""
    rows = pd.concat([bm.compare_to_published(replicate_years(seg, params, inputs_for))
                      for seg in IN_SAMPLE_SEGMENTS], ignore_index=True)
    rows = rows[rows["period"].str.fullmatch(r"\d{4}")]
    return rows[rows["period"].astype(int).isin(bm.IN_SAMPLE_YEARS)].reset_index(drop=True)


MAE_TARGET = 2.0
MAE_PENALTY = 100.0


def objective_value(errors: pd.DataFrame) -> float:
    """SSE of the errors plus the MAE penalty (module doc)."""
    sse = float(np.sum(errors["error_pts"].to_numpy(float) ** 2))
    mae = errors.assign(a=errors["error_pts"].abs()).groupby("index")["a"].mean()
    return sse + MAE_PENALTY * float(np.sum(np.maximum(mae.to_numpy() - MAE_TARGET, 0.0) ** 2))


def in_sample_objective(params: cm.ChainParams, inputs_for: InputsFor) -> float:
    return objective_value(in_sample_errors(params, inputs_for))


def fit(inputs_for: InputsFor, start: cm.ChainParams | None = None, max_evaluations: int = 300,
        log: Callable[[str], None] | None = None) -> tuple[cm.ChainParams, pd.DataFrame]:
    """Powell within BOUNDS from `start`; returns the parameters of the best trial (Powell's own
    end point on this step-shaped objective can be a worse one) and the trial log."""
    start = start or cm.ChainParams()
    names = list(cm.FITTED)
    trials = []

    def objective(x: np.ndarray) -> float:
        p = cm.with_values(start, dict(zip(names, map(float, x))))
        value = in_sample_objective(p, inputs_for)
        trials.append({**dict(zip(names, map(float, x))), "objective": value})
        if log:
            log(f"trial {len(trials)}: objective {value:.2f} " + " ".join(f"{n}={v:.4f}" for n, v in zip(names, x)))
        return value

    x0 = np.array([getattr(start, n) for n in names], dtype=float)
    minimize(objective, x0, method="Powell", bounds=[BOUNDS[n] for n in names],
             options={"maxfev": max_evaluations, "xtol": 1e-3, "ftol": 1e-3})
    log_frame = pd.DataFrame(trials)
    best_row = log_frame.loc[log_frame["objective"].idxmin()]
    return cm.with_values(start, {n: float(best_row[n]) for n in names}), log_frame
