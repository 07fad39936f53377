"""Hedge sizing: the steward's ALVH ladder (adaptive layer weights, the liquidity filter, L1 VIX
calls and L3 SPX put wings from a monthly premium budget, L2 VX calendars or the second engine's
synthetic VIX-option futures sized to a net VX delta dollars target with hysteresis), the
promoter's static long VX future, and the sizing rule enforced after every trade (VX-futures delta
dollars <= cap x the condor program's notional risk: the ladder's VX spreads are cut first)."""

from __future__ import annotations

import numpy as np

from alvh_pipeline.core import allocation as alloc
from alvh_pipeline.core import alvh
from alvh_pipeline.core.books.margin import HEDGE_VX_LAYERS, STATIC_VX_LAYER, vx_delta_dollars
from alvh_pipeline.core.books.quotes import DayQuotes
from alvh_pipeline.core.books.tables import SPX_MULT, VIX_OPT_MULT, VX_MULTIPLIER
from alvh_pipeline.core.books.trades import _Day, _new_legs, trade_rows


def _open_hedge(d: _Day, capital: float, hedge_weight: float) -> None:
    """The steward's option layers for today: adaptive layer weights, the liquidity filter, a
    backwardated curve shifting L2's share to L1 calls, and a monthly premium budget (L2 is sized
    by `_resize_l2`)."""
    r, day, q = d.cfg.ladder_rules, d.day, d.quotes
    month = f"{day.date:%Y-%m}"
    if d.hedge_month != month:
        d.hedge_month, d.hedge_budget_left = month, d.cfg.hedge_spend_per_month * capital
    monthly_budget = d.cfg.hedge_spend_per_month * capital
    liquid, why = alvh.liquidity_ok(day.regime, r)
    if not liquid:
        d.events.append(f"hedge adds blocked by the liquidity filter: {why}")
        return
    w = dict(alvh.layer_weights(day.regime, day.beta_rising, r))
    held = set(d.legs["layer"].tolist()) if len(d.legs) else set()
    _, l2_reason = q.memo(("L2", r), lambda: alvh.l2_calendar(day.futures, r))
    if l2_reason.startswith("backwardation") and not held & set(HEDGE_VX_LAYERS):
        d.events.append(f"L2: {l2_reason}")
        w["L1"], w["L2"] = w["L1"] + w["L2"], 0.0
    if "L1" not in held and w["L1"] > 0 and q.chain("VIX").n:
        target = alvh.l1_target_dte(day.beta_rising, r)
        vix = q.chain("VIX")
        call = q.memo(("L1", r, target), lambda: vix.row(alvh.l1_call_row(
            vix.call, vix.cols["dte"], vix.cols["ask"], vix.cols["delta"], target, r)))
        _buy_premium(d, call, w["L1"] * monthly_budget, "L1", "VIX", VIX_OPT_MULT)
    if "L3" not in held and w["L3"] > 0 and q.chain("SPX").n:
        spx = q.chain("SPX")
        put = q.memo(("L3", r), lambda: spx.row(alvh.l3_put_row(
            spx.call, spx.cols["dte"], spx.cols["ask"], spx.cols["delta"], r)))
        _buy_premium(d, put, w["L3"] * monthly_budget, "L3", "SPX", SPX_MULT)


def _buy_premium(d: _Day, row: dict[str, np.ndarray] | None, budget: float, layer: str, instrument: str,
                 mult: float) -> None:
    if row is None:
        return
    ask = float(row["ask"][0])
    n = int(np.floor(min(budget, d.hedge_budget_left) / (ask * mult))) if ask > 0 else 0
    if n < 1:
        return
    new = _new_legs(row, d.day, d.mode, "alvh", layer, f"{layer}:{d.day.date:%Y%m%d}", np.full(1, n),
                    instrument, "option", mult)
    d.open(new, f"{layer} open")
    d.hedge_budget_left -= n * ask * mult


MIN_CALENDAR_BETA_SPREAD = 0.10  # guard: a calendar counts at least this net beta per contract pair


def _calendar_beta(q: DayQuotes, months: np.ndarray) -> float:
    """Net beta to spot VIX of one long-M2 / short-M4 pair (unknown betas by `alvh.beta_fallback`),
    at least MIN_CALENDAR_BETA_SPREAD so near-equal estimated betas cannot size an unbounded spread."""
    beta = np.array([q.beta.get(m, np.nan) for m in months.tolist()], dtype=float)
    beta = np.where(np.isfinite(beta), beta, alvh.beta_fallback(months))
    return max(float(beta[0] - beta[1]), MIN_CALENDAR_BETA_SPREAD)


def _resize_l2(d: _Day, notional: float, hedge_weight: float) -> None:
    """L2 (steward): long M2 / short M4 sized so its NET VX delta dollars reach the target, cap x the
    condor program's notional risk x the layer's adaptive share, re-sized only when the target has
    moved by more than `hedge_band` since the last re-size (hysteresis) or nothing is held. Futures
    unless the liquidity filter refuses them or the second engine (VIX-option synthetic futures, a
    tenth of a contract per option pair) costs less for the same exposure: the events say which and
    why."""
    r, day, cfg, q = d.cfg.ladder_rules, d.day, d.cfg, d.quotes
    w_l2 = alvh.layer_weights(day.regime, day.beta_rising, r)["L2"]
    scale = min(1.0, 3 * w_l2) * min(1.0, len(alloc.ALLOCATED) * hedge_weight)
    target = cfg.hedge_cap * notional * scale
    held = vx_delta_dollars(d.legs, day, cfg, q)
    if (target == 0.0 and held == 0.0) or not len(day.futures):
        return
    moved = abs(target - d.l2_target) > cfg.hedge_band * max(d.l2_target, 1e-9)
    if not (moved or held == 0.0):
        return  # inside the hysteresis band: nothing to re-size
    fut, reason = q.memo(("L2", r), lambda: alvh.l2_calendar(day.futures, r))
    if not len(fut) or reason:
        if reason and not reason.startswith("backwardation") and target > 0:
            d.events.append(f"L2 not opened: {reason}")
        return
    per_pair = _calendar_beta(q, fut["month_index"].to_numpy(float)) * VX_MULTIPLIER * cfg.stress_move_vix_points
    if target < held - 1e-6:
        _cut_vx_to(d, target, f"L2 re-size: target {target:,.0f} (hysteresis band {cfg.hedge_band:g})")
        d.l2_target = target
        return
    pairs = int(np.floor((target - held) / per_pair + 1e-9))
    option_pairs = int(np.floor((target - held) / (per_pair / 10) + 1e-9))  # a tenth of a calendar each
    if option_pairs < 1:
        d.l2_target = target if held > 0 else d.l2_target
        return
    liquid, _ = alvh.liquidity_ok(day.regime, r)
    if not liquid:
        return  # `_open_hedge` has said why
    blocked, bwhy = alvh.futures_blocked(day.regime)
    syn, report = q.memo(("synthetic", r), lambda: alvh.synthetic_calendar(q.chain("VIX").frame(), day.futures, r))
    errors = int(report["data_error"].sum()) if len(report) else 0
    if errors:
        d.events.append(f"second engine: {errors} parity deviation(s) beyond costs reported as data errors")
    fut_cost = _one_way_cost(fut["bid"].to_numpy(float), fut["ask"].to_numpy(float), VX_MULTIPLIER, cfg.vx_future_fee)
    syn_cost = (10 * _one_way_cost(syn["bid"].to_numpy(float), syn["ask"].to_numpy(float), VIX_OPT_MULT,
                                   cfg.vix_option_fee) if len(syn) == 4 else np.inf)
    if pairs >= 1 and not blocked and fut_cost <= syn_cost:
        new = _new_legs(fut.assign(mid=fut["settle"]), day, d.mode, "alvh", "L2", f"L2:{day.date:%Y%m%d}",
                        fut["side"].to_numpy(float) * pairs, "VX", "future", VX_MULTIPLIER)
        d.open(new, "L2 open")
        d.events.append(f"L2 by futures: ${fut_cost:,.0f} vs second engine "
                        f"{'n/a' if not np.isfinite(syn_cost) else f'${syn_cost:,.0f}'} per calendar, one way")
    elif len(syn) == 4:
        why = (f"futures refused by the liquidity filter ({bwhy})" if blocked
               else f"a whole futures calendar (${per_pair:,.0f} net VX delta) exceeds the gap to the target "
                    f"${target - held:,.0f}" if pairs < 1
               else f"cheaper: ${syn_cost:,.0f} vs futures ${fut_cost:,.0f} per calendar, one way")
        new = _new_legs(syn, day, d.mode, "alvh", "synthetic", f"synthetic:{day.date:%Y%m%d}",
                        syn["side"].to_numpy(float) * option_pairs, "VIX", "option", VIX_OPT_MULT)
        d.open(new, "synthetic calendar open (second engine)")
        d.events.append(f"L2 by the second engine: {why}")
    else:
        d.events.append("L2 not opened: " + (f"futures refused ({bwhy})" if blocked else "no whole futures calendar "
                                             "fits the target") + " and the second engine has no clean calendar")
        return
    d.l2_target = target


def _one_way_cost(bid: np.ndarray, ask: np.ndarray, mult: float, fee: float) -> float:
    """Half the quoted spread plus the fee, over one unit of each leg, USD."""
    return float(np.sum(0.5 * (ask - bid) * mult + fee))


def _static_vx(d: _Day, equity: float) -> None:
    """The promoter's hedge (DESIGN §5): a static long VX futures position, the second month, a
    fixed share of equity in notional (at least one contract), opened when none is held (after each
    monthly roll). No second engine, no backwardation rule, no liquidity filter, no sizing cap."""
    if d.cfg.promoter_vx_share <= 0 or (len(d.legs) and d.has("layer", STATIC_VX_LAYER).any()):
        return
    f = d.day.futures
    if not len(f):
        return
    ok = (f["month_index"].to_numpy() == d.cfg.ladder_rules.l2_long_month) & (f["settle"].to_numpy(float) > 0) \
        & np.isfinite(f["ask"].to_numpy(float))
    if not ok.any():
        return
    row = f[ok].iloc[[0]]
    price = float(row["settle"].iloc[0])
    n = max(1, int(np.floor(d.cfg.promoter_vx_share * equity / (price * VX_MULTIPLIER))))
    new = _new_legs(row.assign(mid=row["settle"]), d.day, d.mode, "alvh", STATIC_VX_LAYER,
                    f"static:{d.day.date:%Y%m%d}", np.full(1, float(n)), "VX", "future", VX_MULTIPLIER)
    d.open(new, "static VX open")


def _enforce_sizing_rule(d: _Day, notional: float) -> None:
    """After the day's trades: the ladder's NET VX delta dollars <= cap x the condor program's
    notional risk, cutting L2 / synthetic spreads (whole units, at bid/ask) until it holds."""
    limit = d.cfg.hedge_cap * notional
    if vx_delta_dollars(d.legs, d.day, d.cfg, d.quotes) > limit + 1e-6:
        _cut_vx_to(d, limit, "sizing rule", forced=True)  # the rule holds at every close


def _cut_vx_to(d: _Day, limit: float, reason: str, forced: bool = False) -> None:
    """Reduce the ladder's VX spreads, newest first, in whole units, until the net VX delta
    dollars are <= `limit` (`forced`: now even under fill_timing "next")."""
    spreads = d.legs.take(np.isin(d.legs["layer"], HEDGE_VX_LAYERS))
    now = forced or not d.deferred  # the legs change with each cut; else the orders are counted here
    total = vx_delta_dollars(d.legs, d.day, d.cfg, d.quotes)
    for pid in sorted(set(spreads["position_id"].tolist()), key=lambda p: p.split(":", 1)[1], reverse=True):
        if now:
            total = vx_delta_dollars(d.legs, d.day, d.cfg, d.quotes)
        if total <= limit + 1e-6:
            break
        pos = spreads.take(spreads["position_id"] == pid)
        units = float(np.abs(pos["quantity"]).max())
        per_unit = vx_delta_dollars(pos, d.day, d.cfg, d.quotes) / units
        others = total - per_unit * units
        keep = max(int(np.floor((limit - others) / per_unit + 1e-9)), 0) if per_unit > 0 else int(units)
        keep = min(keep, int(units))
        if keep < units:
            _reduce(d, pid, keep / units, f"{reason}: cut to {keep} of {int(units)}", forced)
            total = others + per_unit * keep


def _reduce(d: _Day, pid: str, keep_fraction: float, reason: str, forced: bool = False) -> None:
    """Keep `keep_fraction` of position `pid`: now, or as an order for the next session (fill_timing
    "next") unless `forced` (the sizing rule's cut holds at every close)."""
    mask = d.legs["position_id"] == pid
    legs = d.legs.take(mask)
    change = -legs["quantity"] * (1.0 - keep_fraction)
    if d.deferred and not forced:
        d.order(legs.assign(quantity=change), reason, "change")
        return
    d.book_trades(trade_rows(legs, change, d.day, d.mode, reason, d.cfg))
    qty = d.legs["quantity"].copy()
    qty[mask] = legs["quantity"] + change
    d.legs = d.legs.assign(quantity=qty)
    d.legs = d.legs.take(d.legs["quantity"] != 0)
