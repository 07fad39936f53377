"""Daily P&L attribution of the books (`core.books` output): per leg, then per (date, mode).

Per leg (identity within a mode: position_id, instrument, right, strike, expiry, contract) and
session d, with q0 / mark0 / greeks0 from the previous session's close (0 when not held) and
q1 / mark1 from d's close:

    pnl     = (q1·mark1 − q0·mark0)·mult + Σ cash_flow of the leg's trades on d
    held    = q0·mult·(px1 − mark0)      px1 = mark1 if the leg is still held at d's close, else
                                         the price it left at: the trade's mid (closed at d's
                                         quotes) or the settlement value (reason "expiry ...")
    trading = pnl − held                 (= −spread_cost − fee for trades at d's quotes;
                                          0 for settlements)

The held part is split on yesterday's greeks (gamma per point, vega per vol point = 0.01 of iv,
theta per calendar day):

    delta_pnl = q0·mult·delta0·ΔS            ΔS  = S1 − S0 (the leg's `underlying`)
    gamma_pnl = ½·q0·mult·gamma0·ΔS²
    vega_pnl  = q0·mult·vega0·Δiv·100        Δiv = iv1 − iv0 (decimals)
    theta_pnl = q0·mult·theta0·Δdays         calendar days between the two sessions
    residual  = held − (delta + gamma + vega + theta)

Conventions for what the close does not show:
* a leg closed or settled on d has no row at d's close: S1 is taken from another leg of the same
  mode / instrument / expiry at d's close (same underlying level: SPX spot, or that expiry's VX
  future); its iv1 is unknown, so its vega term is 0. Without such a sibling all four Taylor
  terms are 0 and the whole held P&L is residual (always the case for expiry settlements: every
  leg of that expiry settles together, and the settlement is at the opening quotation anyway);
* a term whose inputs are missing (NaN greek or iv, e.g. a model-marked strike) is 0 and its P&L
  falls in the residual: nothing is dropped, held = Σ terms + residual always;
* futures and stocks: held is linear in their own price (delta 1), residual 0. A VX future's held
  P&L is split into its roll and the rest: roll_pnl = q0·mult·(V0 − F0)·min(Δdays / dte0, 1), the
  part of the move the basis to spot VIX (V0, the previous close) pays as the future converges
  linearly to spot over its dte0 calendar days (a cost for a long future in contango, a gain in
  backwardation), and delta_pnl = held − roll_pnl. Without a spot level roll_pnl is 0 and all of
  held is delta_pnl; every other leg has roll_pnl 0;
* a leg that leaves the book without a trade (an engine defect; none in the engine's output) has
  NaN held and split, while its pnl (−q0·mark0·mult) still counts, so the day still reconciles.

Sessions: every date in `legs` or `trades` (`daily_pnl` adds the account's dates); a mode's
previous close is its legs on the previous session (none = flat).

Pure numpy/pandas, vectorized with merges and group-bys.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["position_id", "instrument", "right", "strike", "expiry", "contract"]
ROW_KEYS = ["date", "mode", *KEYS]
LAYER_GROUPS = ("condor", "statarb", "L1", "L2", "L3", "synthetic", "static")  # static: the promoter's VX leg
TERMS = ["delta_pnl", "gamma_pnl", "vega_pnl", "theta_pnl", "roll_pnl", "residual_pnl"]
LEG_PNL_COLUMNS = [
    "date", "mode", "book", "layer", *KEYS, "pnl", "held", "trading", *TERMS, "spread_cost", "fee",
]
DAILY_PNL_COLUMNS = [
    "date", "mode", *(f"pnl_{g}" for g in LAYER_GROUPS), "pnl_legs", *TERMS, "trading_pnl", "costs_spread", "fees",
    "interest", "margin_used", "margin_calls", "margin_call_size", "forced_exit_cost", "equity", "equity_change",
    "attribution_residual", "condor_break_even_move", "hedge_costs", "hedge_roll_pnl", "hedge_theta_pnl", "provenance",
]
_TEXT = ("mode", "book", "layer", "position_id", "instrument", "right", "contract", "kind", "reason")
_STATE = ["book", "layer", "kind", "quantity", "multiplier", "mark", "delta", "gamma", "vega", "theta", "underlying",
          "iv"]
_SORT = ["date", "mode", "book", "position_id", "instrument", "right", "strike", "contract", "expiry"]


def _normalized(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The columns we read, with one spelling of "no value" per key ("" text, NaN strike, NaT
    expiry) so legs restored from the lake match the trades and legs of the day."""
    f = frame[[c for c in columns if c in frame.columns]].copy()
    for c in ("date", "expiry"):
        if c in f:
            f[c] = pd.to_datetime(f[c])
    for c in _TEXT:
        if c in f:
            f[c] = f[c].fillna("").astype(str)
    if "strike" in f:
        f["strike"] = f["strike"].astype(float)
    return f


def _session_state(legs: pd.DataFrame, suffix: str) -> pd.DataFrame:
    """One row per (date, mode, leg identity): quantity summed over duplicate rows (none in the
    engine's output), marks and greeks of the first (one instrument has one quote a day)."""
    agg = {c: "first" for c in _STATE if c in legs.columns and c != "quantity"}
    agg["quantity"] = "sum"
    g = legs.groupby(ROW_KEYS, dropna=False, sort=False).agg(agg).reset_index()
    return g.rename(columns={c: c + suffix for c in _STATE})


def _sessions(*frames: pd.DataFrame | None) -> pd.DatetimeIndex:
    dates = [pd.to_datetime(f["date"]) for f in frames if f is not None and len(f)]
    return pd.DatetimeIndex(pd.concat(dates).unique() if dates else []).sort_values()


def _shifted(dates: pd.Series, sessions: pd.DatetimeIndex, step: int) -> pd.Series:
    """The session `step` sessions after (before, if negative) each date; NaT off either end."""
    pos = sessions.get_indexer(pd.DatetimeIndex(dates)) + step
    ok = (pos >= 0) & (pos < len(sessions))
    out = np.full(len(dates), np.datetime64("NaT"), dtype="datetime64[ns]")
    out[ok] = sessions.to_numpy("datetime64[ns]")[pos[ok]]
    return pd.Series(out, index=dates.index)


def leg_pnl(legs: pd.DataFrame, trades: pd.DataFrame, initial_legs: pd.DataFrame | None = None,
            spot_vix: pd.Series | None = None) -> pd.DataFrame:
    """P&L of every (date, mode, leg identity) open at the previous close or traded/settled on the
    date, split into held (Taylor terms + residual) and trading (module doc for the formulas).

    `legs` / `trades`: `core.books` LEG_COLUMNS / TRADE_COLUMNS rows of consecutive sessions (all
    modes); a session is any date present in either. `initial_legs`: the legs at the close of the
    session before the first date (its last date is used), or None = every mode starts flat.
    `spot_vix`: VIX closes by date (the VX futures' roll, module doc), or None = no roll split."""
    return _leg_pnl(legs, trades, initial_legs, _sessions(legs, trades), spot_vix)


def _leg_pnl(legs: pd.DataFrame, trades: pd.DataFrame, initial_legs: pd.DataFrame | None,
             sessions: pd.DatetimeIndex, spot_vix: pd.Series | None = None) -> pd.DataFrame:
    leg_cols = ["date", "mode", *KEYS, *_STATE]
    today = _normalized(legs, leg_cols)
    today = today[today["date"].isin(sessions)]
    # yesterday's close, re-dated to the session it feeds
    prev = today.assign(date=_shifted(today["date"], sessions, 1)).dropna(subset=["date"])
    first_prev = pd.NaT
    if initial_legs is not None and len(initial_legs) and len(sessions):
        init = _normalized(initial_legs, leg_cols)
        first_prev = init["date"].max()
        if first_prev >= sessions[0]:
            raise ValueError(f"initial_legs dated {first_prev:%Y-%m-%d}, not before the first session "
                             f"{sessions[0]:%Y-%m-%d}")
        prev = pd.concat([init[init["date"] == first_prev].assign(date=sessions[0]), prev], ignore_index=True)
    s1 = _session_state(today, "1")
    s0 = _session_state(prev, "0")

    t = _normalized(trades, [*ROW_KEYS, "book", "layer", "kind", "quantity", "multiplier", "fill", "mid",
                             "spread_cost", "fee", "cash_flow", "reason"])
    t = t[t["date"].isin(sessions)]
    # the price a leg left at: the mid of today's quotes, or the settlement value for expiries
    px = np.where(t["reason"].str.startswith("expiry"), t["fill"], t["mid"])
    t = t.assign(w=t["quantity"].abs(), wpx=t["quantity"].abs() * px)
    tr = t.groupby(ROW_KEYS, dropna=False, sort=False).agg(
        book_t=("book", "first"), layer_t=("layer", "first"), kind_t=("kind", "first"), mult_t=("multiplier", "first"),
        cash_flow=("cash_flow", "sum"), spread_cost=("spread_cost", "sum"), fee=("fee", "sum"), w=("w", "sum"),
        wpx=("wpx", "sum")).reset_index()
    tr["px_exit"] = tr["wpx"] / tr["w"].where(tr["w"] > 0)

    # pandas matches NaN strike / NaT expiry keys with each other (futures, stocks)
    x = s0.merge(s1, on=ROW_KEYS, how="outer").merge(tr, on=ROW_KEYS, how="outer")
    x["in_today"] = x["quantity1"].notna()
    for c in ("quantity0", "quantity1", "cash_flow", "spread_cost", "fee"):
        x[c] = x[c].fillna(0.0)
    for c in ("book", "layer", "kind"):
        x[c] = x[c + "1"].fillna(x[c + "0"]).fillna(x[c + "_t"])
    mult = x["multiplier1"].fillna(x["multiplier0"]).fillna(x["mult_t"]).to_numpy(float)
    q0, q1 = x["quantity0"].to_numpy(float), x["quantity1"].to_numpy(float)
    mark0, mark1 = x["mark0"].to_numpy(float), x["mark1"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        v0 = np.where(q0 != 0, q0 * mult * mark0, 0.0)
        v1 = np.where(q1 != 0, q1 * mult * mark1, 0.0)
        pnl = v1 - v0 + x["cash_flow"].to_numpy(float)
        in_today = x["in_today"].to_numpy()
        px1 = np.where(in_today, mark1, x["px_exit"].to_numpy(float))
        held = np.where(q0 != 0, q0 * mult * (px1 - mark0), 0.0)

    # S1 of a leg gone by the close: a sibling's level (same mode / instrument / expiry) at the close
    sib = s1.groupby(["date", "mode", "instrument", "expiry"], dropna=False, sort=False)["underlying1"].first()
    sib = sib.rename("s1_sibling").reset_index()
    x = x.merge(sib, on=["date", "mode", "instrument", "expiry"], how="left")
    s_1 = np.where(in_today, x["underlying1"].to_numpy(float), x["s1_sibling"].to_numpy(float))
    ds = s_1 - x["underlying0"].to_numpy(float)
    div = np.where(in_today, x["iv1"].to_numpy(float) - x["iv0"].to_numpy(float), np.nan)
    prev_date = _shifted(x["date"], sessions, -1).fillna(first_prev)  # NaT: nothing held before, no theta
    ddays = (x["date"] - prev_date).dt.days.to_numpy(float)
    size = q0 * mult
    option = x["kind"].eq("option").to_numpy() & (q0 != 0)
    taylor = option & np.isfinite(s_1)
    with np.errstate(invalid="ignore"):
        terms = {
            "delta_pnl": size * x["delta0"].to_numpy(float) * ds,
            "gamma_pnl": 0.5 * size * x["gamma0"].to_numpy(float) * ds ** 2,
            "vega_pnl": size * x["vega0"].to_numpy(float) * div * 100.0,
            "theta_pnl": size * x["theta0"].to_numpy(float) * ddays,
        }
    for k, v in terms.items():
        x[k] = np.where(taylor & np.isfinite(v), v, 0.0)
    # futures and stocks: the whole held move is linear (delta 1 on their own price); a VX future's
    # roll toward spot is split out of it (module doc)
    linear = ~x["kind"].eq("option").to_numpy()
    x["roll_pnl"] = _roll(x, prev_date, spot_vix, size)
    x["delta_pnl"] = np.where(linear, held - x["roll_pnl"].to_numpy(), x["delta_pnl"])
    x["pnl"], x["held"] = pnl, held
    x["trading"] = pnl - held
    x["residual_pnl"] = np.where(linear, 0.0, held - x[["delta_pnl", "gamma_pnl", "vega_pnl", "theta_pnl"]].sum(axis=1))
    out = x[LEG_PNL_COLUMNS].sort_values(_SORT, kind="stable", na_position="first")
    return out.reset_index(drop=True)


def _roll(x: pd.DataFrame, prev_date: pd.Series, spot_vix: pd.Series | None, size: np.ndarray) -> np.ndarray:
    """roll_pnl of each row (module doc): q0·mult·(V0 − F0)·min(Δdays / dte0, 1) on VX futures held
    at the previous close; 0 elsewhere and where the spot level or the expiry is unknown."""
    future = x["kind"].eq("future").to_numpy() & (size != 0)
    if spot_vix is None or not future.any():
        return np.zeros(len(x))
    spot = pd.Series(spot_vix.to_numpy(float), index=pd.DatetimeIndex(pd.to_datetime(spot_vix.index)).normalize())
    v0 = spot.reindex(pd.DatetimeIndex(prev_date)).to_numpy(float)
    dte0 = (x["expiry"] - prev_date).dt.days.to_numpy(float)
    ddays = (x["date"] - prev_date).dt.days.to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        roll = size * (v0 - x["mark0"].to_numpy(float)) * np.minimum(ddays / dte0, 1.0)
    return np.where(future & (dte0 > 0) & np.isfinite(roll), roll, 0.0)


def _start_equity(modes: pd.Series, initial_account: pd.DataFrame | None, initial_equity: float) -> np.ndarray:
    """Each mode's equity at the close before the first row: initial_account's last row of that
    mode, else initial_equity."""
    if initial_account is None or not len(initial_account):
        return np.full(len(modes), initial_equity)
    ia = initial_account.assign(date=pd.to_datetime(initial_account["date"])).sort_values("date", kind="stable")
    last = ia.groupby("mode")["equity"].last()
    return modes.map(last).fillna(initial_equity).to_numpy(float)


def condor_break_even_move(legs: pd.DataFrame) -> pd.DataFrame:
    """Per (date, mode): min over open condors of min(S − (K_ps − credit), (K_cs + credit) − S) / S,
    S = the condor legs' `underlying` (SPX), credit in points per condor (`condor.break_evens`).
    Signed: positive while SPX sits inside every break-even, negative once beyond one. No row
    where no condor is open."""
    c = _normalized(legs, ["date", "mode", "book", "position_id", "right", "strike", "quantity", "credit",
                           "underlying"])
    c = c[c["book"].eq("condor")]
    keys = ["date", "mode", "position_id"]
    short = c[c["quantity"] < 0]
    kps = short[short["right"].eq("P")].groupby(keys)["strike"].max()
    kcs = short[short["right"].eq("C")].groupby(keys)["strike"].min()
    pos = c.groupby(keys).agg(credit=("credit", "first"), spx=("underlying", "first"))
    lo, hi = kps.reindex(pos.index) - pos["credit"], kcs.reindex(pos.index) + pos["credit"]
    move = np.minimum(pos["spx"] - lo, hi - pos["spx"]) / pos["spx"]
    return move.groupby(["date", "mode"]).min().rename("condor_break_even_move").reset_index()


def daily_pnl(legs: pd.DataFrame, trades: pd.DataFrame, account: pd.DataFrame,
              initial_legs: pd.DataFrame | None = None, initial_account: pd.DataFrame | None = None,
              initial_equity: float = 100_000.0, spot_vix: pd.Series | None = None) -> pd.DataFrame:
    """One row per account row (date, mode):

    pnl_<group>          Σ leg pnl of the layer group (condor, statarb, L1, L2, L3, synthetic)
    pnl_legs             Σ leg pnl = Σ Taylor terms + residual_pnl + trading_pnl
    delta_pnl … residual_pnl, trading_pnl   Σ of the legs' split (`leg_pnl`)
    costs_spread, fees   Σ spread_cost / fee of the day's trades
    interest             the account's T-bill interest of the day
    margin_used          = margin_requirement at the close
    margin_calls         1 if a margin call was flagged at the close, else 0; margin_call_size
    forced_exit_cost     Σ (spread_cost + fee) of trades with reason "margin call"
    equity_change        equity − the previous session's equity of the mode (the first row: the
                         last equity of the mode in `initial_account`, else `initial_equity`)
    attribution_residual equity_change − (pnl_legs + interest): ~0 when the books are consistent;
                         reported, never absorbed
    condor_break_even_move  `condor_break_even_move` (NaN with no open condor)
    hedge_costs          Σ spread_cost + fee of the hedge book's (alvh) trades
    hedge_roll_pnl       Σ roll_pnl of the hedge's VX futures (`spot_vix`: VIX closes by date)
    hedge_theta_pnl      Σ theta_pnl of the hedge's options (their extrinsic decay)
    provenance           the account's
    """
    acc = account.assign(date=pd.to_datetime(account["date"]), mode=account["mode"].astype(str))
    acc = acc.sort_values(["mode", "date"], kind="stable").reset_index(drop=True)
    keys = ["date", "mode"]
    lp = _leg_pnl(legs, trades, initial_legs, _sessions(acc, legs, trades), spot_vix)

    by_group = lp.pivot_table(index=keys, columns="layer", values="pnl", aggfunc="sum")
    by_group = by_group.reindex(columns=list(LAYER_GROUPS)).add_prefix("pnl_")
    totals = lp.groupby(keys)[["pnl", *TERMS, "trading"]].sum().rename(columns={"pnl": "pnl_legs",
                                                                                "trading": "trading_pnl"})
    t = _normalized(trades, ["date", "mode", "book", "spread_cost", "fee", "reason"])
    t["forced"] = np.where(t["reason"].str.startswith("margin call"), t["spread_cost"] + t["fee"], 0.0)
    t["hedge"] = np.where(t["book"].eq("alvh"), t["spread_cost"] + t["fee"], 0.0)
    costs = t.groupby(keys).agg(costs_spread=("spread_cost", "sum"), fees=("fee", "sum"),
                                forced_exit_cost=("forced", "sum"), hedge_costs=("hedge", "sum"))
    hedge = lp[lp["book"].eq("alvh")].groupby(keys)[["roll_pnl", "theta_pnl"]].sum().add_prefix("hedge_")

    out = acc[[*keys, "interest", "margin_requirement", "margin_call", "margin_call_size", "equity", "provenance"]]
    out = out.join(by_group, on=keys).join(totals, on=keys).join(costs, on=keys).join(hedge, on=keys)
    sums = [*by_group.columns, *totals.columns, *costs.columns, *hedge.columns]
    out[sums] = out[sums].fillna(0.0)  # a flat day without trades: zero P&L, zero costs
    prev_equity = out.groupby("mode")["equity"].shift(1)
    first = prev_equity.isna() & ~out["mode"].duplicated()
    prev_equity = prev_equity.where(~first, _start_equity(out["mode"], initial_account, initial_equity))
    out["equity_change"] = out["equity"] - prev_equity
    out["attribution_residual"] = out["equity_change"] - (out["pnl_legs"] + out["interest"])
    out["margin_used"] = out["margin_requirement"]
    out["margin_calls"] = out["margin_call"].fillna(False).astype(bool).astype(int)
    out = out.merge(condor_break_even_move(legs), on=keys, how="left")
    out = out.sort_values(keys, kind="stable").reset_index(drop=True)
    return out[DAILY_PNL_COLUMNS]
