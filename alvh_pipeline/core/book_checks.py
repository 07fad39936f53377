"""The books' blocking-check rules, recomputed from the rows the books wrote (not trusted from
the engine's own bookkeeping). No Dagster import.

- The sizing rule, every day in every mode: the ALVH ladder's NET VIX-futures delta dollars
  (|Σ signed VX-equivalent contracts × that month's beta to spot VIX| × $1,000 × the stress move,
  over L2 futures and the second engine's synthetic futures) <= cap × the condor program's
  notional risk: Σ over open condors of (max wing width − credit) × $100 × contracts, recomputed
  from the condor rows; on a day without condors (between cycles) the account's carried
  `program_notional`. Where condors are open the account's figure must equal the recomputed one.
  The promoter's static VX leg is outside the ladder (DESIGN §5) and not capped.
- Legs: finite quantities and greeks, a quoted leg's mark inside its bid/ask, nothing held past
  its expiry, one row per leg.
- Account: one row per mode and day, finite cash and equity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alvh_pipeline.core.check_report import RuleFailure, finite_columns, missing_days, unique_keys

LEG_KEYS = ("date", "mode", "position_id", "instrument", "right", "strike", "expiry", "contract")


def condor_max_loss_by_day(condor_legs: pd.DataFrame) -> pd.DataFrame:
    """Per (date, mode): Σ over open condors of (max(put width, call width) − credit) × 100 × contracts."""
    if not len(condor_legs):
        return pd.DataFrame(columns=["date", "mode", "max_loss"])
    c = condor_legs.assign(date=pd.to_datetime(condor_legs["date"]))
    keys = ["date", "mode", "position_id"]
    puts = c[c["right"] == "P"].groupby(keys)["strike"].agg(np.ptp)
    calls = c[c["right"] == "C"].groupby(keys)["strike"].agg(np.ptp)
    pos = c.groupby(keys).agg(contracts=("quantity", lambda q: np.abs(q).max()), credit=("credit", "first"))
    width = np.maximum(puts.reindex(pos.index).fillna(0), calls.reindex(pos.index).fillna(0))
    pos["max_loss"] = (width - pos["credit"]) * 100.0 * pos["contracts"]
    return pos.groupby(["date", "mode"])["max_loss"].sum().reset_index()


def vx_delta_dollars_by_row(alvh_legs: pd.DataFrame, stress_points: float) -> np.ndarray:
    """Signed VX-equivalent contracts × $1,000 × beta × stress move per leg of the ladder's VX
    layers (0 elsewhere); their sum per day and mode, in absolute value, is the net figure."""
    beta = alvh_legs["beta_to_vix"].to_numpy(float)
    eq = alvh_legs["vx_equivalent"].to_numpy(float)
    ladder = alvh_legs["layer"].isin(SIZED_LAYERS).to_numpy()
    return np.where(ladder & (eq != 0), eq * 1000.0 * beta * stress_points, 0.0)


SIZED_LAYERS = ("L2", "synthetic")


def program_notional_by_day(condor_legs: pd.DataFrame, account: pd.DataFrame) -> pd.DataFrame:
    """Per (date, mode) of `account`: the condor program's notional risk (module doc) and the
    account's own figure."""
    acc = account[["date", "mode", "program_notional"]].assign(date=pd.to_datetime(account["date"]))
    loss = condor_max_loss_by_day(condor_legs)
    day = acc.merge(loss.assign(date=pd.to_datetime(loss["date"])), on=["date", "mode"], how="left")
    day["notional"] = day["max_loss"].astype(float).fillna(day["program_notional"].astype(float))
    return day


def sizing_rule_failures(alvh_legs: pd.DataFrame, condor_legs: pd.DataFrame, account: pd.DataFrame,
                         dates: pd.DatetimeIndex, cap: float, stress_points: float) -> list[RuleFailure]:
    """The sizing rule on every (date, mode) of the books; the failure's sample rows are the
    offending positions with their day's net delta dollars, cap and the program's notional."""
    out = []
    notional = program_notional_by_day(condor_legs, account)
    drift = notional["max_loss"].notna() & ~np.isclose(notional["max_loss"].astype(float),
                                                        notional["program_notional"].astype(float), atol=1e-6)
    if drift.any():
        out.append(RuleFailure.from_mask("program_notional", "program_notional",
                                         "the account's program notional differs from its open condors' max loss",
                                         notional, drift.to_numpy()))
    if not len(alvh_legs):
        return out
    legs = alvh_legs.assign(date=pd.to_datetime(alvh_legs["date"]))
    legs["vx_delta_dollars"] = vx_delta_dollars_by_row(legs, stress_points)
    unknown = legs["layer"].isin(SIZED_LAYERS).to_numpy() & (legs["vx_equivalent"].to_numpy(float) != 0) \
        & ~np.isfinite(legs["beta_to_vix"].to_numpy(float))
    if unknown.any():
        out.append(RuleFailure.from_mask("beta_known", "beta_to_vix", "a VX leg of the ladder without its beta",
                                         legs, unknown))
    exposure = legs.groupby(["date", "mode"])["vx_delta_dollars"].sum().abs().reset_index()
    day = exposure.merge(notional[["date", "mode", "notional"]], on=["date", "mode"], how="left")
    day["notional"] = day["notional"].fillna(0.0)
    day["cap_dollars"] = cap * day["notional"]
    over = day[day["vx_delta_dollars"] > day["cap_dollars"] + 1e-6]
    if not len(over):
        return out
    offending = legs[legs["vx_delta_dollars"] != 0].drop(columns="vx_delta_dollars").merge(
        over[["date", "mode", "vx_delta_dollars", "cap_dollars", "notional"]], on=["date", "mode"])
    sample = offending[["date", "mode", "position_id", "layer", "instrument", "contract", "expiry", "quantity",
                        "beta_to_vix", "vx_delta_dollars", "cap_dollars", "notional"]]
    failure = RuleFailure.from_mask(
        "sizing_rule", "vx_delta_dollars",
        f"net VIX-futures delta dollars above {cap:g} x the condor program's notional on {len(over)} (day, mode)",
        sample, np.ones(len(sample), dtype=bool))
    failure.rows = len(sample)
    return out + [failure]


def leg_problems(legs: pd.DataFrame, dates: pd.DatetimeIndex, book: str) -> list[RuleFailure]:
    """A book's legs: finite numbers, marks inside the quote, nothing past expiry, unique legs."""
    if not len(legs):
        return []
    out = finite_columns(legs, ("quantity", "mark", "delta", "gamma", "vega", "theta"))
    quoted = legs["mark_source"].eq("quote").to_numpy()
    m, b, a = (legs[c].to_numpy(float) for c in ("mark", "bid", "ask"))
    outside = quoted & ((m < b - 1e-9) | (m > a + 1e-9))
    if outside.any():
        out.append(RuleFailure.from_mask("mark_in_quote", "mark,bid,ask", "a quoted leg's mark outside its bid/ask",
                                         legs, outside))
    expiry = pd.to_datetime(legs["expiry"])
    past = (expiry.notna() & (expiry <= pd.to_datetime(legs["date"]))).to_numpy()
    if past.any():
        out.append(RuleFailure.from_mask("not_past_expiry", "expiry", "a leg held on or after its expiry",
                                         legs, past))
    zero = legs["quantity"].to_numpy(float) == 0
    if zero.any():
        out.append(RuleFailure.from_mask("nonzero_quantity", "quantity", "a leg with zero quantity", legs, zero))
    return out + unique_keys(legs, LEG_KEYS)


def account_problems(account: pd.DataFrame, dates: pd.DatetimeIndex, modes) -> list[RuleFailure]:
    out = missing_days("books/account", account, dates)
    if not len(account):
        return out
    out += finite_columns(account, ("cash", "equity", "liquidation_equity", "margin_requirement"))
    out += unique_keys(account, ("date", "mode"))
    unknown = ~account["mode"].isin(list(modes))
    if unknown.any():
        out.append(RuleFailure.from_mask("mode", "mode", f"mode not in {list(modes)}", account, unknown))
    per_day = account.groupby(pd.to_datetime(account["date"]))["mode"].nunique()
    short = per_day[per_day < len(modes)]
    if len(short):
        out.append(RuleFailure("every_mode_every_day", "mode", f"fewer than {len(modes)} modes on a day", 0,
                               [d.strftime("%Y-%m-%d") for d in short.index]))
    return out


def trade_problems(trades: pd.DataFrame, dates: pd.DatetimeIndex) -> list[RuleFailure]:
    """Every fill is at the touch (buys at the ask, sells at the bid; settlements at their value),
    costs and fees are not negative, cash flows finite."""
    if not len(trades):
        return []
    out = finite_columns(trades, ("quantity", "fill", "cash_flow", "spread_cost", "fee"))
    settle = trades["reason"].astype(str).str.startswith("expiry").to_numpy()
    q = trades["quantity"].to_numpy(float)
    negative = (trades["spread_cost"].to_numpy(float) < -1e-9) | (trades["fee"].to_numpy(float) < 0)
    if negative.any():
        out.append(RuleFailure.from_mask("costs_not_negative", "spread_cost,fee", "a negative cost", trades, negative))
    mid = trades["mid"].to_numpy(float)
    fill = trades["fill"].to_numpy(float)
    wrong_side = ~settle & (((q > 0) & (fill < mid - 1e-9)) | ((q < 0) & (fill > mid + 1e-9)))
    if wrong_side.any():
        out.append(RuleFailure.from_mask("fill_at_touch", "fill,mid", "a buy below the mid or a sell above it",
                                         trades, wrong_side))
    return out
