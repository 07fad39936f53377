"""Signal assembly (pure): `statarb_signals` joins the pair features with the per-pair inputs,
the market's skew curvature and VIX, applies the ≥3-input agreement rules
(`core.statarb_signal`) and scales conviction by the walk-forward reversion model
(`core.walk_forward`); `regime_signals` is the daily state the hedge reads.
Only rows dated on or before each signal day are used for that day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alvh_pipeline.core import statarb_signal as rules
from alvh_pipeline.core import walk_forward as wf

CURVATURE_WINDOW = 252
# a full year is required (not a partial one), so a day's z-score never depends on how much
# feature history happens to be in the lake; the signal check fails until it is there
CURVATURE_MIN_PERIODS = CURVATURE_WINDOW
TRAIN_WINDOW = 252  # sessions of samples before each refit the model trains on
SAMPLE_MAX_P = 0.20  # training samples: candidate pairs still plausibly cointegrated...
SAMPLE_MIN_ABS_Z = 1.0  # ...with a stretched spread

SIGNAL_COLUMNS = [
    "date", "symbol_y", "symbol_x", "zscore", "hedge_ratio", "half_life", "pvalue", "selected",
    "pcf_z", "rsi_div", "macd_div", "rsi_div_change_5d", "macd_div_change_5d", "curvature_z", "vote_cointegration", "vote_pcf", "vote_skew",
    "confirm_rsi", "confirm_macd", "n_agree", "direction", "action", "p_revert", "model_trained",
    "refit_date", "conviction",
]


def curvature_zscore(vol_surface: pd.DataFrame) -> pd.Series:
    """Skew curvature against its previous year (today excluded), by date."""
    c = vol_surface.set_index(pd.DatetimeIndex(vol_surface["date"]))["skew_curvature"].sort_index()
    base = c.shift(1).rolling(CURVATURE_WINDOW, min_periods=CURVATURE_MIN_PERIODS)
    return ((c - base.mean()) / base.std()).rename("curvature_z")


def model_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The walk-forward model's inputs, signed so that 'agrees with reversion' is positive."""
    d0 = -np.sign(frame["zscore"].to_numpy(float))  # the trade that bets on reversion
    return pd.DataFrame({
        "abs_z": np.abs(frame["zscore"]),
        "half_life": frame["half_life"].clip(0, 100).fillna(100),
        "adf_stat": frame["adf_stat"],
        "log_pvalue": np.log(frame["pvalue"].clip(1e-12, 1)),
        "pcf_agree": (-np.sign(frame["pcf_z"]) * d0 * np.minimum(np.abs(frame["pcf_z"]), 3)).fillna(0.0),
        "rsi_agree": (d0 * frame["rsi_div_change_5d"]).clip(-20, 20).fillna(0.0) / 20,
        "macd_agree": np.sign(d0 * frame["macd_div_change_5d"]).fillna(0.0),
        "curvature_z": frame["curvature_z"].fillna(0.0),
        "vix": frame["vix"],
    }, index=frame.index)


def join_inputs(pairs: pd.DataFrame, pair_inputs: pd.DataFrame, vol_surface: pd.DataFrame,
                term_structure: pd.DataFrame) -> pd.DataFrame:
    keys = ["date", "symbol_y", "symbol_x"]
    f = pairs.assign(date=pd.to_datetime(pairs["date"]))
    pi = pair_inputs.assign(date=pd.to_datetime(pair_inputs["date"]))[
        keys + ["pcf_z", "rsi_div", "macd_div", "rsi_div_change_5d", "macd_div_change_5d"]]
    f = f.merge(pi, on=keys, how="left")
    cz = curvature_zscore(vol_surface)
    vix = term_structure.set_index(pd.DatetimeIndex(term_structure["date"]))["vix"]
    f["curvature_z"] = cz.reindex(pd.DatetimeIndex(f["date"])).to_numpy()
    f["vix"] = vix.reindex(pd.DatetimeIndex(f["date"])).to_numpy()
    return f


def statarb_signals(
    history: pd.DataFrame,
    closes: pd.DataFrame,
    dates: pd.DatetimeIndex,
    sessions: pd.DatetimeIndex,
    params: rules.SignalParams = rules.SignalParams(),
) -> tuple[pd.DataFrame, list[wf.RefitReport]]:
    """`history`: `join_inputs` rows for the signal days and the training history before them;
    `closes`: wide closes up to the last signal day (labels). Returns one row per (day, candidate
    pair) on `dates`, and the walk-forward refit reports."""
    history = history.sort_values(["symbol_y", "symbol_x", "date"], kind="stable").reset_index(drop=True)
    history["selected_prev"] = history.groupby(["symbol_y", "symbol_x"])["selected"].shift(1).astype("boolean")
    hdates = pd.DatetimeIndex(history["date"])
    X = model_features(history)
    samples = pd.concat([history[["date", "symbol_y", "symbol_x", "zscore", "hedge_ratio", "intercept",
                                  "spread_std"]], X], axis=1)
    is_sample = (history["pvalue"] <= SAMPLE_MAX_P) & (np.abs(history["zscore"]) >= SAMPLE_MIN_ABS_Z)
    samples = samples[is_sample.to_numpy()].copy()
    samples["label"] = wf.reversion_labels(samples, np.log(closes))
    # training window: the last TRAIN_WINDOW sessions before each refit (anchored to the refit,
    # so a day's model never depends on the range a run was launched for)
    preds, reports = wf.walk_forward_predict(samples, dates, sessions, max_train_sessions=TRAIN_WINDOW)

    today = history[hdates.isin(dates)].copy()
    out = rules.agreement(today, params)
    out = out.join(preds[["p_revert", "model_trained", "refit_date"]], how="left")
    out["model_trained"] = out["model_trained"].fillna(False).astype(bool)
    out["refit_date"] = pd.to_datetime(out["refit_date"])
    n_confirm = out["confirm_rsi"].astype(int) + out["confirm_macd"].astype(int)
    out["conviction"] = rules.conviction(out["direction"].to_numpy(), out["p_revert"].to_numpy(float),
                                         n_confirm.to_numpy())
    return out[SIGNAL_COLUMNS].reset_index(drop=True), reports


def regime_signals(macro: pd.DataFrame, term: pd.DataFrame, liquidity: pd.DataFrame) -> pd.DataFrame:
    """The hedge's daily state: regime label and the inputs its adaptive weights read."""
    keys = ["date"]
    m = macro[["date", "regime", "vix", "days_to_FOMC", "days_to_CPI", "days_to_PPI", "ad_line_252d"]]
    t = term[["date", "vx1", "vx2", "backwardation", "slope_cm", "roll_yield_cm30"]]
    q = liquidity[["date", "depth_quick_ratio", "participation_ok", "evap_warning"]]
    out = m.merge(t, on=keys, how="left").merge(q, on=keys, how="left")
    out["event_within_2d"] = out[["days_to_FOMC", "days_to_CPI", "days_to_PPI"]].min(axis=1) <= 2
    return out
