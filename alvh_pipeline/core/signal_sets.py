"""The signal sets of DESIGN §4, as pure functions of feature (and validated) tables.

Each `SignalSet` names its inputs (`core.inputs.Input`: layer, table, from which day), its
`compute(frames, dates) -> (rows, summary)`, its blocking-check rules `problems(rows, dates)` and
its keys; `SIGNAL_SETS` is the registry the Dagster shell (`assets/signals.py`) builds assets from.

- `statarb`: joins the pair features with the per-pair inputs, the market's skew curvature and
  VIX, applies the ≥3-input agreement rules (`core.statarb_signal`) and scales conviction by the
  walk-forward reversion model (`core.walk_forward`).
- `regime`: the daily state the hedge reads.
Only rows dated on or before each signal day are used for that day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alvh_pipeline.core import statarb_signal as rules
from alvh_pipeline.core import walk_forward as wf
from alvh_pipeline.core.calendar import all_sessions, window_start
from alvh_pipeline.core.check_report import RuleFailure, finite_columns, missing_days
from alvh_pipeline.core.inputs import Input, first_day_read
from alvh_pipeline.core.macro_regime import REGIME_LABELS
from alvh_pipeline.core.pairs import close_panel
from alvh_pipeline.core.rolling import trailing_zscore

CURVATURE_WINDOW = 252
# a full year is required (not a partial one), so a day's z-score never depends on how much
# feature history happens to be in the lake; the signal check fails until it is there
CURVATURE_MIN_PERIODS = CURVATURE_WINDOW
TRAIN_WINDOW = 252  # sessions of samples before each refit the model trains on
SAMPLE_MAX_P = 0.20  # training samples: candidate pairs still plausibly cointegrated...
SAMPLE_MIN_ABS_Z = 1.0  # ...with a stretched spread

SIGNAL_COLUMNS = [
    "date", "symbol_y", "symbol_x", "zscore", "hedge_ratio", "half_life", "pvalue", "selected",
    "pcf_z", "rsi_div", "macd_div", "rsi_div_change_5d", "macd_div_change_5d", "curvature_z",
    "vote_cointegration", "vote_pcf", "vote_skew",
    "confirm_rsi", "confirm_macd", "n_agree", "direction", "action", "p_revert", "model_trained",
    "refit_date", "conviction",
]


def curvature_zscore(vol_surface: pd.DataFrame) -> pd.Series:
    """Skew curvature against its previous year (today excluded), by date."""
    c = vol_surface.set_index(pd.DatetimeIndex(vol_surface["date"]))["skew_curvature"].sort_index()
    return trailing_zscore(c, CURVATURE_WINDOW, CURVATURE_MIN_PERIODS).rename("curvature_z")


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
    # the model's features of the training samples only (row-wise, so the same values as of every
    # row): at 500 names the history is ~6 million candidate rows, the samples a small share of them
    is_sample = ((history["pvalue"] <= SAMPLE_MAX_P) & (np.abs(history["zscore"]) >= SAMPLE_MIN_ABS_Z)).to_numpy()
    rows = history[is_sample]
    samples = pd.concat([rows[["date", "symbol_y", "symbol_x", "zscore", "hedge_ratio", "intercept",
                               "spread_std"]], model_features(rows)], axis=1)
    del rows
    samples["label"] = wf.reversion_labels(samples, np.log(closes))
    # training window: the last TRAIN_WINDOW sessions before each refit (anchored to the refit,
    # so a day's model never depends on the range a run was launched for)
    preds, reports = wf.walk_forward_predict(samples, dates, sessions, max_train_sessions=TRAIN_WINDOW)

    today = history[hdates.isin(dates)]
    del history, hdates  # the caller holds no other reference: the training rows are freed here
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


# ---- the registry ----------------------------------------------------------------------------

Frames = dict[str, pd.DataFrame]
PARAMS = rules.SignalParams()


@dataclass(frozen=True)
class SignalSet:
    name: str
    inputs: tuple[Input, ...]
    compute: Callable[[Frames, pd.DatetimeIndex], tuple[pd.DataFrame, dict]]  # rows, summary for metadata
    problems: Callable[[pd.DataFrame, pd.DatetimeIndex], list[RuleFailure]]  # the blocking check's rules
    keys: tuple[str, ...]
    description: str
    check_description: str


def training_start(dates: pd.DatetimeIndex) -> pd.Timestamp:
    """Earliest pair-feature day any signal day of the run reads: the training window before the
    first refit in force."""
    refits = wf.refit_dates(all_sessions())
    first_refit = refits[refits <= dates[0]][-1]
    return window_start(first_refit, TRAIN_WINDOW)


def _vol_surface_start(dates: pd.DatetimeIndex) -> pd.Timestamp:
    # a full trailing year of curvature behind every training row (not only behind the signal
    # days): otherwise the model's inputs, and so p_revert, would depend on the month a run starts
    return window_start(training_start(dates), CURVATURE_WINDOW)


# only the columns the signal reads: at 500 names each column is ~6 million training rows
PAIR_COLUMNS = ("date", "symbol_y", "symbol_x", "hedge_ratio", "intercept", "spread_std", "zscore", "adf_stat",
                "pvalue", "half_life", "selected")
PAIR_INPUT_COLUMNS = ("date", "symbol_y", "symbol_x", "pcf_z", "rsi_div", "macd_div", "rsi_div_change_5d",
                      "macd_div_change_5d")
STATARB_INPUTS = (
    Input("features", "pairs", training_start, columns=PAIR_COLUMNS),
    Input("features", "pair_inputs", training_start, columns=PAIR_INPUT_COLUMNS),
    Input("features", "vol_surface", _vol_surface_start),
    Input("features", "term_structure", training_start),
    Input("validated", "equity_bars", training_start, columns=("date", "symbol", "sector", "close")),
)


def compute_statarb(frames: Frames, dates: pd.DatetimeIndex) -> tuple[pd.DataFrame, dict]:
    closes, _ = close_panel(frames["equity_bars"])
    # the pair frames are taken out of `frames` and joined in the call: nothing keeps them alive
    # beside the joined history (memory at 500 names, bench/universe.py)
    out, reports = statarb_signals(
        join_inputs(frames.pop("pairs"), frames.pop("pair_inputs"), frames["vol_surface"], frames["term_structure"]),
        closes, dates, all_sessions(), PARAMS)
    aucs = [r.oos_auc for r in reports if np.isfinite(r.oos_auc)]
    return out, {
        "entries": int((out["action"] == "entry").sum()),
        "mean_oos_auc": float(np.mean(aucs)) if aucs else float("nan"),
        "refits_md": refit_reports_markdown(reports),
        "calibration": {str(r.refit_date.date()): r.calibration for r in reports if r.calibration},
    }


def refit_reports_markdown(reports: list[wf.RefitReport]) -> str:
    rows = ["| refit | n_train | train base rate | n_oos | OOS AUC | OOS Brier |", "|---|---|---|---|---|---|"]
    for r in reports:
        rows.append(f"| {r.refit_date.date()} | {r.n_train} | {r.train_positive_rate:.3f} | {r.n_oos} | "
                    f"{r.oos_auc:.3f} | {r.oos_brier:.3f} |")
    return "\n".join(rows)


def statarb_problems(frame: pd.DataFrame, dates: pd.DatetimeIndex,
                     params: rules.SignalParams = PARAMS) -> list[RuleFailure]:
    """Rows for every day; z finite; direction in {-1, 0, 1}; conviction in [0, 1]; no direction
    on a pair whose cointegration broke; every direction backed by all three inputs."""
    problems = missing_days("signals/statarb", frame, dates)
    if not len(frame):
        return problems
    problems += finite_columns(frame, ("zscore",))
    bad_dir = ~frame["direction"].isin([-1, 0, 1])
    if bad_dir.any():
        problems.append(RuleFailure.from_mask("direction_values", "direction", "direction outside {-1, 0, 1}",
                                              frame, bad_dir))
    conv = frame["conviction"].to_numpy(float)
    bad_conv = ~((conv >= 0) & (conv <= 1))
    if bad_conv.any():
        problems.append(RuleFailure.from_mask("conviction_bounds", "conviction", "conviction outside [0, 1]",
                                              frame, bad_conv))
    broken = ~frame["selected"].astype(bool) | (frame["pvalue"] > params.broken_p)
    on_broken = broken & (frame["direction"] != 0)
    if on_broken.any():
        problems.append(RuleFailure.from_mask("no_signal_on_broken_pair", "direction,selected,pvalue",
                                              "signal on a pair whose cointegration broke", frame, on_broken))
    weak = (frame["direction"] != 0) & ~(frame["vote_cointegration"] & frame["vote_pcf"] & frame["vote_skew"])
    if weak.any():
        problems.append(RuleFailure.from_mask("three_inputs_agree", "vote_cointegration,vote_pcf,vote_skew",
                                              "signal without all three independent inputs agreeing", frame, weak))
    return problems


REGIME_INPUTS = (
    Input("features", "macro_regime"),
    Input("features", "term_structure"),
    Input("features", "liquidity"),
)


def compute_regime(frames: Frames, dates: pd.DatetimeIndex) -> tuple[pd.DataFrame, dict]:
    out = regime_signals(frames["macro_regime"], frames["term_structure"], frames["liquidity"])
    return out, {"regimes": out["regime"].value_counts().to_dict()}


def regime_problems(frame: pd.DataFrame, dates: pd.DatetimeIndex) -> list[RuleFailure]:
    """One row per day, a valid regime label, finite VIX and front two futures."""
    problems = missing_days("signals/regime", frame, dates)
    if len(frame) and frame.duplicated(["date"]).any():
        dup = frame.duplicated(["date"], keep=False)
        problems.append(RuleFailure.from_mask("one_row_per_day", "date", "more than one row for a day", frame, dup))
    if len(frame):
        bad = ~frame["regime"].isin(REGIME_LABELS)
        if bad.any():
            problems.append(RuleFailure.from_mask("regime_label", "regime", f"regime not in {REGIME_LABELS}",
                                                  frame, bad))
    return problems + finite_columns(frame, ("vix", "vx1", "vx2"))


SIGNAL_SETS: dict[str, SignalSet] = {
    s.name: s
    for s in [
        SignalSet("statarb", STATARB_INPUTS, compute_statarb, statarb_problems, ("date", "symbol_y", "symbol_x"),
                  description="Per day and candidate pair: entry / exit / stop and direction where >= 3 independent "
                              "inputs agree (cointegration z, P/CF dispersion, skew curvature); conviction from a "
                              "walk-forward logistic model of reversion (purged, embargoed, monthly refits).",
                  check_description="the feature history the signals read is complete, z finite, direction in "
                                    "{-1,0,1}, conviction in [0,1], no signal on a broken pair, every signal backed "
                                    "by three agreeing inputs"),
        SignalSet("regime", REGIME_INPUTS, compute_regime, regime_problems, ("date",),
                  description="The hedge's daily state: calm / elevated / stressed regime, term structure, event "
                              "proximity, liquidity filter inputs.",
                  check_description="one row per day, regime in calm/elevated/stressed, VIX and term structure "
                                    "present"),
    ]
}


def history_start(start) -> pd.Timestamp:
    """First feature day the signals of a run starting at `start` read."""
    return min(first_day_read(s.inputs, start, "features") for s in SIGNAL_SETS.values())
