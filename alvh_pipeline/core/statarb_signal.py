"""Stat-arb entry / exit / stop rules: a position is proposed only where at least three
independent inputs agree (methodology: "cointegration z-score, P/CF dispersion, and options skew
curvature"); RSI and MACD divergences add confirmation.

Direction d is that of the spread trade: d = +1 buys the spread (long y, short b·x), d = -1 sells.
1. Cointegration: the pair is selected by the FDR-controlled screen and |z| >= entry_z;
   d = -sign(z) (a stretched spread is expected to come back).
2. P/CF dispersion: z-score of log(P/CF_y) - log(P/CF_x); a rich y (positive) agrees with d = -1:
   agrees when -sign(pcf_z) == d and |pcf_z| >= pcf_min_z.
3. Skew curvature: the market's 30-day smile curvature (IV25P + IV25C - 2·IVATM) z-scored against
   its trailing year is below `curvature_max_z`: a normal-skew regime, where convergence trades
   are not fighting a tail-risk bid. Market-wide, so it agrees with either direction.
Confirmations (divergence: the spread is stretched while the momentum behind it turns): the pair's
RSI-14 gap (rsi_y - rsi_x) moved toward reversion by >= rsi_min_change points over 5 sessions
(d · Δ5 rsi_gap >= rsi_min_change), and the MACD-histogram gap turned the same way
(d · Δ5 macd_gap > 0). A large gap alone only restates the z-score, so it does not confirm.

Actions: `entry` (all three agree), `exit` (|z| <= exit_z on a cointegrated pair), `stop` (a
cointegrated pair's |z| >= stop_z, or the day a selected pair's cointegration breaks: no longer
selected or p-value above `broken_p`, having been selected the session before), else `none`.
A pair whose cointegration broke never carries a direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SignalParams:
    entry_z: float = 2.0
    exit_z: float = 0.5
    stop_z: float = 4.0
    pcf_min_z: float = 0.25
    curvature_max_z: float = 1.5
    rsi_min_change: float = 2.0
    broken_p: float = 0.10


def agreement(frame: pd.DataFrame, params: SignalParams = SignalParams()) -> pd.DataFrame:
    """Adds the per-input votes, direction and action to a per-(date, pair) frame carrying
    zscore, selected, pvalue, pcf_z, rsi_div_change_5d, macd_div_change_5d, curvature_z."""
    z = frame["zscore"].to_numpy(float)
    broken = ~frame["selected"].to_numpy(bool) | (frame["pvalue"].to_numpy(float) > params.broken_p)
    was_selected = frame["selected_prev"].fillna(False).to_numpy(bool) if "selected_prev" in frame \
        else np.zeros(len(frame), dtype=bool)
    d = np.where(np.abs(z) >= params.entry_z, -np.sign(z), 0.0)
    coint_vote = (d != 0) & ~broken
    pcf = frame["pcf_z"].to_numpy(float)
    pcf_vote = coint_vote & (-np.sign(pcf) == d) & (np.abs(pcf) >= params.pcf_min_z)
    skew_vote = frame["curvature_z"].to_numpy(float) <= params.curvature_max_z
    rsi_turn = d * frame["rsi_div_change_5d"].to_numpy(float)
    rsi_confirm = coint_vote & (rsi_turn >= params.rsi_min_change)
    macd_confirm = coint_vote & (d * frame["macd_div_change_5d"].to_numpy(float) > 0)
    n_agree = coint_vote.astype(int) + pcf_vote + (skew_vote & coint_vote)
    entry = n_agree >= 3
    action = np.select(
        [(broken & was_selected) | (~broken & (np.abs(z) >= params.stop_z)), entry,
         ~broken & (np.abs(z) <= params.exit_z)],
        ["stop", "entry", "exit"], default="none")
    out = frame.copy()
    out["vote_cointegration"] = coint_vote
    out["vote_pcf"] = pcf_vote
    out["vote_skew"] = skew_vote
    out["confirm_rsi"] = rsi_confirm
    out["confirm_macd"] = macd_confirm
    out["n_agree"] = n_agree + rsi_confirm + macd_confirm
    out["direction"] = np.where(entry & (action == "entry"), d, 0.0).astype(np.int64)
    out["action"] = action
    return out


def conviction(direction: np.ndarray, p_revert: np.ndarray, n_confirm: np.ndarray) -> np.ndarray:
    """Conviction in [0, 1]: the model's reversion probability (0.5 when untrained), scaled up
    to 20 % by RSI / MACD confirmations; 0 without a direction."""
    p = np.where(np.isfinite(p_revert), p_revert, 0.5)
    return np.where(direction != 0, np.clip(p * (0.8 + 0.1 * n_confirm), 0.0, 1.0), 0.0)
