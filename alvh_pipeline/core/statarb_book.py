"""The stat-arb pairs book: from one day's `signals/statarb` rows and the pairs held, the target
book after today's actions.

Direction d is the spread trade's (`core.statarb_signal`): d = +1 buys the spread = long y, short x.
Positions are dollar-neutral (|q_y| P_y ≈ |q_x| P_x), not hedge-ratio weighted: the hedge ratio
is estimated on log prices, where a dollar-neutral book is the b = 1 approximation, and dollar
neutrality is what the gross-leverage cap and the sleeve's capital are stated in.

Sizing (volatility targeting). A dollar-neutral pair with D dollars on each leg has daily P&L
D (r_y − r_x), so its daily dollar sigma is D · σ_s with
    σ_s = sqrt(σ_y² + σ_x² − 2 ρ σ_y σ_x),
σ_y, σ_x the legs' daily return std (`vols`) and ρ = LEG_CORRELATION an assumed leg correlation
(0.5: a typical daily correlation of two same-sector names, the candidate universe of
`core.pairs`; with equal leg vols it makes σ_s equal to one leg's vol). A new pair gets
    D = risk_per_pair · capital · conviction / σ_s,
q_y = d · floor(D / P_y) and q_x = −d · min(round(|q_y| P_y / P_x), floor((2D − |q_y| P_y) / P_x))
(the x leg matches the y leg's dollars to the nearest share without the pair's gross exceeding 2D).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alvh_pipeline.core.statarb_signal import SignalParams

LEG_CORRELATION = 0.5  # assumed daily return correlation of a pair's two legs (see module docstring)
BROKEN_P = SignalParams().broken_p  # the signal layer's "cointegration broke" p-value
KEYS = ["symbol_y", "symbol_x"]
TARGET_COLUMNS = ["symbol_y", "symbol_x", "direction", "qty_y", "qty_x", "conviction", "action_taken"]


@dataclass(frozen=True)
class StatArbRules:
    risk_per_pair: float = 0.005     # fraction of the sleeve's capital at one daily sigma of the spread
    max_pairs: int = 10
    max_gross_leverage: float = 2.0  # gross notional / sleeve capital


def spread_sigma(vol_y: np.ndarray, vol_x: np.ndarray, rho: float = LEG_CORRELATION) -> np.ndarray:
    """Daily return std of a dollar-neutral long y / short x position per dollar on each leg:
    sqrt(σ_y² + σ_x² − 2ρ σ_y σ_x)."""
    vol_y = np.asarray(vol_y, dtype=float)
    vol_x = np.asarray(vol_x, dtype=float)
    return np.sqrt(np.maximum(vol_y**2 + vol_x**2 - 2 * rho * vol_y * vol_x, 0.0))


def dollar_neutral_shares(direction: np.ndarray, price_y: np.ndarray, price_x: np.ndarray,
                          leg_dollars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer shares with about `leg_dollars` per leg and gross <= 2 · leg_dollars:
    |q_y| = floor(D / P_y), |q_x| = min(round(|q_y| P_y / P_x), floor((2D − |q_y| P_y) / P_x));
    q_y has the sign of `direction`, q_x the opposite."""
    d = np.sign(np.asarray(direction, dtype=float))
    py = np.asarray(price_y, dtype=float)
    px = np.asarray(price_x, dtype=float)
    dollars = np.asarray(leg_dollars, dtype=float)
    ny = np.floor(dollars / py)
    nx = np.minimum(np.round(ny * py / px), np.floor((2 * dollars - ny * py) / px))
    return (d * ny).astype(np.int64), (-d * np.maximum(nx, 0)).astype(np.int64)


def _open_frame(open_pairs: pd.DataFrame) -> pd.DataFrame:
    op = open_pairs.copy()
    for c in KEYS:
        if c not in op:
            op[c] = pd.Series(dtype=object)
    for c in ("direction", "qty_y", "qty_x"):
        if c not in op:
            op[c] = pd.Series(dtype=np.int64)
    if "conviction" not in op:
        op["conviction"] = np.nan
    # yesterday's target may still list the pairs it closed (qty 0): they are not held
    held = (op["qty_y"].fillna(0) != 0) | (op["qty_x"].fillna(0) != 0)
    op = op.loc[held, KEYS + ["direction", "qty_y", "qty_x", "conviction"]].reset_index(drop=True)
    return op.astype({k: object for k in KEYS})  # an empty frame's float keys would not merge


def pair_targets(signals_day: pd.DataFrame, open_pairs: pd.DataFrame, prices: pd.Series, vols: pd.Series,
                 capital: float, rules: StatArbRules) -> pd.DataFrame:
    """Target pairs book after today's actions (columns TARGET_COLUMNS, one row per pair).

    Held pairs: closed (qty 0, listed once) as "close_broken" when today's row is not selected or
    its p-value is above BROKEN_P, "close_stop" on action "stop", "close_exit" on action "exit" or on
    an "entry" in the opposite direction (the spread crossed its mean: the reversion being bet on
    happened; the new side may open on a later day); otherwise "hold" with unchanged quantities
    (no daily re-sizing: it would churn costs) — also when the pair has no signal row today.
    New pairs ("open"): only on action "entry" with a direction, not already held, finite positive
    conviction, prices and vols; sized per the module docstring; the highest conviction first
    (ties by symbols) into the slots left by max_pairs; then the gross notional
    (Σ |q_y| P_y + |q_x| P_x of held and new pairs) is capped at max_gross_leverage · capital
    greedily in the same order (the marginal pair scaled down, later ones not opened).
    A new pair whose size rounds to 0 shares on a leg is not opened and not listed.
    """
    sig = signals_day.copy()
    if sig.duplicated(KEYS).any():
        raise ValueError("signals_day has more than one row for a pair")
    if "selected" not in sig:
        sig["selected"] = True
    if "pvalue" not in sig:
        sig["pvalue"] = np.nan
    sig = sig[KEYS + ["direction", "action", "conviction", "selected", "pvalue"]].astype({k: object for k in KEYS})
    op = _open_frame(open_pairs)
    px = prices.astype(float)
    vol = vols.astype(float)

    # ---- held pairs: hold or close
    m = op.merge(sig.rename(columns={"direction": "sig_direction", "conviction": "sig_conviction"}),
                 on=KEYS, how="left")
    action = m["action"].fillna("none").to_numpy(object)
    selected = m["selected"].astype("boolean").fillna(True).to_numpy(bool)
    broken = ~selected | (m["pvalue"].to_numpy(float) > BROKEN_P)
    sig_d = m["sig_direction"].fillna(0).to_numpy(float)
    reversed_ = (action == "entry") & (sig_d != 0) & (sig_d != m["direction"].to_numpy(float))
    taken = np.select([broken, action == "stop", (action == "exit") | reversed_],
                      ["close_broken", "close_stop", "close_exit"], default="hold")
    held = m[KEYS + ["direction", "qty_y", "qty_x", "conviction"]].assign(action_taken=taken)
    closing = taken != "hold"
    held.loc[closing, ["qty_y", "qty_x"]] = 0
    holding = held[~closing]
    # held notional at today's prices (a held leg without a price counts 0: nothing to value it at)
    hold_gross = float(np.nansum(
        np.abs(holding["qty_y"].to_numpy(float)) * px.reindex(holding["symbol_y"]).to_numpy()
        + np.abs(holding["qty_x"].to_numpy(float)) * px.reindex(holding["symbol_x"]).to_numpy()))

    # ---- new pairs
    e = sig[(sig["action"] == "entry") & (sig["direction"].fillna(0) != 0)]
    e = e.merge(op[KEYS], on=KEYS, how="left", indicator=True)
    e = e[e["_merge"] == "left_only"].drop(columns="_merge")
    py = px.reindex(e["symbol_y"]).to_numpy()
    pxx = px.reindex(e["symbol_x"]).to_numpy()
    sd = spread_sigma(vol.reindex(e["symbol_y"]).to_numpy(), vol.reindex(e["symbol_x"]).to_numpy())
    conv = e["conviction"].to_numpy(float)
    ok = (np.isfinite(conv) & (conv > 0) & np.isfinite(py) & (py > 0) & np.isfinite(pxx) & (pxx > 0)
          & np.isfinite(sd) & (sd > 0))
    cap = float(capital) if np.isfinite(capital) and capital > 0 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        dollars = np.where(ok, rules.risk_per_pair * cap * conv / sd, 0.0)
    qy, qx = dollar_neutral_shares(e["direction"].to_numpy(float), np.where(ok, py, 1.0), np.where(ok, pxx, 1.0),
                                   dollars)
    e = e.assign(_py=py, _px=pxx, _dollars=dollars, _sizable=(qy != 0) & (qx != 0))
    e = e[e["_sizable"]].sort_values(["conviction", "symbol_y", "symbol_x"], ascending=[False, True, True],
                                     kind="stable")
    e = e.head(max(rules.max_pairs - len(holding), 0))
    budget = max(rules.max_gross_leverage * cap - hold_gross, 0.0)
    full = 2 * e["_dollars"].to_numpy(float)
    room = budget - (np.cumsum(full) - full)  # what is left for each pair after the ones ranked above it
    leg_dollars = np.clip(room, 0.0, full) / 2
    qy, qx = dollar_neutral_shares(e["direction"].to_numpy(float), e["_py"].to_numpy(float),
                                   e["_px"].to_numpy(float), leg_dollars)
    new = e[KEYS + ["direction", "conviction"]].assign(qty_y=qy, qty_x=qx, action_taken="open")
    new = new[(new["qty_y"] != 0) & (new["qty_x"] != 0)]

    parts = [p for p in (held, new) if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            TARGET_COLUMNS, [object, object, np.int64, np.int64, np.int64, float, object])})
    out = pd.concat(parts, ignore_index=True)[TARGET_COLUMNS]
    out = out.astype({"direction": np.int64, "qty_y": np.int64, "qty_x": np.int64, "conviction": float})
    return out.sort_values(KEYS, kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Targets:
    """`pair_targets`' rows as arrays, in its row order (by symbol_y, symbol_x)."""

    symbol_y: list[str]
    symbol_x: list[str]
    direction: np.ndarray  # int64
    qty_y: np.ndarray  # int64
    qty_x: np.ndarray  # int64
    action_taken: np.ndarray  # object


def pair_target_arrays(signals_day: pd.DataFrame, held: dict[tuple[str, str], dict], prices: pd.Series,
                       vols: pd.Series, capital: float, rules: StatArbRules) -> Targets | None:
    """`pair_targets` on arrays, the same rows and numbers (no frames, merges or sorts of frames:
    ~20x faster on a day's few hundred signal rows), for the inputs the books pass when they are
    plain: text keys, one row per pair, a bool or absent `selected`, unique price and vol symbols,
    held quantities known. `held`: (symbol_y, symbol_x) -> direction, qty_y, qty_x. None otherwise
    (call `pair_targets`)."""
    sy, sx = signals_day["symbol_y"].tolist(), signals_day["symbol_x"].tolist()
    keys = list(zip(sy, sx))
    if (not all(isinstance(a, str) and isinstance(b, str) for a, b in keys) or len(set(keys)) < len(keys)
            or not prices.index.is_unique or not vols.index.is_unique):
        return None
    n = len(keys)
    if "selected" in signals_day:
        if signals_day["selected"].dtype != bool:
            return None
        selected = signals_day["selected"].to_numpy(bool)
    else:
        selected = np.ones(n, dtype=bool)
    if any(signals_day[c].dtype.kind not in "fi" for c in ("direction", "conviction", "pvalue") if c in signals_day):
        return None
    pvalue = signals_day["pvalue"].to_numpy(float) if "pvalue" in signals_day else np.full(n, np.nan)
    action = signals_day["action"].to_numpy(object)
    is_entry = (signals_day["action"] == "entry").to_numpy(bool)
    direction = signals_day["direction"].to_numpy(float)
    conviction = signals_day["conviction"].to_numpy(float)
    op = [(k, p) for k, p in held.items() if (p["qty_y"] != 0 and not pd.isna(p["qty_y"]))
          or (p["qty_x"] != 0 and not pd.isna(p["qty_x"]))]  # _open_frame: a pair at 0 is not held
    if any(pd.isna(p["qty_y"]) or pd.isna(p["qty_x"]) for _, p in op):
        return None
    px = dict(zip(prices.index.tolist(), prices.to_numpy(float).tolist()))
    vol = dict(zip(vols.index.tolist(), vols.to_numpy(float).tolist()))
    row = {k: i for i, k in enumerate(keys)}

    # ---- held pairs: hold or close (pair_targets' rules, row by row)
    out = []  # (key, direction, qty_y, qty_x, action)
    hold_terms = []
    n_holding = 0
    for k, p in op:
        i = row.get(k)
        act = "none" if i is None or pd.isna(action[i]) else action[i]
        broken = i is not None and (not selected[i] or pvalue[i] > BROKEN_P)
        sig_d = 0.0 if i is None or np.isnan(direction[i]) else direction[i]
        reversed_ = act == "entry" and sig_d != 0 and sig_d != float(p["direction"])
        taken = ("close_broken" if broken else "close_stop" if act == "stop"
                 else "close_exit" if act == "exit" or reversed_ else "hold")
        if taken == "hold":
            n_holding += 1
            hold_terms.append(abs(float(p["qty_y"])) * px.get(k[0], np.nan)
                              + abs(float(p["qty_x"])) * px.get(k[1], np.nan))
            out.append((k, p["direction"], p["qty_y"], p["qty_x"], taken))
        else:
            out.append((k, p["direction"], 0, 0, taken))
    hold_gross = float(np.nansum(np.array(hold_terms, dtype=float)))

    # ---- new pairs: entries with a direction on pairs not held
    held_keys = {k for k, _ in op}
    e = np.array([i for i in range(n) if is_entry[i] and not np.isnan(direction[i]) and direction[i] != 0
                  and keys[i] not in held_keys], dtype=np.intp)
    ey, ex = [sy[i] for i in e], [sx[i] for i in e]
    py = np.array([px.get(s, np.nan) for s in ey], dtype=float)
    pxx = np.array([px.get(s, np.nan) for s in ex], dtype=float)
    sd = spread_sigma(np.array([vol.get(s, np.nan) for s in ey], dtype=float),
                      np.array([vol.get(s, np.nan) for s in ex], dtype=float))
    conv = conviction[e]
    ok = (np.isfinite(conv) & (conv > 0) & np.isfinite(py) & (py > 0) & np.isfinite(pxx) & (pxx > 0)
          & np.isfinite(sd) & (sd > 0))
    cap = float(capital) if np.isfinite(capital) and capital > 0 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        dollars = np.where(ok, rules.risk_per_pair * cap * conv / sd, 0.0)
    qy, qx = dollar_neutral_shares(direction[e], np.where(ok, py, 1.0), np.where(ok, pxx, 1.0), dollars)
    # highest conviction first, ties by symbols (a stable sort, as pair_targets')
    rank = sorted(np.flatnonzero((qy != 0) & (qx != 0)).tolist(), key=lambda j: (-conv[j], ey[j], ex[j]))
    rank = np.array(rank[:max(rules.max_pairs - n_holding, 0)], dtype=np.intp)
    budget = max(rules.max_gross_leverage * cap - hold_gross, 0.0)
    full = 2 * dollars[rank]
    room = budget - (np.cumsum(full) - full)
    qy, qx = dollar_neutral_shares(direction[e][rank], py[rank], pxx[rank], np.clip(room, 0.0, full) / 2)
    for j, a, b in zip(rank.tolist(), qy.tolist(), qx.tolist()):
        if a != 0 and b != 0:
            out.append(((ey[j], ex[j]), direction[e[j]], a, b, "open"))

    out.sort(key=lambda r: r[0])  # stable: keys are unique
    return Targets([r[0][0] for r in out], [r[0][1] for r in out],
                   np.array([r[1] for r in out], dtype=float).astype(np.int64),
                   np.array([r[2] for r in out], dtype=float).astype(np.int64),
                   np.array([r[3] for r in out], dtype=float).astype(np.int64),
                   np.array([r[4] for r in out], dtype=object))
