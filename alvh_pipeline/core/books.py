"""The books engine: two accounts (modes "steward" and "promoter") run side by side from the same
market data, each holding three books — SPX iron condors, stat-arb pairs and the ALVH hedge
ladder (L1 VIX calls, L2 VX futures calendar, L3 SPX put wings, and the second engine's synthetic
VIX-option futures) — as a small account would: fills at bid/ask, fees per contract, margin,
margin calls, interest on cash. No Dagster import.

A day t (`step`) starts from the state the lake holds for t-1 (open legs and the account), and:
1. settles what expires today (SPX monthly AM-settled: today's SPX open stands in for the SOQ;
   weeklies at the close; VIX options and VX futures: today's VIX open stands in for the SOQ —
   both labelled `settle_source`),
2. cuts positions if yesterday's close left a margin call (at today's bid/ask),
3. marks the legs to today's quotes (a strike no longer quoted is marked on the same expiry's
   nearest-strike implied vol and labelled `mark_source` = "model"),
4. exits: condor take-profit / stop / 21 DTE; hedge rolls (L1 at <= 7 DTE, L3 at <= 30 DTE, L2 when
   its long month becomes the front); stat-arb exits and stops from the signal,
5. allocation: sleeve weights from the trailing sleeve returns (steward = equal risk contribution,
   promoter = trailing Sharpe with the hedge at a floor; `core.allocation`),
6. entries: a condor on the monthly cycle sized from the condor sleeve's risk budget; the hedge
   ladder with adaptive layer weights, the liquidity filter and the sizing rule; stat-arb pairs,
7. enforces the sizing rule after every trade (VIX-futures delta dollars <= cap x condor max
   loss: futures are cut first), computes margin and flags a margin call for tomorrow.

Everything is computed from rows dated <= t. The day loop is inherent (each day starts from the
previous day's positions); inside a day every operation is vectorized over legs and quotes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from alvh_pipeline.core import allocation as alloc
from alvh_pipeline.core import alvh, condor
from alvh_pipeline.core import margin as mg
from alvh_pipeline.core import statarb_book as sab
from alvh_pipeline.core.option_marks import mark_chain
from alvh_pipeline.core.pricing import black

SPX_MULT = 100.0
VIX_OPT_MULT = 100.0
# VX: $1,000 per VIX point. Before 2007-03-26 the contract was quoted at 10x the index on a $100
# multiplier, which is the same $1,000 per VIX point; the lake holds those settles in VIX points.
VX_MULTIPLIER = 1000.0
DAYS_PER_YEAR = 365.0
BOOKS = ("condor", "statarb", "alvh")
HEDGE_LAYERS = ("L1", "L2", "L3", "synthetic")

LEG_COLUMNS = [
    "date", "mode", "book", "layer", "position_id", "instrument", "kind", "right", "strike", "expiry",
    "contract", "quantity", "multiplier", "entry_date", "entry_price", "credit", "mark", "bid", "ask",
    "delta", "gamma", "vega", "theta", "underlying", "iv", "beta_to_vix", "vx_equivalent", "mark_source",
    "provenance",
]
LEG_SORT = ("mode", "book", "position_id", "instrument", "right", "strike", "contract")
TRADE_SORT = ("mode", "book", "position_id", "instrument", "right", "strike", "contract", "reason")
TRADE_COLUMNS = [
    "date", "mode", "book", "layer", "position_id", "instrument", "kind", "right", "strike", "expiry",
    "contract", "quantity", "multiplier", "fill", "mid", "spread_cost", "fee", "cash_flow", "reason",
    "provenance",
]


@dataclass(frozen=True)
class BookConfig:
    """What the books read from the user's settings (`resources.StrategyConfig.book_config()`
    holds the one default of each); the rule sets keep their own documented defaults."""

    account_equity: float
    hedge_cap: float
    stress_move_vix_points: float
    modes: tuple[str, ...]
    promoter_hedge_floor: float
    condor_risk_budget: float  # open condors' max loss <= this x the condor sleeve's capital
    hedge_spend_per_month: float  # hedge premium per month, fraction of the hedge sleeve's capital
    spx_option_fee: float
    vix_option_fee: float
    vx_future_fee: float
    equity_fee_per_share: float
    allocation_window: int = 63
    condor_rules: condor.CondorRules = field(default_factory=condor.CondorRules)
    ladder_rules: alvh.LadderRules = field(default_factory=alvh.LadderRules)
    statarb_rules: sab.StatArbRules = field(default_factory=sab.StatArbRules)


@dataclass
class MarketDay:
    """Everything day t's decisions may read (rows dated <= t only)."""

    date: pd.Timestamp
    spx: pd.DataFrame  # spx_options of the day
    vix: pd.DataFrame  # vix_options of the day
    futures: pd.DataFrame  # vix_futures of the day
    spx_open: float
    spx_close: float
    vix_open: float
    vix_close: float
    rate: float  # 13-week T-bill, fraction
    regime: pd.Series  # the signals/regime row
    statarb: pd.DataFrame  # signals/statarb rows of the day
    equities: pd.DataFrame  # equity_bars of the day (symbol, close, bid, ask)
    equity_vols: pd.Series  # symbol -> trailing daily return std (rows <= t)
    vx_beta: pd.Series  # month_index -> beta of that month's future to spot VIX (rows <= t)
    beta_rising: bool  # the universe's mean 60-day CAPM beta above its value a month earlier
    provenance: str  # "synthetic" | "real" | "derived" | "model" | "mixed"
    days_since_previous: int = 1  # calendar days since the previous session (interest accrual)


@dataclass
class ModeState:
    """What carries from one day to the next for one mode (all of it is in the lake)."""

    mode: str
    cash: float
    legs: pd.DataFrame  # open legs (LEG_COLUMNS)
    sleeve_cash: dict[str, float]  # cumulative cash flows per sleeve (for sleeve P&L)
    sleeve_value: dict[str, float]  # yesterday's sleeve value (cash + marks)
    sleeve_returns: pd.DataFrame  # trailing daily sleeve returns (index date, columns SLEEVES)
    weights: dict[str, float]  # yesterday's weights
    margin_call: float = 0.0  # shortfall flagged at yesterday's close, to cut today
    last_condor_expiry: pd.Timestamp | None = None  # one condor per monthly expiry
    last_hedge_spend_month: str = ""  # YYYY-MM of the last premium budget refresh
    hedge_budget_left: float = 0.0


def fresh_state(mode: str, equity: float) -> ModeState:
    return ModeState(mode, equity, empty_legs(), {s: 0.0 for s in alloc.SLEEVES}, {s: 0.0 for s in alloc.SLEEVES},
                     pd.DataFrame(columns=list(alloc.SLEEVES), dtype=float), {})


def empty_legs() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in LEG_COLUMNS})


def empty_trades() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in TRADE_COLUMNS})


def _dtype(col: str) -> str:
    if col in ("date", "expiry", "entry_date"):
        return "datetime64[ns]"
    if col in ("mode", "book", "layer", "position_id", "instrument", "kind", "right", "contract", "mark_source",
               "provenance", "reason"):
        return "object"
    return "float64"


def sleeve_of(book: str) -> str:
    return {"condor": "condor", "statarb": "statarb", "alvh": "hedge"}[book]


def vx_multiplier(date: pd.Timestamp) -> float:
    """Dollars per VIX point of one VX contract, in the lake's VIX-point prices (module constant)."""
    return VX_MULTIPLIER


# ---- quotes and marks -----------------------------------------------------------------------

def _option_quotes(day: MarketDay) -> pd.DataFrame:
    """Marked SPX and VIX chains of the day, one frame keyed by (instrument, expiry, strike, right)."""
    parts = []
    for instrument, chain, kind in (("SPX", day.spx, "spx"), ("VIX", day.vix, "vix")):
        if len(chain):
            m = mark_chain(chain, kind)
            # the level each option's delta is taken against: SPX spot, or the VIX option's VX future
            level = m["underlying"] if kind == "spx" else m["future_price"]
            parts.append(m.assign(instrument=instrument, right=m["option_type"], underlying_level=level))
    if not parts:
        return pd.DataFrame(columns=["instrument", "expiry", "strike", "right", "bid", "ask", "mid", "iv", "delta",
                                     "gamma", "vega", "theta", "forward", "t", "rate"])
    q = pd.concat(parts, ignore_index=True)
    q["expiry"] = pd.to_datetime(q["expiry"])
    return q


def mark_legs(legs: pd.DataFrame, day: MarketDay, quotes: pd.DataFrame) -> pd.DataFrame:
    """Today's bid / ask / mark and greeks on every open leg (vectorized merges)."""
    if not len(legs):
        return legs
    legs = legs.copy()
    legs["date"] = day.date
    opt = legs["kind"] == "option"
    if opt.any():
        keys = ["instrument", "expiry", "strike", "right"]
        cols = ["bid", "ask", "mid", "delta", "gamma", "vega", "theta", "underlying_level", "iv"]
        merged = legs.loc[opt, keys].merge(quotes[keys + cols], on=keys, how="left")
        missing = merged["mid"].isna().to_numpy()
        if missing.any():
            merged.loc[missing, cols] = _model_marks(legs.loc[opt].iloc[np.flatnonzero(missing)], quotes).to_numpy()
        legs.loc[opt, ["bid", "ask", "mark", "delta", "gamma", "vega", "theta", "underlying", "iv"]] = \
            merged[cols].to_numpy()
        legs.loc[opt, "mark_source"] = np.where(missing, "model", "quote")
    fut = legs["kind"] == "future"
    if fut.any():
        f = day.futures.set_index("contract")
        c = legs.loc[fut, "contract"]
        legs.loc[fut, "bid"] = c.map(f["bid"]).to_numpy()
        legs.loc[fut, "ask"] = c.map(f["ask"]).to_numpy()
        legs.loc[fut, "mark"] = c.map(f["settle"]).to_numpy()
        legs.loc[fut, "underlying"] = legs.loc[fut, "mark"]
        legs.loc[fut, "iv"] = np.nan
        month = c.map(f["month_index"])
        legs.loc[fut, "beta_to_vix"] = month.map(day.vx_beta).to_numpy(float)
        legs.loc[fut, ["delta", "gamma", "vega", "theta"]] = [1.0, 0.0, 0.0, 0.0]
        legs.loc[fut, "mark_source"] = "quote"
    eq = legs["kind"] == "equity"
    if eq.any():
        e = day.equities.set_index("symbol")
        s = legs.loc[eq, "instrument"]
        legs.loc[eq, "bid"] = s.map(e["bid"]).to_numpy()
        legs.loc[eq, "ask"] = s.map(e["ask"]).to_numpy()
        legs.loc[eq, "mark"] = s.map(e["close"]).to_numpy()
        legs.loc[eq, "underlying"] = legs.loc[eq, "mark"]
        legs.loc[eq, "iv"] = np.nan
        legs.loc[eq, ["delta", "gamma", "vega", "theta"]] = [1.0, 0.0, 0.0, 0.0]
        legs.loc[eq, "mark_source"] = "quote"
    legs["provenance"] = day.provenance
    return legs


def _model_marks(legs: pd.DataFrame, quotes: pd.DataFrame) -> pd.DataFrame:
    """Marks for option legs whose strike is not quoted today: the same expiry's nearest quoted
    strike's implied vol and half-spread, priced with Black on that expiry's forward."""
    out = pd.DataFrame(np.nan, index=range(len(legs)), columns=["bid", "ask", "mid", "delta", "gamma", "vega",
                                                                 "theta", "underlying_level", "iv"])
    for i, (_, leg) in enumerate(legs.iterrows()):  # rare: a handful of legs a year leave the listed range
        same = quotes[(quotes["instrument"] == leg["instrument"]) & (quotes["expiry"] == leg["expiry"])
                      & (quotes["right"] == leg["right"]) & np.isfinite(quotes["iv"])]
        if not len(same):
            continue
        near = same.iloc[int(np.argmin(np.abs(same["strike"].to_numpy() - leg["strike"])))]
        t = float(near["t"])
        disc = float(np.exp(-near["rate"] * t))
        mid = float(black(near["forward"], leg["strike"], t, near["iv"], disc, leg["right"]))
        half = 0.5 * float(near["ask"] - near["bid"])
        intrinsic_delta = 1.0 if leg["right"] == "C" else -1.0
        delta = intrinsic_delta if (leg["right"] == "C") == (near["forward"] > leg["strike"]) else 0.0
        out.iloc[i] = [max(mid - half, 0.0), mid + half, mid, delta, 0.0, 0.0, 0.0, near["underlying_level"],
                       near["iv"]]
    return out


# ---- trades ---------------------------------------------------------------------------------

def _fee(kind: pd.Series, instrument: pd.Series, qty: pd.Series, cfg: BookConfig) -> np.ndarray:
    per = np.select([kind.eq("future"), kind.eq("equity"), instrument.eq("VIX")],
                    [cfg.vx_future_fee, cfg.equity_fee_per_share, cfg.vix_option_fee], cfg.spx_option_fee)
    return per * np.abs(qty.to_numpy(float))


def trade_rows(legs: pd.DataFrame, qty: np.ndarray, day: MarketDay, mode: str, reason: str,
               cfg: BookConfig) -> pd.DataFrame:
    """Fills of `qty` (signed: + buys at ask, - sells at bid) on the instruments of `legs`."""
    if not len(legs):
        return empty_trades()
    qty = np.asarray(qty, dtype=float)
    t = legs[[c for c in TRADE_COLUMNS if c in legs.columns and c not in ("quantity",)]].copy()
    t["date"], t["mode"], t["reason"], t["provenance"] = day.date, mode, reason, day.provenance
    t["quantity"] = qty
    bid, ask = legs["bid"].to_numpy(float), legs["ask"].to_numpy(float)
    mid = legs["mark"].to_numpy(float)
    t["fill"] = np.where(qty > 0, ask, bid)
    t["mid"] = mid
    mult = legs["multiplier"].to_numpy(float)
    t["spread_cost"] = np.abs(t["fill"].to_numpy() - mid) * mult * np.abs(qty)
    t["fee"] = _fee(legs["kind"], legs["instrument"], pd.Series(qty, index=legs.index), cfg)
    t["cash_flow"] = -qty * t["fill"].to_numpy() * mult - t["fee"].to_numpy()
    return t[TRADE_COLUMNS].reset_index(drop=True)


def settle_rows(legs: pd.DataFrame, value: np.ndarray, day: MarketDay, mode: str, source: str,
                cfg: BookConfig) -> pd.DataFrame:
    """Expiry settlements: the position closes at its settlement value, no spread, no fee."""
    no_fees = replace(cfg, spx_option_fee=0.0, vix_option_fee=0.0, vx_future_fee=0.0)
    t = trade_rows(legs, -legs["quantity"].to_numpy(float), day, mode, f"expiry ({source})", no_fees)
    mult = legs["multiplier"].to_numpy(float)
    t["fill"] = value
    t["mid"] = value
    t["spread_cost"] = 0.0
    t["fee"] = 0.0
    t["cash_flow"] = legs["quantity"].to_numpy(float) * value * mult
    return t


# ---- settlement -----------------------------------------------------------------------------

def settlement_values(legs: pd.DataFrame, day: MarketDay) -> tuple[np.ndarray, np.ndarray]:
    """(value per unit, source label) of legs expiring on or before today. SPX monthlies are
    AM-settled on the opening quotation (today's SPX open stands in for the SOQ), weeklies
    PM-settled at the close; VIX options and VX futures settle on VIX's opening quotation
    (today's VIX open stands in for the SOQ)."""
    spx = legs["instrument"].eq("SPX").to_numpy()
    monthly = condor.is_monthly_expiry(pd.DatetimeIndex(legs["expiry"]))
    underlying = np.where(spx, np.where(monthly, day.spx_open, day.spx_close), day.vix_open)
    source = np.where(spx, np.where(monthly, "SPX open as SOQ proxy", "SPX close"), "VIX open as SOQ proxy")
    strike = legs["strike"].to_numpy(float)
    call = legs["right"].eq("C").to_numpy()
    intrinsic = np.where(call, np.maximum(underlying - strike, 0.0), np.maximum(strike - underlying, 0.0))
    value = np.where(legs["kind"].eq("future").to_numpy(), underlying, intrinsic)
    return value, source


# ---- positions ------------------------------------------------------------------------------

def _new_legs(rows: pd.DataFrame, day: MarketDay, mode: str, book: str, layer: str, position_id: str,
              qty: np.ndarray, instrument: str, kind: str, multiplier: float, credit: float = np.nan) -> pd.DataFrame:
    n = len(rows)
    legs = pd.DataFrame({
        "date": day.date, "mode": mode, "book": book, "layer": layer, "position_id": position_id,
        "instrument": instrument if instrument else rows.get("symbol"), "kind": kind,
        "right": rows["option_type"].to_numpy() if "option_type" in rows else np.full(n, ""),
        "strike": rows["strike"].to_numpy(float) if "strike" in rows else np.full(n, np.nan),
        "expiry": pd.to_datetime(rows["expiry"]).to_numpy() if "expiry" in rows
        else np.full(n, np.datetime64("NaT", "ns")),
        "contract": rows["contract"].to_numpy() if "contract" in rows else np.full(n, ""),
        "quantity": np.asarray(qty, dtype=float), "multiplier": multiplier, "entry_date": day.date,
        "entry_price": np.where(np.asarray(qty) > 0, rows["ask"].to_numpy(float), rows["bid"].to_numpy(float)),
        "credit": credit,
        "mark": rows["mid"].to_numpy(float) if "mid" in rows else rows["settle"].to_numpy(float),
        "bid": rows["bid"].to_numpy(float), "ask": rows["ask"].to_numpy(float),
        "delta": rows["delta"].to_numpy(float) if "delta" in rows else 1.0,
        "gamma": rows["gamma"].to_numpy(float) if "gamma" in rows else 0.0,
        "vega": rows["vega"].to_numpy(float) if "vega" in rows else 0.0,
        "theta": rows["theta"].to_numpy(float) if "theta" in rows else 0.0,
        "underlying": _level(rows, kind), "iv": rows["iv"].to_numpy(float) if "iv" in rows else np.nan,
        "beta_to_vix": np.nan, "vx_equivalent": 0.0, "mark_source": "quote", "provenance": day.provenance,
    }, index=range(n))
    return legs[LEG_COLUMNS]


def _level(rows: pd.DataFrame, kind: str) -> np.ndarray:
    """The underlying level of new legs: an option's from its quote row when it carries it (else
    filled from the day's quotes when the leg is opened), a future's settle, a stock's close."""
    if "underlying_level" in rows:
        return rows["underlying_level"].to_numpy(float)
    if kind == "future" and "settle" in rows:
        return rows["settle"].to_numpy(float)
    if kind == "equity" and "mid" in rows:
        return rows["mid"].to_numpy(float)
    return np.full(len(rows), np.nan)


def vx_equivalent(legs: pd.DataFrame) -> np.ndarray:
    """VX contracts of exposure per leg, for the sizing rule: a future counts |qty| x its
    multiplier / $1,000; a synthetic future (call + put on one strike) counts once, on its call leg,
    at $100 per point (a tenth of a contract)."""
    fut = legs["kind"].eq("future").to_numpy()
    syn_call = (legs["layer"].eq("synthetic") & legs["right"].eq("C")).to_numpy()
    q = np.abs(legs["quantity"].to_numpy(float)) * legs["multiplier"].to_numpy(float) / 1000.0
    return np.where(fut | syn_call, q, 0.0)


def vx_delta_dollars(legs: pd.DataFrame, day: MarketDay, cfg: BookConfig) -> float:
    """Σ VX contracts × $1,000 × that month's beta to spot VIX × the stress move (the sizing rule)."""
    if not len(legs):
        return 0.0
    eq = vx_equivalent(legs)
    beta = _leg_beta(legs, day)
    return float(np.sum(eq * 1000.0 * beta * cfg.stress_move_vix_points))


def _leg_beta(legs: pd.DataFrame, day: MarketDay) -> np.ndarray:
    """Beta to spot VIX of the VX month each leg's exposure is on (futures by contract, synthetic
    legs by the future with their expiry)."""
    f = day.futures
    by_contract = f.set_index("contract")["month_index"]
    by_expiry = f.assign(expiry=pd.to_datetime(f["expiry"])).set_index("expiry")["month_index"]
    month = legs["contract"].map(by_contract)
    month = month.fillna(pd.to_datetime(legs["expiry"]).map(by_expiry))
    beta = month.map(day.vx_beta).to_numpy(float)
    fallback = 1.0 / np.sqrt(np.maximum(month.to_numpy(float), 1.0))  # documented: beta decays with maturity
    return np.where(np.isfinite(beta), beta, np.where(np.isfinite(fallback), fallback, 1.0))


def condor_max_loss(legs: pd.DataFrame) -> float:
    """Σ over open condors of (max wing width × $100 − credit × $100) × contracts."""
    c = legs[legs["book"] == "condor"]
    if not len(c):
        return 0.0
    total = 0.0
    for _, pos in c.groupby("position_id"):  # a handful of open condors at most
        n = float(np.abs(pos["quantity"]).max())
        puts, calls = pos[pos["right"] == "P"]["strike"], pos[pos["right"] == "C"]["strike"]
        total += condor.max_loss_per_condor(float(np.ptp(puts)), float(np.ptp(calls)),
                                            float(pos["credit"].iloc[0])) * n
    return total


def margin_requirement(legs: pd.DataFrame, day: MarketDay) -> float:
    """Maintenance requirement of the whole account (USD): the sum of `margin_components`."""
    return float(sum(margin_components(legs, day).values()))


def margin_components(legs: pd.DataFrame, day: MarketDay) -> dict[str, float]:
    """Maintenance requirement by leg (USD): condors by the Cboe strategy rule; VX futures from the
    dated assumption table with its stress multiplier, plus the short VIX options of synthetic
    futures as naked index options (together: the VIX-futures leg); stocks at Reg-T maintenance
    (25 % long, 30 % short); long options are paid in full (no requirement)."""
    out = {"condor": 0.0, "vx": 0.0, "statarb": 0.0}
    if not len(legs):
        return out
    c = legs[legs["book"] == "condor"]
    for _, pos in c.groupby("position_id"):
        n = float(np.abs(pos["quantity"]).max())
        puts, calls = pos[pos["right"] == "P"]["strike"], pos[pos["right"] == "C"]["strike"]
        out["condor"] += condor.condor_margin(float(np.ptp(puts)), float(np.ptp(calls)), float(pos["credit"].iloc[0]),
                                              n)
    fut = legs[legs["kind"] == "future"]
    if len(fut):
        contracts = fut["quantity"].to_numpy(float)
        spread_pairs = min(contracts[contracts > 0].sum(), -contracts[contracts < 0].sum())
        outright = np.abs(contracts).sum() - 2 * spread_pairs
        stress = mg.vx_stress_multiplier(day.vix_close)
        out["vx"] += mg.vx_margin(day.date, outright, spread_pairs, stress)[1]
    short_opt = legs[(legs["layer"] == "synthetic") & (legs["quantity"] < 0)]
    if len(short_opt):
        out["vx"] += float(np.sum(naked_index_option_margin(short_opt, day)))
    eq = legs[legs["kind"] == "equity"]
    if len(eq):
        mv = eq["quantity"].to_numpy(float) * eq["mark"].to_numpy(float)
        out["statarb"] += float(0.25 * mv[mv > 0].sum() + 0.30 * -mv[mv < 0].sum())
    return out


def naked_index_option_margin(legs: pd.DataFrame, day: MarketDay) -> np.ndarray:
    """Cboe customer margin of a short index option (DESIGN §9): premium + max(15 % × underlying
    − out-of-the-money amount, 10 % × strike) per unit, × multiplier × contracts."""
    under = np.where(legs["instrument"].eq("SPX"), day.spx_close, day.vix_close)
    k = legs["strike"].to_numpy(float)
    otm = np.where(legs["right"].eq("C"), np.maximum(k - under, 0), np.maximum(under - k, 0))
    per = legs["mark"].to_numpy(float) + np.maximum(0.15 * under - otm, 0.10 * k)
    return per * legs["multiplier"].to_numpy(float) * np.abs(legs["quantity"].to_numpy(float))


def mark_value(legs: pd.DataFrame) -> pd.Series:
    """Mark-to-market value of each leg (mid), USD."""
    return legs["quantity"] * legs["multiplier"] * legs["mark"]


def liquidation_value(legs: pd.DataFrame) -> float:
    """What closing everything would fetch: longs at the bid, shorts at the ask."""
    q = legs["quantity"].to_numpy(float)
    px = np.where(q > 0, legs["bid"].to_numpy(float), legs["ask"].to_numpy(float))
    return float(np.sum(q * px * legs["multiplier"].to_numpy(float)))


# ---- one day --------------------------------------------------------------------------------

@dataclass
class DayResult:
    legs: pd.DataFrame  # open legs at today's close (LEG_COLUMNS)
    trades: pd.DataFrame  # today's fills and settlements (TRADE_COLUMNS)
    account: dict  # one row of books/account


class _Day:
    """The working state of one mode during one day: legs, cash and the day's trades."""

    def __init__(self, state: ModeState, day: MarketDay, cfg: BookConfig, quotes: pd.DataFrame) -> None:
        self.state, self.day, self.cfg, self.quotes = state, day, cfg, quotes
        self.mode = state.mode
        self.legs = state.legs.copy()
        self.cash = state.cash
        self.sleeve_cash = dict(state.sleeve_cash)
        self.trades: list[pd.DataFrame] = []
        self.events: list[str] = []
        self.last_condor_expiry = state.last_condor_expiry
        self.hedge_month = state.last_hedge_spend_month
        self.hedge_budget_left = state.hedge_budget_left

    # every cash movement goes through here, so sleeve P&L and the account agree
    def book_trades(self, t: pd.DataFrame) -> None:
        if not len(t):
            return
        self.trades.append(t)
        self.cash += float(t["cash_flow"].sum())
        for book, flow in t.groupby("book")["cash_flow"].sum().items():
            self.sleeve_cash[sleeve_of(book)] += float(flow)

    def close(self, mask: np.ndarray, reason: str) -> None:
        if not mask.any():
            return
        closing = self.legs[mask]
        self.book_trades(trade_rows(closing, -closing["quantity"].to_numpy(float), self.day, self.mode, reason,
                                    self.cfg))
        self.legs = self.legs[~mask].reset_index(drop=True)

    def open(self, new: pd.DataFrame, reason: str) -> None:
        if not len(new):
            return
        opt = (new["kind"] == "option").to_numpy() & new["underlying"].isna().to_numpy()
        if opt.any():  # the level each option's greeks were taken against, from the day's quotes
            keys = ["instrument", "expiry", "strike", "right"]
            level = new.loc[opt, keys].merge(self.quotes[keys + ["underlying_level"]], on=keys, how="left")
            new = new.copy()
            new.loc[opt, "underlying"] = level["underlying_level"].to_numpy(float)
        self.book_trades(trade_rows(new, new["quantity"].to_numpy(float), self.day, self.mode, reason, self.cfg))
        self.legs = pd.concat([self.legs, new], ignore_index=True) if len(self.legs) else new.reset_index(drop=True)

    def equity(self) -> float:
        return self.cash + float(mark_value(self.legs).sum()) if len(self.legs) else self.cash


def step(state: ModeState, day: MarketDay, cfg: BookConfig, quotes: pd.DataFrame | None = None) -> tuple[ModeState,
                                                                                                          DayResult]:
    """Day t for one mode, from the state at t-1's close (module doc for the order of events)."""
    quotes = _option_quotes(day) if quotes is None else quotes
    d = _Day(state, day, cfg, quotes)
    interest = d.cash * day.rate * day.days_since_previous / 360.0  # T-bill on the cash balance, actual/360
    d.cash += interest

    _settle_expiries(d)
    d.legs = mark_legs(d.legs, day, quotes)
    margin_call_cut = _cut_for_margin_call(d) if state.margin_call > 0 else 0.0
    _condor_exits(d)
    _hedge_rolls(d)

    equity_open = d.equity()
    weights = alloc.mode_weights(state.sleeve_returns, day.date, state.mode, window=cfg.allocation_window,
                                 hedge_floor=cfg.promoter_hedge_floor)
    capital = {s: weights[s] * max(equity_open, 0.0) for s in alloc.SLEEVES}
    _statarb(d, capital["statarb"])
    _open_condor(d, capital["condor"])
    _open_hedge(d, capital["hedge"], weights["hedge"])
    _enforce_sizing_rule(d)

    # the lake's row order: a state restored from the lake sums in the same order (bit-identical runs)
    legs = d.legs.sort_values(list(LEG_SORT), kind="stable").reset_index(drop=True)
    if len(legs):
        legs["vx_equivalent"] = vx_equivalent(legs)
        legs["beta_to_vix"] = np.where(legs["vx_equivalent"] > 0, _leg_beta(legs, day), np.nan)
        legs["date"] = day.date
    equity = d.equity()
    components = margin_components(legs, day)
    requirement = float(sum(components.values()))
    margin_call = max(requirement - equity, 0.0) if len(legs) else 0.0
    if margin_call > 0:
        d.events.append(f"margin call: equity {equity:,.0f} below maintenance {requirement:,.0f}")

    # sleeve P&L: change in (cumulative sleeve cash flows + sleeve marks) since yesterday
    values = {s: d.sleeve_cash[s] for s in alloc.SLEEVES}
    if len(legs):
        for book, v in mark_value(legs).groupby(legs["book"]).sum().items():
            values[sleeve_of(book)] += float(v)
    pnl = {s: values[s] - state.sleeve_value.get(s, 0.0) for s in alloc.SLEEVES}
    prev_capital = {s: state.weights.get(s, np.nan) * (state.cash + float(mark_value(state.legs).sum())
                                                        if len(state.legs) else state.cash) for s in alloc.SLEEVES}
    # a sleeve that held nothing at yesterday's close has no return (NaN), not 0: a flat sleeve's
    # zero variance and zero Sharpe would otherwise lock its weight at 0 (or at everything) for good
    held = {sleeve_of(b) for b in state.legs["book"].unique()} if len(state.legs) else set()
    returns = {s: pnl[s] / prev_capital[s] if s in held and prev_capital[s] and np.isfinite(prev_capital[s])
               else np.nan for s in alloc.SLEEVES}
    history = pd.concat([state.sleeve_returns, pd.DataFrame([returns], index=[day.date])])
    history = history.iloc[-(cfg.allocation_window + 5):]

    trades = pd.concat(d.trades, ignore_index=True) if d.trades else empty_trades()
    cml = condor_max_loss(legs)
    vxd = vx_delta_dollars(legs, day, cfg)
    account = {
        "date": day.date, "mode": state.mode, "cash": d.cash, "equity": equity,
        "liquidation_equity": d.cash + (liquidation_value(legs) if len(legs) else 0.0),
        "margin_requirement": requirement, **{f"margin_{k}": v for k, v in components.items()},
        "margin_call": margin_call > 0, "margin_call_size": margin_call,
        # the VIX-futures leg alone causes the call: without its requirement there would be none
        "margin_call_vx_alone": bool(margin_call > 0 and components["vx"] >= margin_call),
        "margin_call_cut": margin_call_cut, "interest": interest,
        "spread_costs": float(trades["spread_cost"].sum()), "fees": float(trades["fee"].sum()),
        "condor_max_loss": cml, "vx_delta_dollars": vxd, "cap_dollars": cfg.hedge_cap * cml,
        **{f"weight_{s}": weights[s] for s in alloc.SLEEVES},
        **{f"pnl_{s}": pnl[s] for s in alloc.SLEEVES},
        **{f"return_{s}": returns[s] for s in alloc.SLEEVES},
        **{f"sleeve_cash_{s}": d.sleeve_cash[s] for s in alloc.SLEEVES},
        **{f"sleeve_value_{s}": values[s] for s in alloc.SLEEVES},
        "hedge_budget_left": d.hedge_budget_left, "hedge_budget_month": d.hedge_month,
        "last_condor_expiry": d.last_condor_expiry,
        "events": "; ".join(d.events), "provenance": day.provenance,
    }
    new_state = ModeState(state.mode, d.cash, legs, d.sleeve_cash, values, history, weights, margin_call,
                          d.last_condor_expiry, d.hedge_month, d.hedge_budget_left)
    return new_state, DayResult(legs[LEG_COLUMNS] if len(legs) else empty_legs(), trades, account)


def _settle_expiries(d: _Day) -> None:
    if not len(d.legs):
        return
    exp = pd.to_datetime(d.legs["expiry"])
    mask = (exp <= d.day.date).to_numpy() & d.legs["kind"].isin(["option", "future"]).to_numpy()
    if not mask.any():
        return
    expiring = d.legs[mask]
    value, source = settlement_values(expiring, d.day)
    rows = []
    for src in np.unique(source):
        sel = source == src
        rows.append(settle_rows(expiring[sel], value[sel], d.day, d.mode, str(src), d.cfg))
    for t in rows:
        d.book_trades(t)
    d.legs = d.legs[~mask].reset_index(drop=True)


def _cut_for_margin_call(d: _Day) -> float:
    """Yesterday's close left equity below maintenance: today, close whole groups at bid/ask in
    the order the method fears most (VX futures and synthetic futures, then stat-arb, then the
    condors, then the rest) until the requirement released covers the shortfall."""
    shortfall = d.state.margin_call
    released = 0.0
    before = margin_requirement(d.legs, d.day)
    for group in (("L2", "synthetic"), ("statarb",), ("condor",), ("L1", "L3")):
        if released >= shortfall or not len(d.legs):
            break
        mask = d.legs["layer"].isin(group).to_numpy()
        if not mask.any():
            continue
        d.close(mask, "margin call")
        released = before - margin_requirement(d.legs, d.day)
    d.events.append(f"margin call cut: shortfall {shortfall:,.0f}, requirement released {released:,.0f}")
    return released


def _condor_exits(d: _Day) -> None:
    c = d.legs[d.legs["book"] == "condor"]
    if not len(c):
        return
    q = c["quantity"].to_numpy(float)
    # buying back the shorts at the ask, selling the longs at the bid, per condor
    close_px = np.where(q < 0, c["ask"].to_numpy(float), -c["bid"].to_numpy(float))
    per = pd.DataFrame({"pid": c["position_id"].to_numpy(), "cost": close_px,
                        "credit": c["credit"].to_numpy(float),
                        "dte": (pd.to_datetime(c["expiry"]) - d.day.date).dt.days.to_numpy()})
    pos = per.groupby("pid").agg(cost=("cost", "sum"), credit=("credit", "first"), dte=("dte", "min"))
    reason = condor.exit_reason(pos["credit"].to_numpy(), pos["cost"].to_numpy(), pos["dte"].to_numpy(),
                                d.cfg.condor_rules)
    for why in ("take_profit", "stop_loss", "dte"):
        pids = pos.index[reason == why]
        if len(pids):
            d.close(d.legs["position_id"].isin(pids).to_numpy(), f"condor {why}")


def _hedge_rolls(d: _Day) -> None:
    """Time-shifting: L1 rolls at <= l1_roll_dte, L3 at <= l3_roll_dte, L2 / synthetic when the
    long month has become the front month (the new position is opened by `_open_hedge`)."""
    if not len(d.legs):
        return
    r = d.cfg.ladder_rules
    dte = (pd.to_datetime(d.legs["expiry"]) - d.day.date).dt.days.to_numpy()
    layer = d.legs["layer"].to_numpy()
    d.close((layer == "L1") & (dte <= r.l1_roll_dte), "L1 roll (time-shift)")
    layer = d.legs["layer"].to_numpy()
    dte = (pd.to_datetime(d.legs["expiry"]) - d.day.date).dt.days.to_numpy()
    d.close((layer == "L3") & (dte <= r.l3_roll_dte), "L3 roll")
    front = pd.to_datetime(d.day.futures.loc[d.day.futures["month_index"] == 1, "expiry"])
    if len(front) and len(d.legs):
        front_expiry = front.iloc[0]
        spreads = d.legs[d.legs["layer"].isin(["L2", "synthetic"])]
        long_legs = spreads[(spreads["quantity"] > 0) & ((spreads["kind"] == "future") | (spreads["right"] == "C"))]
        rolling = long_legs.loc[pd.to_datetime(long_legs["expiry"]) <= front_expiry, "position_id"].unique()
        if len(rolling):
            d.close(d.legs["position_id"].isin(rolling).to_numpy(), "L2 roll: long month is now the front")


def _statarb(d: _Day, capital: float) -> None:
    """Pairs from today's signals: closes on exit / stop / broken cointegration, opens on entry
    (dollar-neutral, volatility-sized, scaled by conviction: `core.statarb_book`); held pairs are
    not rebalanced day to day (each trade pays the spread)."""
    sig = d.day.statarb
    held = d.legs[d.legs["book"] == "statarb"]
    open_pairs = _open_pairs(held)
    if not len(sig) and not len(open_pairs):
        return
    prices = d.day.equities.set_index("symbol")["close"]
    targets = sab.pair_targets(sig, open_pairs, prices, d.day.equity_vols, capital, d.cfg.statarb_rules)
    if not len(targets):
        return
    pid = "pair:" + targets["symbol_y"].astype(str) + "|" + targets["symbol_x"].astype(str)
    for action in sorted(set(targets["action_taken"]) - {"open", "hold"}):
        d.close(d.legs["position_id"].isin(pid[targets["action_taken"] == action]).to_numpy(), f"statarb {action}")
    opens = targets[targets["action_taken"] == "open"]
    if not len(opens):
        return
    eq = d.day.equities.set_index("symbol")
    sym = np.concatenate([opens["symbol_y"].to_numpy(), opens["symbol_x"].to_numpy()])
    qty = np.concatenate([opens["qty_y"].to_numpy(float), opens["qty_x"].to_numpy(float)])
    ids = np.concatenate([pid[opens.index].to_numpy(), pid[opens.index].to_numpy()])
    ok = (qty != 0) & pd.Index(sym).isin(eq.index)
    rows = pd.DataFrame({"symbol": sym[ok], "bid": eq["bid"].reindex(sym[ok]).to_numpy(),
                         "ask": eq["ask"].reindex(sym[ok]).to_numpy(), "mid": eq["close"].reindex(sym[ok]).to_numpy(),
                         "option_type": ""})
    new = _new_legs(rows, d.day, d.mode, "statarb", "statarb", "", qty[ok], "", "equity", 1.0)
    new["position_id"] = ids[ok]
    new["instrument"] = sym[ok]
    new["expiry"] = pd.NaT
    d.open(new, "statarb open")


def _open_pairs(held: pd.DataFrame) -> pd.DataFrame:
    cols = ["symbol_y", "symbol_x", "direction", "qty_y", "qty_x"]
    if not len(held):
        return pd.DataFrame(columns=cols)
    rows = []
    for pid, legs in held.groupby("position_id"):
        y, x = pid.split(":", 1)[1].split("|")
        qy = float(legs.loc[legs["instrument"] == y, "quantity"].sum())
        qx = float(legs.loc[legs["instrument"] == x, "quantity"].sum())
        rows.append({"symbol_y": y, "symbol_x": x, "direction": int(np.sign(qy) or -np.sign(qx)), "qty_y": qy,
                     "qty_x": qx})
    return pd.DataFrame(rows, columns=cols)


def _open_condor(d: _Day, capital: float) -> None:
    if (d.legs["book"] == "condor").any() or not len(d.day.spx):
        return
    spx_q = d.quotes[d.quotes["instrument"] == "SPX"]
    legs = condor.select_condor(spx_q, d.cfg.condor_rules)
    if not len(legs):
        return
    expiry = pd.Timestamp(legs["expiry"].iloc[0])
    if d.last_condor_expiry is not None and expiry <= d.last_condor_expiry:
        return  # one condor per monthly expiry: after an early exit the cycle waits for the next month
    credit = condor.condor_credit(legs)
    pw, cw = condor.condor_widths(legs)
    per_condor = condor.max_loss_per_condor(pw, cw, credit)
    if credit <= 0 or per_condor <= 0:
        return
    n = int(np.floor(d.cfg.condor_risk_budget * capital / per_condor))
    if n < 1:
        d.events.append(f"condor skipped: sleeve capital {capital:,.0f} x budget {d.cfg.condor_risk_budget} "
                        f"< one condor's max loss {per_condor:,.0f}")
        return
    headroom = d.equity() - margin_requirement(d.legs, d.day)
    n = min(n, int(np.floor(headroom / max(condor.condor_margin(pw, cw, credit, 1), 1e-9))))
    if n < 1:
        d.events.append("condor skipped: no margin headroom")
        return
    pid = f"condor:{d.day.date:%Y%m%d}:{expiry:%Y%m%d}"
    new = _new_legs(legs.rename(columns={"option_type": "option_type"}), d.day, d.mode, "condor", "condor", pid,
                    legs["side"].to_numpy(float) * n, "SPX", "option", SPX_MULT, credit)
    d.open(new, "condor open")
    d.last_condor_expiry = expiry


def _open_hedge(d: _Day, capital: float, hedge_weight: float) -> None:
    """The ladder's adds for today: adaptive layer weights, the liquidity filter, contango-only
    futures calendars (backwardation shifts the exposure to L1 calls), the second engine when
    futures are blocked or too large for the cap, and a monthly premium budget for options."""
    r, day = d.cfg.ladder_rules, d.day
    month = f"{day.date:%Y-%m}"
    if d.hedge_month != month:
        d.hedge_month, d.hedge_budget_left = month, d.cfg.hedge_spend_per_month * capital
    monthly_budget = d.cfg.hedge_spend_per_month * capital
    liquid, why = alvh.liquidity_ok(day.regime, r)
    if not liquid:
        d.events.append(f"hedge adds blocked by the liquidity filter: {why}")
        return
    w = dict(alvh.layer_weights(day.regime, day.beta_rising, r))
    held = set(d.legs["layer"]) if len(d.legs) else set()
    if not held & {"L2", "synthetic"} and w["L2"] > 0:
        shift = _open_l2(d, w["L2"], hedge_weight)
        if shift:
            d.events.append(shift)
            w["L1"], w["L2"] = w["L1"] + w["L2"], 0.0
    vix_q = d.quotes[d.quotes["instrument"] == "VIX"]
    if "L1" not in held and w["L1"] > 0 and len(vix_q):
        call = alvh.select_l1_call(vix_q, alvh.l1_target_dte(day.beta_rising, r), r)
        _buy_premium(d, call, w["L1"] * monthly_budget, "L1", "VIX", VIX_OPT_MULT)
    spx_q = d.quotes[d.quotes["instrument"] == "SPX"]
    if "L3" not in held and w["L3"] > 0 and len(spx_q):
        put = alvh.select_l3_put(spx_q, r)
        _buy_premium(d, put, w["L3"] * monthly_budget, "L3", "SPX", SPX_MULT)


def _buy_premium(d: _Day, row: pd.DataFrame, budget: float, layer: str, instrument: str, mult: float) -> None:
    if not len(row):
        return
    ask = float(row["ask"].iloc[0])
    n = int(np.floor(min(budget, d.hedge_budget_left) / (ask * mult))) if ask > 0 else 0
    if n < 1:
        return
    new = _new_legs(row, d.day, d.mode, "alvh", layer, f"{layer}:{d.day.date:%Y%m%d}", np.full(len(row), n),
                    instrument, "option", mult)
    d.open(new, f"{layer} open")
    d.hedge_budget_left -= n * ask * mult


def _open_l2(d: _Day, l2_weight: float, hedge_weight: float) -> str:
    """Long M2 / short M4: futures when liquid and small enough for the cap, else the synthetic
    calendar from VIX options (a tenth of a contract per option pair). Returns why the exposure
    moved to L1 instead, or ""."""
    r, day, cfg = d.cfg.ladder_rules, d.day, d.cfg
    fut, reason = alvh.l2_calendar(day.futures, r)
    if reason.startswith("backwardation"):
        return f"L2: {reason}"
    if not len(fut):
        return f"L2 not opened: {reason}" if reason else ""
    target = cfg.hedge_cap * condor_max_loss(d.legs) * min(1.0, 3 * l2_weight) * min(1.0, 3 * hedge_weight)
    if target <= 0:
        return ""
    beta = fut["month_index"].map(day.vx_beta).to_numpy(float)
    beta = np.where(np.isfinite(beta), beta, 1.0 / np.sqrt(fut["month_index"].to_numpy(float)))
    per_spread = float(np.sum(beta)) * vx_multiplier(day.date) * cfg.stress_move_vix_points
    n = int(np.floor(target / per_spread))
    blocked, bwhy = alvh.futures_blocked(day.regime)
    pid = f"L2:{day.date:%Y%m%d}"
    if n >= 1 and not blocked:
        new = _new_legs(fut.assign(mid=fut["settle"]), day, d.mode, "alvh", "L2", pid,
                        fut["side"].to_numpy(float) * n, "VX", "future", vx_multiplier(day.date))
        d.open(new, "L2 open")
        return ""
    vix_q = d.quotes[d.quotes["instrument"] == "VIX"]
    legs, report = alvh.synthetic_calendar(vix_q, day.futures, r)
    errors = int(report["data_error"].sum()) if len(report) else 0
    if errors:
        d.events.append(f"second engine: {errors} parity deviation(s) beyond costs reported as data errors")
    n_syn = int(np.floor(target / (float(np.sum(beta)) * VIX_OPT_MULT * cfg.stress_move_vix_points)))
    if len(legs) == 4 and n_syn >= 1:
        new = _new_legs(legs, day, d.mode, "alvh", "synthetic", f"synthetic:{day.date:%Y%m%d}",
                        legs["side"].to_numpy(float) * n_syn, "VIX", "option", VIX_OPT_MULT)
        d.open(new, "synthetic calendar open (second engine)")
        d.events.append("L2 by the second engine: " + (bwhy if blocked else "a futures spread exceeds the cap"))
    return ""


def _enforce_sizing_rule(d: _Day) -> None:
    """After the day's trades: VIX-futures delta dollars <= cap x condor max loss, cutting L2 /
    synthetic spreads (whole units, at bid/ask) until it holds."""
    if not len(d.legs):
        return
    limit = d.cfg.hedge_cap * condor_max_loss(d.legs)
    total = vx_delta_dollars(d.legs, d.day, d.cfg)
    if total <= limit + 1e-6:
        return
    spreads = d.legs[d.legs["layer"].isin(["L2", "synthetic"])]
    for pid, pos in spreads.groupby("position_id"):
        units = float(pos["quantity"].abs().max())
        dollars = vx_delta_dollars(pos, d.day, d.cfg)
        others = total - dollars
        per_unit = dollars / units
        keep = max(int(np.floor((limit - others) / per_unit + 1e-9)), 0) if per_unit > 0 else int(units)
        keep = min(keep, int(units))
        if keep < units:
            _reduce(d, pid, keep / units, f"sizing rule: cut to {keep} of {int(units)}")
            total = others + per_unit * keep
        if total <= limit + 1e-6:
            break


def _reduce(d: _Day, pid: str, keep_fraction: float, reason: str) -> None:
    mask = (d.legs["position_id"] == pid).to_numpy()
    legs = d.legs[mask]
    change = -legs["quantity"].to_numpy(float) * (1.0 - keep_fraction)
    d.book_trades(trade_rows(legs, change, d.day, d.mode, reason, d.cfg))
    d.legs.loc[mask, "quantity"] = legs["quantity"].to_numpy(float) + change
    d.legs = d.legs[d.legs["quantity"] != 0].reset_index(drop=True)


# ---- the run --------------------------------------------------------------------------------

VOL_WINDOW = 60  # sessions of returns behind each stock's volatility
BETA_WINDOW = 60  # sessions behind each VX month's beta to spot VIX
BETA_TREND_LAG = 21  # "rising" CAPM beta: today's universe mean above its value a month ago
HISTORY_SESSIONS = max(VOL_WINDOW, BETA_WINDOW, BETA_TREND_LAG) + 5  # validated / feature look-back the books read


def _provenance(parts: dict[str, pd.DataFrame]) -> str:
    """Where the day's numbers come from, per input: e.g. 'index=real futures=real options=model'."""
    labels = []
    for name, frame in parts.items():
        if len(frame) and "provenance" in frame:
            labels.append(f"{name}={'+'.join(sorted(set(frame['provenance'].astype(str))))}")
    return " ".join(labels)


def market_days(frames: dict[str, pd.DataFrame], dates: pd.DatetimeIndex) -> list[MarketDay]:
    """Per-day inputs from multi-day frames (each may start before `dates[0]` for look-backs).
    frames: spx_options, vix_options, vix_futures, index_levels, equity_bars, rates (validated),
    regime, statarb (signals), fundamentals (features)."""
    by = {name: _by_date(f) for name, f in frames.items()}
    idx = frames["index_levels"].assign(date=lambda x: pd.to_datetime(x["date"]))
    levels = {k: g.set_index("date")[["open", "close"]] for k, g in idx.groupby("index")}
    vix_close = levels["VIX"]["close"].sort_index()
    betas = alvh.vx_beta_to_spot(frames["vix_futures"], vix_close, window=BETA_WINDOW)
    betas = betas.assign(date=pd.to_datetime(betas["date"]))
    beta_by_day = {d: g.set_index("month_index")["beta"] for d, g in betas.groupby("date")}
    eq = frames["equity_bars"].assign(date=lambda x: pd.to_datetime(x["date"]))
    closes = eq.pivot(index="date", columns="symbol", values="close").sort_index()
    vols = trailing_std(np.log(closes).diff(), VOL_WINDOW, min_periods=20)
    fund = frames["fundamentals"].assign(date=lambda x: pd.to_datetime(x["date"]))
    mean_beta = fund.groupby("date")["capm_beta_60d"].mean().sort_index()
    rising = mean_beta > mean_beta.shift(BETA_TREND_LAG)
    rates = frames["rates"].assign(date=lambda x: pd.to_datetime(x["date"])).set_index("date")["tbill_3m"]
    sessions = closes.index
    out = []
    for date in dates:  # the per-day views only; nothing here reads past `date`
        pos = sessions.get_indexer([date])[0]
        prev = sessions[pos - 1] if pos > 0 else date - pd.Timedelta(days=1)
        regime = by["regime"].get(date)
        parts = {name: by[name].get(date, frames[name].iloc[0:0]) for name in
                 ("spx_options", "vix_options", "vix_futures", "index_levels")}
        out.append(MarketDay(
            date=date, spx=parts["spx_options"], vix=parts["vix_options"], futures=parts["vix_futures"],
            spx_open=float(levels["SPX"].at[date, "open"]), spx_close=float(levels["SPX"].at[date, "close"]),
            vix_open=float(levels["VIX"].at[date, "open"]), vix_close=float(levels["VIX"].at[date, "close"]),
            rate=float(rates.get(date, 0.0)),
            regime=regime.iloc[0] if regime is not None and len(regime) else pd.Series(dtype=object),
            statarb=by["statarb"].get(date, frames["statarb"].iloc[0:0]),
            equities=by["equity_bars"].get(date, frames["equity_bars"].iloc[0:0]),
            equity_vols=vols.loc[date] if date in vols.index else pd.Series(dtype=float),
            vx_beta=beta_by_day.get(date, pd.Series(dtype=float)),
            beta_rising=bool(rising.get(date, False)),
            provenance=_provenance({"index": parts["index_levels"], "futures": parts["vix_futures"],
                                    "options": pd.concat([parts["spx_options"][["provenance"]],
                                                          parts["vix_options"][["provenance"]]])}),
            days_since_previous=int((date - prev).days),
        ))
    return out


def trailing_std(returns: pd.DataFrame, window: int, min_periods: int) -> pd.DataFrame:
    """Sample std (ddof 1) of each column over the trailing `window` rows, each window computed on
    its own rather than by a running update, so a date's value does not depend on how much earlier
    history the frame holds (a run split in two gives the same books as one run, bit for bit)."""
    arr = np.vstack([np.full((window - 1, returns.shape[1]), np.nan), returns.to_numpy(float)])
    view = np.lib.stride_tricks.sliding_window_view(arr, window, axis=0)
    count = np.isfinite(view).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows are masked below
        std = np.nanstd(view, axis=-1, ddof=1)
    return pd.DataFrame(np.where(count >= min_periods, std, np.nan), index=returns.index, columns=returns.columns)


def _by_date(frame: pd.DataFrame) -> dict[pd.Timestamp, pd.DataFrame]:
    if not len(frame):
        return {}
    dates = pd.to_datetime(frame["date"])
    return {d: g.reset_index(drop=True) for d, g in frame.assign(date=dates).groupby("date", sort=True)}


def state_from_lake(mode: str, legs: pd.DataFrame, account: pd.DataFrame, cfg: BookConfig) -> ModeState:
    """The state at the close of the last day in `account` (its trailing rows give the sleeve
    returns the allocation reads); `legs` = that day's open legs of every book."""
    if not len(account):
        return fresh_state(mode, cfg.account_equity)
    a = account.assign(date=pd.to_datetime(account["date"])).sort_values("date")
    last = a.iloc[-1]
    history = a.set_index("date")[[f"return_{s}" for s in alloc.SLEEVES]]
    history.columns = list(alloc.SLEEVES)
    legs = legs.copy()
    for c in ("date", "expiry", "entry_date"):
        legs[c] = pd.to_datetime(legs[c])
    last_expiry = pd.Timestamp(last["last_condor_expiry"]) if pd.notna(last["last_condor_expiry"]) else None
    legs = legs[LEG_COLUMNS].sort_values(list(LEG_SORT), kind="stable").reset_index(drop=True)
    return ModeState(
        mode, float(last["cash"]), legs,
        {s: float(last[f"sleeve_cash_{s}"]) for s in alloc.SLEEVES},
        {s: float(last[f"sleeve_value_{s}"]) for s in alloc.SLEEVES},
        history.iloc[-(cfg.allocation_window + 5):].astype(float),
        {s: float(last[f"weight_{s}"]) for s in alloc.SLEEVES},
        float(last["margin_call_size"]), last_expiry, str(last["hedge_budget_month"] or ""),
        float(last["hedge_budget_left"]))


def simulate(days: list[MarketDay], states: dict[str, ModeState], cfg: BookConfig
             ) -> tuple[dict[str, ModeState], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Run every mode through `days` in order. Returns the final states and the legs, trades and
    account rows of every day (legs: the book at each day's close)."""
    legs, trades, accounts = [], [], []
    for day in days:
        quotes = _option_quotes(day)  # marked once, shared by the modes
        for mode in cfg.modes:
            states[mode], res = step(states[mode], day, cfg, quotes)
            legs.append(res.legs)
            trades.append(res.trades)
            accounts.append(res.account)
    legs_f = pd.concat([x for x in legs if len(x)], ignore_index=True) if any(len(x) for x in legs) else empty_legs()
    trades_f = pd.concat([x for x in trades if len(x)], ignore_index=True) if any(len(x) for x in trades) \
        else empty_trades()
    return states, legs_f, trades_f, pd.DataFrame(accounts)


def book_greeks(legs: pd.DataFrame) -> pd.DataFrame:
    """Per (date, mode, book): Σ quantity × multiplier × greek over the legs (delta in units of
    the underlying, gamma per point, vega per vol point, theta per day; USD per unit move)."""
    g = ["delta", "gamma", "vega", "theta"]
    scaled = legs[g].mul(legs["quantity"] * legs["multiplier"], axis=0)
    return scaled.groupby([legs["date"], legs["mode"], legs["book"]]).sum().reset_index()
