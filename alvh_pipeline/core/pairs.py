"""Daily pair features: for each feature day t, the Engle-Granger screen of every candidate pair
on the trailing `window` sessions of log closes ending at t (so nothing after t is read), with
Benjamini-Hochberg selection across that day's candidates.

Candidates ("documented pre-filter"): pairs within the same sector by default — the usual
pairs-trading universe, and ~10x fewer hypotheses than all pairs, which keeps the FDR-controlled
screen powerful; `prefilter="all"` screens every pair.
Each day is one batched screen across all pairs (`core.cointegration`); the loop is over days only.

Both regression directions are tested (`engle_granger_two_way`): one row and one hypothesis per
unordered candidate pair, the direction with the more negative ADF statistic, p-value
min(1, 2·p_min) so BH still controls the FDR over the candidate pairs (rule and justification in
`core.cointegration`). Row keys stay in candidate order (symbol_y = the candidate's first name,
the column order of the closes) whichever direction wins, so a pair keeps one key across days
(`selected_prev`, the stop rule) and joins `pair_inputs` (keyed the same way). `y_on_x` says which
regression was kept; when it is False (symbol_x regressed on symbol_y) hedge_ratio, intercept,
spread_std and zscore are that regression re-expressed as
symbol_y = intercept + hedge_ratio·symbol_x + spread, so every consumer reads one convention
(long y / short hedge_ratio·x, spread = log y - intercept - hedge_ratio·log x).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alvh_pipeline.core.cointegration import benjamini_hochberg, engle_granger_two_way

WINDOW = 252
LAGS = 1
FDR_ALPHA = 0.05
MAX_FILL_SESSIONS = 3


def candidate_pairs(symbols: np.ndarray, sectors: np.ndarray,
                    prefilter: str = "sector") -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(len(symbols), 1)
    if prefilter == "all":
        return i, j
    if prefilter == "sector":
        keep = np.asarray(sectors)[i] == np.asarray(sectors)[j]
        return i[keep], j[keep]
    raise ValueError(f"unknown prefilter {prefilter!r} (sector | all)")


def close_panel(equity_bars: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Wide date × symbol closes of the single names (ETFs dropped) and each name's sector."""
    eq = equity_bars[equity_bars["sector"] != "ETF"]
    wide = eq.pivot(index="date", columns="symbol", values="close").sort_index()
    wide.index = pd.DatetimeIndex(wide.index)
    # a missing bar or a short halt is carried forward (past data only), so one gap does not remove
    # a name from every pair for a whole window; longer gaps stay NaN and drop the name
    wide = wide.ffill(limit=MAX_FILL_SESSIONS)
    sectors = eq.drop_duplicates("symbol").set_index("symbol")["sector"].reindex(wide.columns)
    return wide, sectors


def pair_features(
    closes: pd.DataFrame,
    sectors: pd.Series,
    feature_dates,
    window: int = WINDOW,
    lags: int = LAGS,
    alpha: float = FDR_ALPHA,
    prefilter: str = "sector",
) -> pd.DataFrame:
    """One row per (feature date, candidate pair) with hedge ratio, spread, ADF statistic,
    two-direction MacKinnon p-value, half-life, z-score, the kept direction (`y_on_x`) and the BH
    selection. Days with fewer than `window` sessions of history get no rows (warm-up). Names
    with a gap in the window are left out that day."""
    closes = closes.sort_index()
    logp = np.log(closes.to_numpy(dtype=float))
    symbols = closes.columns.to_numpy()
    sect = sectors.reindex(closes.columns).to_numpy()
    pos = closes.index.get_indexer(pd.DatetimeIndex(feature_dates))
    out = []
    for t in pos[(pos >= window - 1)]:  # one batched all-pairs screen per day
        panel = logp[t - window + 1 : t + 1]
        ok = np.isfinite(panel).all(axis=0)
        names = np.flatnonzero(ok)
        ci, cj = candidate_pairs(symbols[names], sect[names], prefilter)
        if len(ci) == 0:
            continue
        screen = engle_granger_two_way(panel[:, names], lags=lags, pairs=(ci, cj))
        selected = benjamini_hochberg(screen.pvalue, alpha)
        yi, xj = names[screen.i], names[screen.j]
        out.append(pd.DataFrame({
            "date": closes.index[t],
            "symbol_y": symbols[yi], "symbol_x": symbols[xj], "sector": sect[yi],
            "hedge_ratio": screen.beta, "intercept": screen.alpha,
            "spread": screen.zscore * screen.spread_std, "spread_std": screen.spread_std,
            "zscore": screen.zscore, "adf_stat": screen.adf_stat, "pvalue": screen.pvalue,
            "half_life": screen.half_life, "y_on_x": screen.y_on_x, "selected": selected,
        }))
    if not out:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    return pd.concat(out, ignore_index=True)


PAIR_COLUMNS = ["date", "symbol_y", "symbol_x", "sector", "hedge_ratio", "intercept", "spread", "spread_std",
                "zscore", "adf_stat", "pvalue", "half_life", "y_on_x", "selected"]


def selection_quality(features: pd.DataFrame, planted: list[tuple[str, str]],
                      synthetic_days: pd.DatetimeIndex | None = None) -> pd.DataFrame:
    """Per day: recall and precision of the BH selection against planted pairs.

    Planted pairs exist only in the synthetic universe. With `synthetic_days` (the days whose
    equity rows are synthetic), every other day (real names, e.g. the replay's real:survivors_2017
    bars) gets recall and precision NaN and `applicable` False: not applicable, not a recall of 0."""
    truth = {tuple(sorted(p)) for p in planted}
    key = [tuple(sorted(k)) for k in zip(features["symbol_y"], features["symbol_x"])]
    f = features.assign(is_planted=[k in truth for k in key])
    g = f.groupby("date")
    tp = g.apply(lambda d: int((d["selected"] & d["is_planted"]).sum()), include_groups=False)
    sel = g["selected"].sum()
    applicable = (pd.Series(True, index=sel.index) if synthetic_days is None
                  else pd.Series(pd.DatetimeIndex(sel.index).isin(pd.DatetimeIndex(synthetic_days)), index=sel.index))
    # precision is undefined on a day without selections (NaN, left out of averages)
    return pd.DataFrame({"recall": (tp / len(truth)).where(applicable),
                         "precision": (tp / sel.where(sel > 0)).where(applicable), "selected": sel,
                         "applicable": applicable})
