"""Walk-forward probability-of-reversion model for stat-arb pair signals.

Sample: a (pair, day t) where the pair's spread z-score is stretched (|z| >= `min_abs_z`).
Label: the spread, held with day t's hedge ratio, reverts at least halfway to its mean within
`horizon` sessions: min over s in (t, t+H] of sign(z_t)·z'_s <= |z_t|/2, where
z'_s = (log y_s - a_t - b_t log x_s) / sd_t. The label of day t is known only at t+H.

Refits happen on the first session of each calendar month (anchored to the calendar, so a day's
prediction never depends on which range a run was launched for). The model used from refit date R
is trained on an expanding window (capped at `max_train_sessions` before R) of every sample whose
label window ended before R minus an embargo: t + H + embargo < R (purging: no training label
overlaps the period it predicts).
Model: standardised logistic regression (scikit-learn). Out-of-sample AUC, Brier score and a
reliability table are computed per refit on the samples it predicted whose labels are known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HORIZON = 10
EMBARGO = 5
MIN_ABS_Z = 1.5
MIN_TRAIN = 100
FEATURES = ["abs_z", "half_life", "adf_stat", "log_pvalue", "pcf_agree", "rsi_agree", "macd_agree",
            "curvature_z", "vix"]


def reversion_labels(samples: pd.DataFrame, log_closes: pd.DataFrame, horizon: int = HORIZON) -> pd.Series:
    """1.0 if the spread reverts halfway within `horizon` sessions, 0.0 if not, NaN if the
    window runs past the data. Vectorized over samples (horizon is a small constant)."""
    idx = log_closes.index
    t = idx.get_indexer(pd.DatetimeIndex(samples["date"]))
    cy = log_closes.columns.get_indexer(samples["symbol_y"])
    cx = log_closes.columns.get_indexer(samples["symbol_x"])
    lp = log_closes.to_numpy(float)
    z0 = samples["zscore"].to_numpy(float)
    sign = np.sign(z0)
    best = np.full(len(samples), np.inf)
    gap = np.zeros(len(samples), dtype=bool)
    known = (t >= 0) & (t + horizon < len(idx))
    for h in range(1, horizon + 1):  # H steps, each vectorized over all samples
        s = np.where(known, t + h, 0)
        spread = lp[s, cy] - samples["intercept"].to_numpy() - samples["hedge_ratio"].to_numpy() * lp[s, cx]
        z = spread / samples["spread_std"].to_numpy()
        gap |= np.isnan(z)
        best = np.fmin(best, sign * z)
    reverted = best <= np.abs(z0) / 2
    # a missing close inside the horizon leaves the label unknown unless reversion was already seen
    label = np.where(reverted, 1.0, np.where(gap, np.nan, 0.0))
    return pd.Series(np.where(known, label, np.nan), index=samples.index)


def refit_dates(sessions: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """First session of each calendar month."""
    s = pd.Series(sessions, index=sessions)
    return pd.DatetimeIndex(s.groupby(sessions.to_period("M")).min().to_numpy())


@dataclass
class RefitReport:
    refit_date: pd.Timestamp
    n_train: int
    train_positive_rate: float
    n_oos: int
    oos_auc: float
    oos_brier: float
    calibration: list[dict]


def _fit(X: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(X, y)


def _calibration(p: np.ndarray, y: np.ndarray, bins: int = 5) -> list[dict]:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        m = which == b
        if m.any():
            out.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int(m.sum()),
                        "mean_predicted": float(p[m].mean()), "observed_rate": float(y[m].mean())})
    return out


def walk_forward_predict(
    samples: pd.DataFrame,
    predict_dates: pd.DatetimeIndex,
    sessions: pd.DatetimeIndex,
    horizon: int = HORIZON,
    embargo: int = EMBARGO,
    min_train: int = MIN_TRAIN,
    max_train_sessions: int | None = None,
) -> tuple[pd.DataFrame, list[RefitReport]]:
    """Predict p(revert) for samples dated in `predict_dates`. `samples` must carry FEATURES,
    `date` and `label` (NaN where unknown). `sessions` is the trading calendar used to measure
    the label window and embargo in sessions.

    Returns (predictions with columns p_revert, model_trained, refit_date; per-refit reports)."""
    samples = samples.sort_values("date", kind="stable")
    dates = pd.DatetimeIndex(samples["date"])
    pos_in_cal = sessions.get_indexer(dates)
    label_end = pos_in_cal + horizon  # session index at which the label becomes known
    wanted = dates.isin(predict_dates)
    # the refit in force on each predicted day: the latest refit date <= day (or the month start)
    month_start = refit_dates(sessions)
    in_force = month_start[np.searchsorted(month_start.values, dates.values, side="right") - 1]
    p = np.full(len(samples), np.nan)
    trained = np.zeros(len(samples), dtype=bool)
    reports = []
    X_all = samples[FEATURES].to_numpy(float)
    y_all = samples["label"].to_numpy(float)
    for r in pd.DatetimeIndex(np.unique(in_force[wanted])):  # one fit per month
        r_pos = sessions.get_indexer([r])[0]
        train = (label_end + embargo < r_pos) & np.isfinite(y_all) & np.isfinite(X_all).all(axis=1)
        if max_train_sessions is not None:
            train &= pos_in_cal >= r_pos - max_train_sessions
        target = wanted & (in_force == r)
        ok_x = np.isfinite(X_all).all(axis=1)
        n_train = int(train.sum())
        if n_train >= min_train and 0 < y_all[train].mean() < 1:
            model = _fit(X_all[train], y_all[train])
            pred = target & ok_x
            p[pred] = model.predict_proba(X_all[pred])[:, 1]
            trained[pred] = True
        oos = target & np.isfinite(y_all) & ~np.isnan(p)
        auc, brier = np.nan, np.nan
        if oos.sum() >= 10 and 0 < y_all[oos].mean() < 1:
            from sklearn.metrics import brier_score_loss, roc_auc_score

            auc = float(roc_auc_score(y_all[oos], p[oos]))
            brier = float(brier_score_loss(y_all[oos], p[oos]))
        reports.append(RefitReport(r, n_train, float(y_all[train].mean()) if n_train else np.nan, int(oos.sum()),
                                   auc, brier, _calibration(p[oos], y_all[oos]) if oos.any() else []))
    out = pd.DataFrame({"p_revert": p, "model_trained": trained, "refit_date": in_force}, index=samples.index)
    return out[wanted], reports
