"""The `synthetic` source: the nine raw tables cut from the simulated market state
(`core.market_sim`). Each table for each day is a pure function of (config, date): per-day
noise comes from `day_rng(seed, table, date)`, so partitions can be built in any order.

Option quotes are centred on the model price (mid = Black-Scholes / Black-76 price exactly, the
half-spread a whole number of ticks), so put-call parity holds on mids and implied vols invert
back to `model_iv`; quotes whose bid would be negative are floored at 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from alvh_pipeline.core import calendar as cal
from alvh_pipeline.core import chain_model as cm
from alvh_pipeline.core import market_sim as ms
from alvh_pipeline.core.pricing import black, black_scholes

SPX_DIV_YIELD = 0.018


def _dates(dates: Sequence) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(list(dates))).normalize().as_unit("ns")


def _stress(state: ms.MarketState, idx) -> np.ndarray:
    return ms.stress_level(state.variance[idx], state.config)


def _ceil_tick(x: np.ndarray, tick) -> np.ndarray:
    return np.ceil(np.round(np.asarray(x) / tick, 9)) * tick


def _per_day(state, table: str, dates: pd.DatetimeIndex, build: Callable) -> pd.DataFrame:
    frames = [build(state, d, day_index, ms.day_rng(state.config.seed, table, d))
              for d, day_index in zip(dates, state.index_of(dates))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---- equity_bars ---------------------------------------------------------------------------

def equity_quotes(close: np.ndarray, is_etf: np.ndarray, stress: float,
                  rng: np.random.Generator, cents: bool = True) -> dict[str, np.ndarray]:
    """The closing quote model of a bar without a quote (synthetic names, and real bars delivered
    without bid / ask): half-spread 2.5 bp of the close (0.5 bp for an ETF) widened by stress,
    rounded up to whole cents, centred on the close; sizes lognormal around 800 shares (5,000 for
    an ETF), thinner in stress. Returns close (the mid, rounded to cents), bid, ask, bid_size,
    ask_size.

    `cents=False` for closes that are not traded price levels (a file's split- and dividend-adjusted
    history, where a 1.36 close was a $20 share): no cent grid, which there would neither hold nor
    cost a cent; the mid is the close as given and the half-spread the model's share of it
    (bid / ask rounded to 1e-6 only to drop float noise). The size draws are the same."""
    n = len(close)
    half_spread = close * np.where(is_etf, 0.5e-4, 2.5e-4) * (1 + 2 * stress)
    if cents:
        half_spread = np.maximum(_ceil_tick(half_spread, 0.01), 0.01)
        mid = np.round(close, 2)
    else:
        mid = np.asarray(close, dtype=float)
    size_base = np.where(is_etf, 5000, 800) / (1 + 2 * stress)
    sizes = np.maximum(1, (size_base * np.exp(0.4 * rng.standard_normal((2, n))))).astype(np.int64) * 1
    digits = 2 if cents else 6
    return {"close": mid, "bid": np.round(mid - half_spread, digits), "ask": np.round(mid + half_spread, digits),
            "bid_size": sizes[0], "ask_size": sizes[1]}


def _equity_day(state: ms.MarketState, d, i: int, rng: np.random.Generator) -> pd.DataFrame:
    names = np.concatenate([state.symbols, list(state.etf_close)])
    sectors = np.concatenate([state.sectors, ["ETF"] * len(state.etf_close)])
    close = np.concatenate([state.equity_close[i], [state.etf_close[k][i] for k in state.etf_close]])
    prev = np.concatenate(
        [state.equity_close[max(i - 1, 0)], [state.etf_close[k][max(i - 1, 0)] for k in state.etf_close]]
    )
    n = len(names)
    stress = float(_stress(state, i))
    open_, high, low = _ohlc_from_close(close, prev, np.sqrt(state.variance[i] / 252.0), rng)
    base_vol = np.where(sectors == "ETF", 6e7, 2e6)
    volume = (base_vol * (1 + stress) * np.exp(0.3 * rng.standard_normal(n))).astype(np.int64)
    quotes = equity_quotes(close, sectors == "ETF", stress, rng)
    return pd.DataFrame(
        {
            "date": d, "symbol": names, "sector": sectors,
            "open": np.round(open_, 2), "high": np.round(high, 2), "low": np.round(low, 2),
            "close": quotes["close"], "volume": volume,
            "bid": quotes["bid"], "ask": quotes["ask"],
            "bid_size": quotes["bid_size"], "ask_size": quotes["ask_size"], "provenance": "synthetic",
        }
    )


# ---- index_levels ----------------------------------------------------------------------------

def _ohlc_from_close(close, prev, vol, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(close)
    open_ = prev * np.exp(0.3 * vol * rng.standard_normal(n))
    span = np.abs(rng.standard_normal((2, n))) * vol * 0.8
    return open_, np.maximum(open_, close) * np.exp(span[0]), np.minimum(open_, close) * np.exp(-span[1])


def _index_day(state: ms.MarketState, d, i: int, rng) -> pd.DataFrame:
    j = max(i - 1, 0)
    vix = ms.vix_future_fair(state.variance[[i, j]], 0.0, state.config)
    close = np.array([state.spx[i], state.comp[i], vix[0]])
    prev = np.array([state.spx[j], state.comp[j], vix[1]])
    vol = np.array([np.sqrt(state.variance[i] / 252)] * 2 + [0.05])
    o, h, lo = _ohlc_from_close(close, prev, vol, rng)
    return pd.DataFrame(
        {
            "date": d, "index": ["SPX", "COMP", "VIX"], "open": np.round(o, 2), "high": np.round(h, 2),
            "low": np.round(lo, 2), "close": np.round(close, 2), "provenance": "synthetic",
        }
    )


# ---- vix_futures -----------------------------------------------------------------------------

def vix_futures_quotes(
    d, futures_fair: np.ndarray, listed: pd.DataFrame, stress: float, rng: np.random.Generator,
    provenance: np.ndarray | str = "synthetic", published: bool = False,
) -> pd.DataFrame:
    """Quotes, depth, volume and open interest around given settlements (front month first).
    Widths: `chain_model.vx_futures_width` (one tick in the front two months in calm; beyond them
    0.25 vol pt and more in stress), quoted symmetrically around the settlement with the half-width
    rounded up to a whole tick (quotes on the 0.05 grid: at least 0.10 wide); depth thins with
    months out and stress.
    Model settlements are rounded to the 0.05 tick; `published` ones are kept as they are."""
    m = listed["month_index"].to_numpy()
    settle = np.asarray(futures_fair, dtype=float)
    if not published:
        settle = np.round(settle / 0.05) * 0.05
    half = _ceil_tick(cm.vx_futures_width(m, stress) / 2, 0.05)
    depth = 400 * np.exp(-0.45 * (m - 1)) / (1 + 2.5 * stress)
    sizes = np.maximum(1, depth * np.exp(0.3 * rng.standard_normal((2, len(m))))).astype(np.int64)
    noise = np.exp(0.3 * rng.standard_normal(len(m)))
    volume = (60000 * np.exp(-0.7 * (m - 1)) * (1 + stress) * noise).astype(np.int64)
    oi = (150000 * np.exp(-0.5 * (m - 1)) * np.exp(0.1 * rng.standard_normal(len(m)))).astype(np.int64)
    return pd.DataFrame(
        {
            "date": pd.Timestamp(d), "contract": listed["contract"].to_numpy(),
            "expiry": pd.DatetimeIndex(listed["expiry"]), "month_index": m.astype(np.int64),
            "settle": settle if published else np.round(settle, 2),
            "bid": np.round(settle - half, 2), "ask": np.round(settle + half, 2),
            "bid_size": sizes[0], "ask_size": sizes[1], "volume": volume, "open_interest": oi,
            "provenance": provenance,
        }
    )


def _years_to(d, expiries) -> np.ndarray:
    return (pd.DatetimeIndex(expiries) - pd.Timestamp(d)).days.to_numpy() / 365.0


@lru_cache(maxsize=512)
def _listed_vix_futures(d: pd.Timestamp) -> pd.DataFrame:
    """`cal.listed_vix_futures`, once per day: vix_futures and vix_options (its underlyings) both
    ask for it. Read only (copy-on-write frames)."""
    return cal.listed_vix_futures(d)


def _vix_futures_day(state: ms.MarketState, d, i: int, rng) -> pd.DataFrame:
    listed = _listed_vix_futures(pd.Timestamp(d))
    tau = _years_to(d, listed["expiry"])
    fair = ms.vix_future_fair(state.variance[i], tau, state.config)
    # Small contract-specific noise that vanishes at expiry keeps the curve from being a
    # deterministic function of v_t while preserving convergence to the VIX.
    fair = fair * np.exp(0.01 * np.sqrt(tau) * rng.standard_normal(len(tau)))
    return vix_futures_quotes(d, fair, listed, float(_stress(state, i)), rng)


# ---- option chains ----------------------------------------------------------------------------

def option_quotes(price: np.ndarray, stress: float, months_out: np.ndarray, tick_small: float,
                  tick_large: float, rng: np.random.Generator, base_size: float,
                  params: cm.ChainParams = cm.CALIBRATED) -> tuple[np.ndarray, ...]:
    """Bid/ask centred on `price`; half-spread (`chain_model.option_half_spread`: a share of Cboe's
    legal width, wider in stress and further out) rounded up to whole ticks."""
    raw_half = cm.option_half_spread(price, stress, months_out, params)
    tick = np.where(price < 3.0, tick_small, tick_large)
    half = np.maximum(_ceil_tick(raw_half, tick), tick)
    bid = np.maximum(price - half, 0.0)
    ask = price + half
    depth = base_size / (1 + 2.5 * stress) * np.exp(-0.2 * months_out)
    sizes = np.maximum(1, depth * np.exp(0.4 * rng.standard_normal((2, len(price))))).astype(np.int64)
    # not rounded: mid stays exactly the model price, so implied vols invert to model_iv
    return bid, ask, sizes[0], sizes[1]


def spx_chain_rows(tau: np.ndarray, spot: np.ndarray, v: np.ndarray, rate: np.ndarray, stress: np.ndarray,
                   cfg: ms.SimConfig, params: cm.ChainParams = cm.CALIBRATED) -> dict[str, np.ndarray]:
    """The strikes and model prices of SPX chains, one (day, expiry) pair per element of the input
    arrays (each `tau` years to expiry on a day with that spot, variance, rate and stress).
    Strikes every 5 points from the put wing (4 ATM standard deviations below the forward, or 2.5
    of the wing's, its vol being the smile's 3 ATM standard deviations out, when a steep skew
    puts the 5-delta put further out) to 2.5 ATM standard deviations above the forward; every
    pair's calls, then their puts at the same strikes.
    Returns arrays per row: pair (index into the inputs), strike, option_type, model_iv, price."""
    tau, spot, v, rate, stress = (np.asarray(a, dtype=float) for a in (tau, spot, v, rate, stress))
    atm = ms.spx_atm_vol(v, tau, cfg, params.atm_to_vix)
    sd = atm * np.sqrt(tau)
    fwd = spot * np.exp((rate - SPX_DIV_YIELD) * tau)
    wing = cm.smile_multiplier(np.full(len(tau), -3.0), stress, params)
    lo = fwd * np.exp(-sd * np.maximum(2.5 * wing, 4.0))
    hi = fwd * np.exp(2.5 * sd)
    counts = (np.floor(hi / 5) - np.ceil(lo / 5) + 1).astype(int)
    pair = np.repeat(np.arange(len(tau)), counts)
    starts = np.repeat(np.ceil(lo / 5), counts)
    first_row = np.repeat(np.cumsum(counts) - counts, counts)
    strikes = 5.0 * (starts + np.arange(counts.sum()) - first_row)
    pair, strike = np.concatenate([pair, pair]), np.concatenate([strikes, strikes])
    opt = np.repeat(np.array(["C", "P"]), len(strikes))
    t = tau[pair]
    vol = cm.spx_smile(atm[pair], np.log(strike / fwd[pair]), t, stress[pair], params)
    price = black_scholes(spot[pair], strike, t, vol, rate[pair], SPX_DIV_YIELD, opt)
    return {"pair": pair, "strike": strike, "option_type": opt, "model_iv": vol, "price": price}


def spx_chain(d, spot: float, v: float, rate: float, stress: float, cfg: ms.SimConfig,
              rng: np.random.Generator, provenance="synthetic", params: cm.ChainParams = cm.CALIBRATED,
              expiries: pd.DatetimeIndex | None = None) -> pd.DataFrame:
    """The SPX chain of day `d` (every listed expiry, or only `expiries`; rows `spx_chain_rows`),
    quoted around the model price (`option_quotes`)."""
    expiries = cal.spx_expiries(d) if expiries is None else pd.DatetimeIndex(expiries)
    tau = _years_to(d, expiries)
    n = len(tau)
    rows = spx_chain_rows(tau, np.full(n, spot), np.full(n, v), np.full(n, rate), np.full(n, stress), cfg, params)
    t = tau[rows["pair"]]
    bid, ask, bs, asz = option_quotes(rows["price"], stress, t * 12, 0.05, 0.10, rng, 150, params)
    return pd.DataFrame(
        {
            "date": pd.Timestamp(d), "expiry": expiries[rows["pair"]], "strike": rows["strike"],
            "option_type": rows["option_type"], "bid": bid, "ask": ask, "bid_size": bs, "ask_size": asz,
            "underlying": spot, "rate": rate, "dividend_yield": SPX_DIV_YIELD, "model_iv": rows["model_iv"],
            "provenance": provenance,
        }
    )


def vix_strike_grid(lo: float, hi: float) -> np.ndarray:
    """Listed VIX strikes: whole points up to 50, every 5 above."""
    fine = np.arange(max(np.ceil(lo), 1.0), min(np.floor(hi), 50.0) + 1)
    coarse = np.arange(55.0, 5 * np.floor(hi / 5) + 1, 5.0) if hi >= 55 else np.array([])
    return np.concatenate([fine, coarse])


def vix_chain(d, futures: pd.DataFrame, rate: float, stress: float, rng: np.random.Generator,
              provenance="synthetic", n_months: int = 4, params: cm.ChainParams = cm.CALIBRATED) -> pd.DataFrame:
    """Black-76 chain on each of the first `n_months` VX futures, with a call skew. Built in arrays
    with one frame at the end (a frame per expiry cost more than the pricing)."""
    fut = futures.nsmallest(n_months, "month_index")
    if fut.empty:
        return pd.concat([])  # nothing to quote: the error a chain without expiries always raised
    expiries = pd.DatetimeIndex(fut["expiry"])
    settle = fut["settle"].to_numpy()
    strikes, taus, atms = [], [], []
    for f, expiry in zip(settle, expiries):  # ≤ 4 expiries
        tau = max((expiry - pd.Timestamp(d)).days, 1) / 365.0
        atm = cm.vix_option_atm_vol(stress, tau, params)
        sd = atm * np.sqrt(tau)
        strikes.append(vix_strike_grid(f * np.exp(-1.2 * sd), f * np.exp(3.0 * sd)))
        taus.append(tau)
        atms.append(atm)
    counts = [len(k) for k in strikes]
    e_idx = np.tile(np.repeat(np.arange(len(fut)), counts), 2)  # calls, then puts of the same strikes
    strike = np.tile(np.concatenate(strikes), 2)
    opt = np.repeat(np.array(["C", "P"]), sum(counts))
    tau, atm, fwd = np.asarray(taus)[e_idx], np.asarray(atms, dtype=float)[e_idx], settle[e_idx]
    x = np.log(strike / fwd) / (atm * np.sqrt(tau))
    vol = atm * np.clip(1 + params.vix_call_skew * x + params.vix_smile_curvature * x * x, 0.5, 3.0)
    price = black(fwd, strike, tau, vol, np.exp(-rate * tau), opt)
    bid, ask, bs, asz = option_quotes(price, stress, tau * 12, 0.05, 0.05, rng, 300, params)
    return pd.DataFrame(
        {
            "date": pd.Timestamp(d), "expiry": expiries[e_idx], "strike": strike, "option_type": opt,
            "bid": bid, "ask": ask, "bid_size": bs, "ask_size": asz, "future_price": fwd, "rate": rate,
            "model_iv": vol, "provenance": provenance,
        }
    )



def _spx_options_day(state: ms.MarketState, d, i: int, rng) -> pd.DataFrame:
    return spx_chain(d, float(state.spx[i]), float(state.variance[i]), float(state.tbill[i]),
                     float(_stress(state, i)), state.config, rng)


def _vix_options_day(state: ms.MarketState, d, i: int, rng) -> pd.DataFrame:
    fut = _vix_futures_day(state, d, i, ms.day_rng(state.config.seed, "vix_futures", d))
    return vix_chain(d, fut, float(state.tbill[i]), float(_stress(state, i)), rng)


# ---- breadth ---------------------------------------------------------------------------------

def breadth_from_returns(d, ret: float, vol: float, drawdown: float, rng, provenance="synthetic") -> pd.DataFrame:
    """NYSE breadth consistent with the index move: the advancing share is a smooth function of
    the day's return in units of its volatility."""
    total = int(3000 + rng.integers(-150, 150))
    unchanged = int(total * rng.uniform(0.02, 0.05))
    p_up = float(np.clip(0.5 + 0.45 * np.tanh(1.2 * ret / max(vol, 1e-6)) + 0.05 * rng.standard_normal(), 0.02, 0.98))
    advancers = int(round((total - unchanged) * p_up))
    decliners = total - unchanged - advancers
    vol_total = 1.0e9 * (1 + 2 * abs(ret) / max(vol, 1e-6))
    up_volume = int(vol_total * np.clip(p_up + 0.05 * rng.standard_normal(), 0.01, 0.99))
    new_highs = int(max(0.0, 200 * (1 - 10 * drawdown)) * rng.uniform(0.5, 1.5))
    new_lows = int(max(0.0, 600 * min(drawdown, 0.5) * 2) * rng.uniform(0.5, 1.5))
    return pd.DataFrame(
        {
            "date": [pd.Timestamp(d)], "exchange": "NYSE", "advancers": advancers, "decliners": decliners,
            "unchanged": unchanged, "total_issues": total, "up_volume": up_volume,
            "down_volume": int(vol_total) - up_volume, "new_highs": new_highs, "new_lows": new_lows,
            "provenance": provenance,
        }
    )


def _breadth_day(state: ms.MarketState, d, i: int, rng) -> pd.DataFrame:
    window = state.spx[max(0, i - 251) : i + 1]
    drawdown = 1.0 - state.spx[i] / window.max()
    return breadth_from_returns(d, float(state.spx_ret[i]), float(np.sqrt(state.variance[i] / 252)), drawdown, rng)


# ---- macro_events ------------------------------------------------------------------------------

FOMC_MONTHS = (1, 3, 5, 6, 7, 9, 11, 12)


def macro_calendar(start, end) -> pd.DataFrame:
    """Scheduled releases: 8 FOMC decisions a year (a Wednesday in the second half of the
    month), CPI around the 13th and PPI around the 14th of every month, moved to a session."""
    out = _releases(pd.Period(pd.Timestamp(start) - pd.DateOffset(months=1), "M"),
                    pd.Period(pd.Timestamp(end) + pd.DateOffset(months=1), "M"))
    return out[(out.event_date >= pd.Timestamp(start)) & (out.event_date <= pd.Timestamp(end))]


@lru_cache(maxsize=64)
def _releases(first_month: pd.Period, last_month: pd.Period) -> pd.DataFrame:
    """The releases of every month from `first_month` to `last_month`: every day of a month asks
    for the same window, so it is computed once per window (a release stays in its month)."""
    months = pd.period_range(first_month, last_month, freq="M")
    first = months.to_timestamp()
    # third Wednesday of the FOMC months
    wed = first + pd.to_timedelta((2 - first.weekday) % 7 + 14, unit="D")
    fomc = wed[np.isin(first.month, FOMC_MONTHS)]
    cpi = cal.previous_session(first + pd.Timedelta(days=12))
    ppi = cal.previous_session(first + pd.Timedelta(days=13))
    cpi = cal.previous_session(np.where(ppi == cpi, cpi - pd.Timedelta(days=1), cpi))
    out = pd.concat(
        [pd.DataFrame({"event_type": t, "event_date": pd.DatetimeIndex(x)}) for t, x in
         (("FOMC", cal.previous_session(fomc)), ("CPI", cpi), ("PPI", ppi))],
        ignore_index=True,
    )
    return out


def macro_events_day(seed: int, d, provenance="synthetic") -> pd.DataFrame:
    """The releases within 90 days of `d`, by date then type; the surprise of those published by
    `d`. In arrays, one frame at the end (its sort and inserts cost more than the values)."""
    d = pd.Timestamp(d)
    ev = macro_calendar(d - pd.Timedelta(days=90), d + pd.Timedelta(days=90))
    types, dates = ev["event_type"].to_numpy(), pd.DatetimeIndex(ev["event_date"])
    order = np.lexsort((np.unique(types, return_inverse=True)[1], dates.asi8))  # (date, type) is unique
    types, dates = types[order], dates[order]
    surprise = np.array([_surprise(seed, t, e) for t, e in zip(types, dates)])
    return pd.DataFrame({"date": d, "event_type": types, "event_date": dates,
                         "surprise": np.where(dates <= d, surprise, np.nan), "provenance": provenance})


@lru_cache(maxsize=4096)
def _surprise(seed: int, event_type: str, event_date: pd.Timestamp) -> float:
    """A release's surprise, fixed by (seed, event, date), so every as-of day agrees on it."""
    return ms.day_rng(seed, f"macro_{event_type}", event_date).standard_normal()


def _macro_day(state: ms.MarketState, d, i: int, rng) -> pd.DataFrame:
    return macro_events_day(state.config.seed, d)


# ---- fundamentals -------------------------------------------------------------------------------

def fundamentals_asof(seed: int, symbols: np.ndarray, close_at, d, provenance="synthetic") -> pd.DataFrame:
    """Latest quarterly report per symbol published on or before `d`, by symbol. Each report's
    values are fixed by (seed, symbol, quarter) and the price at quarter end (`close_at(dates) ->
    (n_dates, N)`), so they are identical from every as-of date. In (quarter x symbol) arrays, one
    frame at the end (frames per quarter, a sort and a group-by cost more than the values)."""
    d = pd.Timestamp(d)
    q_ends = pd.period_range(d - pd.DateOffset(months=9), d, freq="Q").to_timestamp(how="end").normalize()
    q_ends = q_ends[q_ends < d]
    if not len(q_ends):
        return pd.concat([])  # no quarter before `d`: the error it always raised
    symbols = np.asarray(symbols)
    n = len(symbols)
    rng0 = np.random.default_rng([seed, 200])
    ep_base = rng0.uniform(0.03, 0.08, n)
    cf_mult = rng0.uniform(1.2, 2.0, n)
    payout = rng0.uniform(0.0, 0.6, n)
    shares = rng0.integers(50_000_000, 5_000_000_000, n)
    reports, eps = [], []
    for qe in q_ends:  # at most 3 quarters
        rng = ms.day_rng(seed, "fundamentals", qe)
        lag = rng.integers(20, 46, n)
        noise = np.exp(0.1 * rng.standard_normal(n))
        px = close_at(pd.DatetimeIndex([qe]))[0]
        reports.append((qe + pd.to_timedelta(lag, unit="D")).to_numpy())
        eps.append(px * ep_base * noise)
    report, eps = np.stack(reports), np.stack(eps)
    known = report <= d.to_datetime64()
    latest = len(q_ends) - 1 - np.argmax(known[::-1], axis=0)  # quarters are in order: the last known one
    order = np.argsort(symbols, kind="stable")
    order = order[known.any(axis=0)[order]]
    q, e = latest[order], eps[latest[order], order]
    return pd.DataFrame({
        "date": d, "symbol": symbols[order], "fiscal_period_end": q_ends[q], "report_date": report[q, order],
        "eps_ttm": e, "cfps_ttm": e * cf_mult[order], "dps_ttm": np.maximum(e, 0) * payout[order],
        "shares_outstanding": shares.astype(np.int64)[order], "provenance": provenance,
    })


def _fundamentals_day(state: ms.MarketState, d, i: int, rng) -> pd.DataFrame:
    def close_at(ds: pd.DatetimeIndex) -> np.ndarray:
        # last close on or before each date; the first session stands in before the history
        pos = np.searchsorted(state.dates.values, ds.values, side="right") - 1
        return state.equity_close[np.clip(pos, 0, None)]

    return fundamentals_asof(state.config.seed, state.symbols, close_at, d)


# ---- rates -------------------------------------------------------------------------------------

def _rates(state: ms.MarketState, dates: pd.DatetimeIndex) -> pd.DataFrame:
    i = state.index_of(dates)
    return pd.DataFrame(
        {
            "date": dates, "tbill_3m": np.round(state.tbill[i], 6), "reer_index": state.reer[i],
            "rate_differential": state.rate_diff[i], "provenance": "synthetic",
        }
    )


_BUILDERS = {
    "equity_bars": _equity_day,
    "index_levels": _index_day,
    "vix_futures": _vix_futures_day,
    "spx_options": _spx_options_day,
    "vix_options": _vix_options_day,
    "breadth": _breadth_day,
    "macro_events": _macro_day,
    "fundamentals": _fundamentals_day,
}


def generate(table: str, dates: Sequence, config: ms.SimConfig | None = None) -> pd.DataFrame:
    """Rows of raw `table` for the given trading days (contract columns, any order of dates)."""
    return generate_from_state(ms.market_state(config or ms.SimConfig()), table, dates)


def generate_from_state(state: ms.MarketState, table: str, dates: Sequence) -> pd.DataFrame:
    dates = _dates(dates)
    if table == "rates":
        return _rates(state, dates)
    return _per_day(state, table, dates, _BUILDERS[table])


def generate_days(table: str, dates: Sequence, config: ms.SimConfig | None = None) -> list[pd.DataFrame]:
    """One frame per day, each equal to `generate(table, [day], config)`, from one look-up of the
    market state and one parse of the dates (per call they cost more than a small table's day)."""
    return days_from_state(ms.market_state(config or ms.SimConfig()), table, dates)


def days_from_state(state: ms.MarketState, table: str, dates: Sequence) -> list[pd.DataFrame]:
    """`generate_days` on a given market state (the replay's, for the tables it models as is)."""
    dates = _dates(dates)
    if table == "rates":  # one row per day: cut from the range's frame
        whole = _rates(state, dates)
        return [whole.iloc[k:k + 1].reset_index(drop=True) for k in range(len(dates))]
    build = _BUILDERS[table]
    return [build(state, d, i, ms.day_rng(state.config.seed, table, d)).reset_index(drop=True)
            for d, i in zip(dates, state.index_of(dates))]


def ground_truth(config: ms.SimConfig | None = None) -> dict:
    """What the synthetic market planted: cointegrated pairs and the regime of every day."""
    state = ms.market_state(config or ms.SimConfig())
    return {
        "planted_pairs": [p.__dict__ for p in state.planted_pairs],
        "regimes": pd.Series(np.asarray(ms.REGIMES)[state.regime], index=state.dates, name="regime"),
    }
