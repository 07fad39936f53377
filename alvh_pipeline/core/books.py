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

Speed. A mode holds a few dozen legs, where pandas' per-operation overhead (~0.1 ms) dwarfs the
arithmetic, so inside `simulate` the legs and trades are `Table`s (one numpy array per column) and
DataFrames are built once per run. The day's quotes are marked once and shared by the modes
(`DayQuotes`), with lookups by key instead of merges; selections that do not depend on the mode
(the condor, the hedge legs) are made once per day. Every number is the same, to the bit, as the
pandas formulation it replaces (sums in the same order, pandas' groupby sum reproduced).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from alvh_pipeline.core import allocation as alloc
from alvh_pipeline.core import alvh, condor
from alvh_pipeline.core import margin as mg
from alvh_pipeline.core import statarb_book as sab
from alvh_pipeline.core.option_marks import mark_greeks, mark_inputs
from alvh_pipeline.core.pricing import black

SPX_MULT = 100.0
VIX_OPT_MULT = 100.0
# VX: $1,000 per VIX point. Before 2007-03-26 the contract was quoted at 10x the index on a $100
# multiplier, which is the same $1,000 per VIX point; the lake holds those settles in VIX points.
VX_MULTIPLIER = 1000.0
DAYS_PER_YEAR = 365.0
BOOKS = ("condor", "statarb", "alvh")
HEDGE_LAYERS = ("L1", "L2", "L3", "synthetic", "static")

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
    hedge_cap: float  # net VX delta dollars <= this x the condor program's notional risk (ALVH ladder)
    stress_move_vix_points: float
    modes: tuple[str, ...]
    condor_risk_per_cycle: float  # a cycle's condors' max loss <= this x the mode's equity
    hedge_spend_per_month: float  # steward's option premium per month, fraction of the hedge sleeve's capital
    spx_option_fee: float
    vix_option_fee: float
    vx_future_fee: float
    equity_fee_per_share: float
    hedge_band: float = 0.25  # hysteresis: re-size L2 when its target moved more than this share
    gross_limit: float = 2.0  # promoter: stat-arb gross notional <= this x equity (Reg-T 2x)
    promoter_vx_share: float = 0.30  # promoter: static long VX notional as a share of equity
    short_borrow_fee: float = 0.005  # a year, on short stock value: proceeds earn the T-bill less this
    allocation_window: int = 63
    condor_rules: condor.CondorRules = field(default_factory=lambda: condor.CNDR_RULES)
    ladder_rules: alvh.LadderRules = field(default_factory=alvh.LadderRules)
    statarb_rules: sab.StatArbRules = field(default_factory=lambda: sab.StatArbRules(max_gross_leverage=1.0))


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
    # VX final settlement values (SOQ) by expiry, real and published, for the expiries whose futures
    # the market's rows hold as real: VIX options and VX futures expiring then settle on them
    vx_final_settlement: dict[pd.Timestamp, float] = field(default_factory=dict)


@dataclass
class ModeState:
    """What carries from one day to the next for one mode (all of it is in the lake)."""

    mode: str
    cash: float
    legs: pd.DataFrame  # open legs (LEG_COLUMNS); a `Table` of them while `simulate` runs
    sleeve_cash: dict[str, float]  # cumulative cash flows per sleeve (for sleeve P&L)
    sleeve_value: dict[str, float]  # yesterday's sleeve value (cash + marks)
    sleeve_returns: pd.DataFrame  # trailing daily sleeve returns (index date, columns SLEEVES)
    weights: dict[str, float]  # yesterday's weights
    margin_call: float = 0.0  # shortfall flagged at yesterday's close, to cut today
    last_condor_expiry: pd.Timestamp | None = None  # one condor per monthly expiry
    last_hedge_spend_month: str = ""  # YYYY-MM of the last premium budget refresh
    hedge_budget_left: float = 0.0
    program_notional: float = 0.0  # the condor program's max loss, kept between cycles (DESIGN §5)
    l2_target: float = 0.0  # the L2 target (net VX delta dollars) at its last re-size (hysteresis)


def fresh_state(mode: str, equity: float) -> ModeState:
    return ModeState(mode, equity, empty_legs(), {s: 0.0 for s in alloc.SLEEVES}, {s: 0.0 for s in alloc.SLEEVES},
                     pd.DataFrame(columns=list(alloc.SLEEVES), dtype=float), {})


_EMPTY: dict[str, pd.DataFrame] = {}  # the empty frames, built once


def empty_legs() -> pd.DataFrame:
    return _empty(LEG_COLUMNS).copy()


def empty_trades() -> pd.DataFrame:
    return _empty(TRADE_COLUMNS).copy()


def _empty(columns: list[str]) -> pd.DataFrame:
    key = ",".join(columns)
    if key not in _EMPTY:
        _EMPTY[key] = pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in columns})
    return _EMPTY[key]


def _dtype(col: str) -> str:
    if col in ("date", "expiry", "entry_date"):
        return "datetime64[ns]"
    if col in ("mode", "book", "layer", "position_id", "instrument", "kind", "right", "contract", "mark_source",
               "provenance", "reason"):
        return "object"
    return "float64"


def sleeve_of(book: str) -> str:
    return {"condor": "condor", "statarb": "statarb", "alvh": "hedge"}[book]


# ---- small tables ---------------------------------------------------------------------------

class Table:
    """A small table as one numpy array per column (LEG_COLUMNS or TRADE_COLUMNS, typed by
    `_dtype`: datetime64[ns], object text, float64). Treated as immutable: a change makes a new
    Table (unchanged columns are shared)."""

    __slots__ = ("cols",)

    def __init__(self, cols: dict[str, np.ndarray]) -> None:
        self.cols = cols

    @classmethod
    def new(cls, columns: list[str], n: int, **values: object) -> Table:
        """`n` rows of `columns` from arrays or scalars (broadcast), each cast to its column's dtype."""
        return cls({c: _column(c, values[c], n) for c in columns})

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, columns: list[str]) -> Table:
        return cls({c: _column(c, frame[c], len(frame)) for c in columns})

    def to_frame(self) -> pd.DataFrame:
        if len(self):
            return pd.DataFrame(self.cols)  # object text columns become pandas' str dtype, as before
        # no rows: pandas cannot infer str from an empty object array (the legs a mode held and closed)
        return pd.DataFrame({c: pd.Series(v, dtype="str") if v.dtype == object else v for c, v in self.cols.items()})

    def __len__(self) -> int:
        return len(next(iter(self.cols.values())))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def __contains__(self, name: str) -> bool:
        return name in self.cols

    def take(self, rows: np.ndarray) -> Table:
        """The rows at a boolean mask or positions."""
        return Table({c: v[rows] for c, v in self.cols.items()})

    def assign(self, **values: object) -> Table:
        n = len(self)
        return Table({**self.cols, **{c: _column(c, v, n) for c, v in values.items()}})

    @staticmethod
    def concat(tables: list[Table]) -> Table:
        return Table({c: np.concatenate([t.cols[c] for t in tables]) for c in tables[0].cols})


def _column(name: str, values: object, n: int) -> np.ndarray:
    dtype = _dtype(name)
    scalar = np.ndim(values) == 0
    if dtype == "object":
        return np.full(n, values, dtype=object) if scalar else np.asarray(values, dtype=object)
    if dtype == "datetime64[ns]":
        if scalar:
            value = pd.Timestamp(values).to_datetime64() if pd.notna(values) else np.datetime64("NaT")
            return np.full(n, value, dtype="datetime64[ns]")
        values = np.asarray(values)
        if values.dtype.kind == "M":
            return values.astype("datetime64[ns]")
        return pd.to_datetime(values).to_numpy("datetime64[ns]")
    return np.full(n, values, dtype=float) if scalar else np.asarray(values, dtype=float)


def _col(legs: Table | pd.DataFrame, name: str, dtype: type | None = None) -> np.ndarray:
    """A column as an array, from a Table or a DataFrame (the public helpers take either)."""
    return np.asarray(legs[name], dtype=dtype)


def _sort(t: Table, keys: Iterable[str]) -> Table:
    """`DataFrame.sort_values(keys, kind="stable")`: ascending, missing values last, ties kept in
    row order (np.lexsort is stable)."""
    if len(t) < 2:
        return t
    return t.take(np.lexsort([_sort_key(t[k]) for k in reversed(list(keys))]))


def _sort_key(values: np.ndarray) -> np.ndarray:
    if values.dtype != object:
        return values  # numbers: numpy sorts NaN last, as pandas does
    missing = pd.isna(values)
    codes = np.full(len(values), 0, dtype=np.intp)
    uniq, codes[~missing] = np.unique(values[~missing], return_inverse=True)
    codes[missing] = len(uniq)
    return codes


def _group_sums(keys: np.ndarray, values: np.ndarray) -> dict[object, float]:
    """`pd.Series(values).groupby(keys).sum()` as {key: sum}, to the bit. pandas (3.1) sums each
    group with np.add.reduceat when the rows come in sorted key order without NaN, else with a
    compensated (Kahan) sum skipping NaN."""
    if not len(values):
        return {}
    uniq, codes = np.unique(keys, return_inverse=True)
    if np.all(codes[1:] >= codes[:-1]) and not np.isnan(values).any():
        sums = np.add.reduceat(values, np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]))
    else:
        sums = [_kahan_sum(values[codes == i]) for i in range(len(uniq))]
    return {k: float(s) for k, s in zip(uniq.tolist(), sums)}


def _kahan_sum(values: np.ndarray) -> float:
    """pandas' groupby sum kernel for one group: Kahan summation, NaN skipped, a NaN compensation
    (an infinite value) reset to 0."""
    total = comp = 0.0
    for v in values.tolist():
        if v != v:
            continue
        y = v - comp
        t = total + y
        comp = (t - total) - y
        if comp != comp:
            comp = 0.0
        total = t
    return total


def _nansum(values: np.ndarray) -> float:
    """`Series.sum()`: NaN skipped, numpy's summation otherwise."""
    return float(np.nansum(values))


# ---- quotes and marks -----------------------------------------------------------------------

class _Chain:
    """One instrument's option chain of the day as arrays aligned with its rows, marked by
    `option_marks` (the columns the books read, as `mark_chain` would give them)."""

    COLUMNS = ("date", "expiry", "strike", "option_type", "bid", "ask", "rate", "mid", "dte", "t", "forward", "iv",
               "delta", "gamma", "vega", "theta", "underlying_level")

    def __init__(self, chain: pd.DataFrame, kind: str) -> None:
        self.n = len(chain)
        self._rows: dict[int, dict[tuple, int]] = {}  # expiry (ns) -> (strike, right) -> first row
        if not self.n:
            self.cols: dict[str, np.ndarray] = {}
            self.call = np.zeros(0, dtype=bool)
            return
        m = mark_inputs(chain, kind)
        # the level each option's delta is taken against: SPX spot, or the VIX option's VX future
        level = chain["underlying"] if kind == "spx" else chain["future_price"]
        self.cols = {
            "date": m["date"], "expiry": m["expiry"],
            "strike": m["strike"], "option_type": chain["option_type"].to_numpy(object),
            "bid": chain["bid"].to_numpy(float), "ask": chain["ask"].to_numpy(float), "rate": m["rate"],
            "mid": m["mid"], "dte": m["dte"], "t": m["t"], "forward": m["forward"], "iv": m["iv"],
            **mark_greeks(m), "underlying_level": level.to_numpy(float),
        }
        self.call = m["call"]  # option_type == "C", as alvh's selections read it

    def find(self, expiry: np.ndarray, strike: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Row of each (expiry, strike, right) (the first, if listed twice); -1 where the chain
        does not list it."""
        keys = list(zip(expiry.astype("datetime64[ns]").view("i8").tolist(), strike.tolist(), right.tolist()))
        return np.array([self._expiry_rows(e).get((k, r), -1) for e, k, r in keys], dtype=np.intp)

    def _expiry_rows(self, expiry: int) -> dict[tuple, int]:
        """(strike, right) -> first row, of one expiry: built for the expiries legs are held on only."""
        if expiry not in self._rows:
            at = np.flatnonzero(self.cols["expiry"].view("i8") == expiry)
            rows: dict[tuple, int] = {}
            for i, key in zip(at.tolist(), zip(self.cols["strike"][at].tolist(),
                                               self.cols["option_type"][at].tolist())):
                rows.setdefault(key, i)
            self._rows[expiry] = rows
        return self._rows[expiry]

    def row(self, i: int | None) -> dict[str, np.ndarray] | None:
        """Row `i` as one-row arrays of COLUMNS (a pick for `_new_legs`); None for no pick."""
        return None if i is None else {c: self.cols[c][[i]] for c in self.COLUMNS}

    def frame(self, rows: np.ndarray | slice = slice(None)) -> pd.DataFrame:
        """Marked rows (in chain order) as the frame the selection functions take."""
        if not self.n:
            return pd.DataFrame(columns=list(self.COLUMNS))
        return pd.DataFrame({c: self.cols[c][rows] for c in self.COLUMNS})

    def frame_within_dte(self, lo: int, hi: int) -> pd.DataFrame:
        """The rows with lo <= dte <= hi: all a selection restricted to that window reads."""
        if not self.n:
            return self.frame()
        dte = self.cols["dte"]
        return self.frame(np.flatnonzero((dte >= lo) & (dte <= hi)))


class _Keyed:
    """A small frame's numeric columns by a key column: `values(keys, column)` is
    `keys.map(frame.set_index(key)[column])` (NaN where a key is not listed)."""

    def __init__(self, frame: pd.DataFrame, key: str, columns: tuple[str, ...]) -> None:
        self.row = {k: i for i, k in enumerate(frame[key].tolist())} if len(frame) else {}
        self.cols = {c: frame[c].to_numpy(float) for c in columns} if len(frame) else {}

    def __contains__(self, key: object) -> bool:
        return key in self.row

    def values(self, keys: np.ndarray, column: str) -> np.ndarray:
        v, row = self.cols.get(column), self.row
        return np.array([v[row[k]] if k in row else np.nan for k in keys.tolist()], dtype=float)


class DayQuotes:
    """What the modes read from the day's quotes, built once and shared by them (`simulate`): the
    marked SPX and VIX chains with a lookup by key, futures by contract / expiry / month, stocks by
    symbol, and memoized selections that do not depend on the mode."""

    def __init__(self, day: MarketDay) -> None:
        self.day = day
        self._chains: dict[str, _Chain] = {}
        self._memo: dict[object, object] = {}
        f = day.futures
        self.futures = _Keyed(f, "contract", ("bid", "ask", "settle", "month_index"))
        self.month_by_expiry = (dict(zip(pd.to_datetime(f["expiry"]).to_numpy("datetime64[ns]").view("i8").tolist(),
                                         f["month_index"].tolist())) if len(f) else {})
        self.beta = dict(zip(day.vx_beta.index.tolist(), day.vx_beta.to_numpy(float).tolist()))
        front = np.flatnonzero(f["month_index"].to_numpy() == 1) if len(f) else []
        self.front_expiry = pd.to_datetime(f["expiry"]).to_numpy("datetime64[ns]")[front[0]] if len(front) else None
        self.stocks = _Keyed(day.equities, "symbol", ("bid", "ask", "close"))

    def chain(self, instrument: str) -> _Chain:
        if instrument not in self._chains:
            self._chains[instrument] = (_Chain(self.day.spx, "spx") if instrument == "SPX"
                                        else _Chain(self.day.vix, "vix") if instrument == "VIX"
                                        else _Chain(self.day.spx.iloc[0:0], "spx"))
        return self._chains[instrument]

    def memo(self, key: object, compute: Callable[[], object]) -> object:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def option_rows(self, legs: Table) -> list[tuple[_Chain, np.ndarray, np.ndarray]]:
        """Per instrument of option `legs`: (its chain, the legs' positions, their chain rows or -1)."""
        out = []
        instrument = legs["instrument"]
        for name in dict.fromkeys(instrument.tolist()):
            at = np.flatnonzero(instrument == name)
            chain = self.chain(name)
            rows = (chain.find(legs["expiry"][at], legs["strike"][at], legs["right"][at]) if chain.n
                    else np.full(len(at), -1, dtype=np.intp))
            out.append((chain, at, rows))
        return out

    def underlying_levels(self, legs: Table) -> np.ndarray:
        """The underlying level of each option leg's quote row (NaN where the chain does not list it)."""
        out = np.full(len(legs), np.nan)
        for chain, at, rows in self.option_rows(legs):
            listed = rows >= 0
            out[at[listed]] = chain.cols["underlying_level"][rows[listed]] if chain.n else np.nan
        return out


MARK_FIELDS = ("bid", "ask", "mid", "delta", "gamma", "vega", "theta", "underlying_level", "iv")
LEG_MARK_FIELDS = ("bid", "ask", "mark", "delta", "gamma", "vega", "theta", "underlying", "iv")


def mark_legs(legs: Table, day: MarketDay, quotes: DayQuotes) -> Table:
    """Today's bid / ask / mark and greeks on every open leg (lookups by key in the day's quotes)."""
    if not len(legs):
        return legs
    cols = {c: legs[c].copy() for c in (*LEG_MARK_FIELDS, "beta_to_vix")}
    source = legs["mark_source"].copy()
    kind = legs["kind"]
    opt = np.flatnonzero(kind == "option")
    if len(opt):
        marks, missing = _option_marks(legs.take(opt), quotes)
        for j, c in enumerate(LEG_MARK_FIELDS):
            cols[c][opt] = marks[:, j]
        source[opt] = np.where(missing, "model", "quote")
    fut = np.flatnonzero(kind == "future")
    if len(fut):
        contract = legs["contract"][fut]
        for c, f in (("bid", "bid"), ("ask", "ask"), ("mark", "settle")):
            cols[c][fut] = quotes.futures.values(contract, f)
        cols["underlying"][fut] = cols["mark"][fut]
        cols["iv"][fut] = np.nan
        month = quotes.futures.values(contract, "month_index")
        cols["beta_to_vix"][fut] = [quotes.beta.get(m, np.nan) for m in month.tolist()]
        _unit_greeks(cols, fut)
        source[fut] = "quote"
    eq = np.flatnonzero(kind == "equity")
    if len(eq):
        symbol = legs["instrument"][eq]
        for c, f in (("bid", "bid"), ("ask", "ask"), ("mark", "close")):
            cols[c][eq] = quotes.stocks.values(symbol, f)
        cols["underlying"][eq] = cols["mark"][eq]
        cols["iv"][eq] = np.nan
        _unit_greeks(cols, eq)
        source[eq] = "quote"
    return legs.assign(date=day.date, mark_source=source, provenance=day.provenance, **cols)


def _unit_greeks(cols: dict[str, np.ndarray], rows: np.ndarray) -> None:
    cols["delta"][rows], cols["gamma"][rows], cols["vega"][rows], cols["theta"][rows] = 1.0, 0.0, 0.0, 0.0


def _option_marks(legs: Table, quotes: DayQuotes) -> tuple[np.ndarray, np.ndarray]:
    """(MARK_FIELDS per option leg, unquoted) from the day's chains; an unquoted strike (no row,
    or no mid) gets `_model_marks`."""
    out = np.full((len(legs), len(MARK_FIELDS)), np.nan)
    for chain, at, rows in quotes.option_rows(legs):
        listed = rows >= 0
        for j, c in enumerate(MARK_FIELDS):
            out[at[listed], j] = chain.cols[c][rows[listed]]
    missing = np.isnan(out[:, MARK_FIELDS.index("mid")])
    for i in np.flatnonzero(missing):  # rare: a handful of legs a year leave the listed range
        out[i] = _model_marks(legs, i, quotes.chain(str(legs["instrument"][i])))
    return out, missing


def _model_marks(legs: Table, i: int, chain: _Chain) -> list[float]:
    """Marks for an option leg whose strike is not quoted today: the same expiry's nearest quoted
    strike's implied vol and half-spread, priced with Black on that expiry's forward."""
    if not chain.n:
        return [np.nan] * len(MARK_FIELDS)
    c = chain.cols
    strike, right = float(legs["strike"][i]), legs["right"][i]
    same = np.flatnonzero((c["expiry"] == legs["expiry"][i]) & (c["option_type"] == right) & np.isfinite(c["iv"]))
    if not len(same):
        return [np.nan] * len(MARK_FIELDS)
    near = same[int(np.argmin(np.abs(c["strike"][same] - strike)))]
    t, forward, iv = float(c["t"][near]), float(c["forward"][near]), float(c["iv"][near])
    disc = float(np.exp(-float(c["rate"][near]) * t))
    mid = float(black(forward, strike, t, iv, disc, right))
    half = 0.5 * float(c["ask"][near] - c["bid"][near])
    intrinsic_delta = 1.0 if right == "C" else -1.0
    delta = intrinsic_delta if (right == "C") == (forward > strike) else 0.0
    return [max(mid - half, 0.0), mid + half, mid, delta, 0.0, 0.0, 0.0, float(c["underlying_level"][near]), iv]


# ---- trades ---------------------------------------------------------------------------------

def _fee(kind: np.ndarray, instrument: np.ndarray, qty: np.ndarray, cfg: BookConfig) -> np.ndarray:
    per = np.select([kind == "future", kind == "equity", instrument == "VIX"],
                    [cfg.vx_future_fee, cfg.equity_fee_per_share, cfg.vix_option_fee], cfg.spx_option_fee)
    return per * np.abs(qty)


def trade_rows(legs: Table, qty: np.ndarray, day: MarketDay, mode: str, reason: str, cfg: BookConfig) -> Table:
    """Fills of `qty` (signed: + buys at ask, - sells at bid) on the instruments of `legs`."""
    qty = np.asarray(qty, dtype=float)
    mid, mult = legs["mark"], legs["multiplier"]
    fill = np.where(qty > 0, legs["ask"], legs["bid"])
    fee = _fee(legs["kind"], legs["instrument"], qty, cfg)
    return Table.new(
        TRADE_COLUMNS, len(legs), date=day.date, mode=mode, book=legs["book"], layer=legs["layer"],
        position_id=legs["position_id"], instrument=legs["instrument"], kind=legs["kind"], right=legs["right"],
        strike=legs["strike"], expiry=legs["expiry"], contract=legs["contract"], quantity=qty, multiplier=mult,
        fill=fill, mid=mid, spread_cost=np.abs(fill - mid) * mult * np.abs(qty), fee=fee,
        cash_flow=-qty * fill * mult - fee, reason=reason, provenance=day.provenance)


def settle_rows(legs: Table, value: np.ndarray, day: MarketDay, mode: str, source: str, cfg: BookConfig) -> Table:
    """Expiry settlements: the position closes at its settlement value, no spread, no fee."""
    t = trade_rows(legs, -legs["quantity"], day, mode, f"expiry ({source})", cfg)
    return t.assign(fill=value, mid=value, spread_cost=0.0, fee=0.0,
                    cash_flow=legs["quantity"] * value * legs["multiplier"])


# ---- settlement -----------------------------------------------------------------------------

def settlement_values(legs: Table, day: MarketDay) -> tuple[np.ndarray, np.ndarray]:
    """(value per unit, source label) of legs expiring on or before today. SPX monthlies are
    AM-settled on the opening quotation (today's SPX open stands in for the SOQ), weeklies
    PM-settled at the close; VIX options and VX futures settle on VIX's opening quotation: the
    published CFE final settlement value where the market holds it (`vx_final_settlement`), else
    today's VIX open stands in for it."""
    spx = _col(legs, "instrument") == "SPX"
    expiry = pd.DatetimeIndex(_col(legs, "expiry"))
    monthly = condor.is_monthly_expiry(expiry)
    final = np.array([day.vx_final_settlement.get(e, np.nan) for e in expiry], dtype=float)
    published = ~spx & np.isfinite(final)
    vix = np.where(published, final, day.vix_open)
    underlying = np.where(spx, np.where(monthly, day.spx_open, day.spx_close), vix)
    source = np.where(spx, np.where(monthly, "SPX open as SOQ proxy", "SPX close"),
                      np.where(published, "CFE final settlement value", "VIX open as SOQ proxy"))
    strike = _col(legs, "strike", float)
    call = _col(legs, "right") == "C"
    intrinsic = np.where(call, np.maximum(underlying - strike, 0.0), np.maximum(strike - underlying, 0.0))
    value = np.where(_col(legs, "kind") == "future", underlying, intrinsic)
    return value, source


# ---- positions ------------------------------------------------------------------------------

def _new_legs(rows: pd.DataFrame | dict, day: MarketDay, mode: str, book: str, layer: str,
              position_id: str | np.ndarray, qty: np.ndarray, instrument: str | np.ndarray, kind: str,
              multiplier: float, credit: float = np.nan) -> Table:
    """New legs from quote rows (a DataFrame or a dict of arrays)."""
    def num(name: str, default: float) -> np.ndarray | float:
        return np.asarray(rows[name], dtype=float) if name in rows else default

    bid, ask = np.asarray(rows["bid"], dtype=float), np.asarray(rows["ask"], dtype=float)
    return Table.new(
        LEG_COLUMNS, len(bid), date=day.date, mode=mode, book=book, layer=layer, position_id=position_id,
        instrument=instrument, kind=kind, right=np.asarray(rows["option_type"]) if "option_type" in rows else "",
        strike=num("strike", np.nan), expiry=rows["expiry"] if "expiry" in rows else pd.NaT,
        contract=np.asarray(rows["contract"]) if "contract" in rows else "", quantity=qty, multiplier=multiplier,
        entry_date=day.date, entry_price=np.where(np.asarray(qty) > 0, ask, bid), credit=credit,
        mark=num("mid", np.nan) if "mid" in rows else num("settle", np.nan), bid=bid, ask=ask,
        delta=num("delta", 1.0), gamma=num("gamma", 0.0), vega=num("vega", 0.0), theta=num("theta", 0.0),
        underlying=_level(rows, kind, len(bid)), iv=num("iv", np.nan), beta_to_vix=np.nan, vx_equivalent=0.0,
        mark_source="quote", provenance=day.provenance)


def _level(rows: pd.DataFrame | dict, kind: str, n: int) -> np.ndarray:
    """The underlying level of new legs: an option's from its quote row when it carries it (else
    filled from the day's quotes when the leg is opened), a future's settle, a stock's close."""
    if "underlying_level" in rows:
        return np.asarray(rows["underlying_level"], dtype=float)
    if kind == "future" and "settle" in rows:
        return np.asarray(rows["settle"], dtype=float)
    if kind == "equity" and "mid" in rows:
        return np.asarray(rows["mid"], dtype=float)
    return np.full(n, np.nan)


HEDGE_VX_LAYERS = ("L2", "synthetic")  # the ALVH ladder's VX exposure: what the sizing rule caps
STATIC_VX_LAYER = "static"  # the promoter's static long VX futures (DESIGN §5), outside the ladder


def vx_equivalent(legs: Table | pd.DataFrame) -> np.ndarray:
    """Signed VX contracts of exposure per leg: a future counts quantity x its multiplier / $1,000;
    a synthetic future (long call + short put on one strike) counts once, on its call leg, at $100
    per point (a tenth of a contract), with the call's sign; VIX options otherwise count 0."""
    fut = _col(legs, "kind") == "future"
    syn_call = (_col(legs, "layer") == "synthetic") & (_col(legs, "right") == "C")
    q = _col(legs, "quantity", float) * _col(legs, "multiplier", float) / 1000.0
    return np.where(fut | syn_call, q, 0.0)


def vx_delta_dollars(legs: Table | pd.DataFrame, day: MarketDay, cfg: BookConfig,
                     quotes: DayQuotes | None = None, layers: tuple[str, ...] = HEDGE_VX_LAYERS) -> float:
    """The sizing rule's NET VX delta dollars of `layers` (DESIGN §5): |Σ signed VX contracts ×
    $1,000 × that month's beta to spot VIX| × the stress move, so a calendar's legs offset by their
    betas."""
    if not len(legs):
        return 0.0
    mine = np.isin(_col(legs, "layer"), layers)
    if not mine.any():
        return 0.0
    legs = legs.take(mine) if isinstance(legs, Table) else legs[mine]
    eq = vx_equivalent(legs)
    beta = _leg_beta(legs, day, quotes)
    return float(abs(np.sum(eq * beta)) * 1000.0 * cfg.stress_move_vix_points)


def _leg_beta(legs: Table | pd.DataFrame, day: MarketDay, quotes: DayQuotes | None = None) -> np.ndarray:
    """Beta to spot VIX of the VX month each leg's exposure is on (futures by contract, synthetic
    legs by the future with their expiry)."""
    q = quotes if quotes is not None else DayQuotes(day)
    month = q.futures.values(_col(legs, "contract"), "month_index")
    expiry = _col(legs, "expiry")
    if expiry.dtype != np.dtype("datetime64[ns]"):  # a Table's already is
        expiry = pd.to_datetime(expiry).to_numpy("datetime64[ns]")
    expiry = expiry.view("i8")
    by_expiry = np.array([q.month_by_expiry.get(e, np.nan) for e in expiry.tolist()], dtype=float)
    month = np.where(np.isnan(month), by_expiry, month)
    beta = np.array([q.beta.get(m, np.nan) for m in month.tolist()], dtype=float)
    fallback = 1.0 / np.sqrt(np.maximum(month, 1.0))  # documented: beta decays with maturity
    return np.where(np.isfinite(beta), beta, np.where(np.isfinite(fallback), fallback, 1.0))


def _positions(legs: Table, book: str) -> Iterable[Table]:
    """The legs of each position of `book`, by position id in sorted order (as groupby)."""
    rows = np.flatnonzero(_col(legs, "book") == book)
    pid = legs["position_id"][rows]
    for p in np.unique(pid):
        yield legs.take(rows[pid == p])


def _condor_terms(pos: Table) -> tuple[float, float, float, float]:
    """(put width, call width, credit, contracts) of one condor's legs."""
    k, right = pos["strike"], pos["right"]
    return (float(np.ptp(k[right == "P"])), float(np.ptp(k[right == "C"])), float(pos["credit"][0]),
            float(np.abs(pos["quantity"]).max()))


def condor_max_loss(legs: Table) -> float:
    """Σ over open condors of (max wing width × $100 − credit × $100) × contracts."""
    total = 0.0
    for pos in _positions(legs, "condor"):  # a handful of open condors at most
        pw, cw, credit, n = _condor_terms(pos)
        total += condor.max_loss_per_condor(pw, cw, credit) * n
    return total


def margin_requirement(legs: Table, day: MarketDay) -> float:
    """Maintenance requirement of the whole account (USD): the sum of `margin_components`."""
    return float(sum(margin_components(legs, day).values()))


def margin_components(legs: Table, day: MarketDay) -> dict[str, float]:
    """Maintenance requirement by leg (USD): condors by the Cboe strategy rule; VX futures from the
    dated assumption table with its stress multiplier, plus the short VIX options of synthetic
    futures as naked index options (together: the VIX-futures leg); stocks at Reg-T maintenance
    (25 % long, 30 % short); long options are paid in full (no requirement)."""
    out = {"condor": 0.0, "vx": 0.0, "statarb": 0.0}
    if not len(legs):
        return out
    for pos in _positions(legs, "condor"):
        pw, cw, credit, n = _condor_terms(pos)
        out["condor"] += condor.condor_margin(pw, cw, credit, n)
    kind, qty = legs["kind"], legs["quantity"]
    fut = kind == "future"
    if fut.any():
        contracts = qty[fut]
        spread_pairs = min(contracts[contracts > 0].sum(), -contracts[contracts < 0].sum())
        outright = np.abs(contracts).sum() - 2 * spread_pairs
        stress = mg.vx_stress_multiplier(day.vix_close)
        out["vx"] += mg.vx_margin(day.date, outright, spread_pairs, stress)[1]
    short_opt = (legs["layer"] == "synthetic") & (qty < 0)
    if short_opt.any():
        out["vx"] += float(np.sum(naked_index_option_margin(legs.take(short_opt), day)))
    eq = kind == "equity"
    if eq.any():
        mv = qty[eq] * legs["mark"][eq]
        out["statarb"] += float(0.25 * mv[mv > 0].sum() + 0.30 * -mv[mv < 0].sum())
    return out


def naked_index_option_margin(legs: Table | pd.DataFrame, day: MarketDay) -> np.ndarray:
    """Cboe customer margin of a short index option (DESIGN §9): premium + max(15 % × underlying
    − out-of-the-money amount, 10 % × strike) per unit, × multiplier × contracts."""
    under = np.where(_col(legs, "instrument") == "SPX", day.spx_close, day.vix_close)
    k = _col(legs, "strike", float)
    otm = np.where(_col(legs, "right") == "C", np.maximum(k - under, 0), np.maximum(under - k, 0))
    per = _col(legs, "mark", float) + np.maximum(0.15 * under - otm, 0.10 * k)
    return per * _col(legs, "multiplier", float) * np.abs(_col(legs, "quantity", float))


def mark_value(legs: pd.DataFrame) -> pd.Series:
    """Mark-to-market value of each leg (mid), USD."""
    return legs["quantity"] * legs["multiplier"] * legs["mark"]


def _values(legs: Table) -> np.ndarray:
    """`mark_value` of a Table."""
    return legs["quantity"] * legs["multiplier"] * legs["mark"]


def liquidation_value(legs: Table | pd.DataFrame) -> float:
    """What closing everything would fetch: longs at the bid, shorts at the ask."""
    q = _col(legs, "quantity", float)
    px = np.where(q > 0, _col(legs, "bid", float), _col(legs, "ask", float))
    return float(np.sum(q * px * _col(legs, "multiplier", float)))


# ---- one day --------------------------------------------------------------------------------

@dataclass
class DayResult:
    legs: pd.DataFrame  # open legs at today's close (LEG_COLUMNS)
    trades: pd.DataFrame  # today's fills and settlements (TRADE_COLUMNS)
    account: dict  # one row of books/account


class _Day:
    """The working state of one mode during one day: legs, cash and the day's trades."""

    def __init__(self, state: ModeState, day: MarketDay, cfg: BookConfig, quotes: DayQuotes) -> None:
        self.state, self.day, self.cfg, self.quotes = state, day, cfg, quotes
        self.mode = state.mode
        self.legs: Table = state.legs
        self.cash = state.cash
        self.sleeve_cash = dict(state.sleeve_cash)
        self.trades: list[Table] = []
        self.events: list[str] = []
        self.last_condor_expiry = state.last_condor_expiry
        self.hedge_month = state.last_hedge_spend_month
        self.hedge_budget_left = state.hedge_budget_left
        self.l2_target = state.l2_target

    # every cash movement goes through here, so sleeve P&L and the account agree
    def book_trades(self, t: Table) -> None:
        if not len(t):
            return
        self.trades.append(t)
        self.cash += _nansum(t["cash_flow"])
        for book, flow in _group_sums(t["book"], t["cash_flow"]).items():
            self.sleeve_cash[sleeve_of(book)] += flow

    def close(self, mask: np.ndarray, reason: str) -> None:
        if not mask.any():
            return
        closing = self.legs.take(mask)
        self.book_trades(trade_rows(closing, -closing["quantity"], self.day, self.mode, reason, self.cfg))
        self.legs = self.legs.take(~mask)

    def open(self, new: Table, reason: str) -> None:
        if not len(new):
            return
        opt = (new["kind"] == "option") & np.isnan(new["underlying"])
        if opt.any():  # the level each option's greeks were taken against, from the day's quotes
            level = new["underlying"].copy()
            level[opt] = self.quotes.underlying_levels(new.take(opt))
            new = new.assign(underlying=level)
        self.book_trades(trade_rows(new, new["quantity"], self.day, self.mode, reason, self.cfg))
        self.legs = Table.concat([self.legs, new]) if len(self.legs) else new

    def has(self, column: str, value: str) -> np.ndarray:
        return self.legs[column] == value

    def equity(self) -> float:
        return self.cash + _nansum(_values(self.legs)) if len(self.legs) else self.cash


def step(state: ModeState, day: MarketDay, cfg: BookConfig, quotes: DayQuotes | None = None) -> tuple[ModeState,
                                                                                                      DayResult]:
    """Day t for one mode, from the state at t-1's close (module doc for the order of events)."""
    quotes = DayQuotes(day) if quotes is None else quotes
    new_state, legs, trades, account = _step(_with_table(state), day, cfg, quotes)
    return (_with_frame(new_state),
            DayResult(legs.to_frame() if len(legs) else empty_legs(),
                      trades.to_frame() if trades is not None else empty_trades(), account))


def _with_table(state: ModeState) -> ModeState:
    """The state `_step` works on: legs as a Table, sleeve returns as `_Returns` (when they can be)."""
    if not isinstance(state.legs, Table):
        state = replace(state, legs=Table.from_frame(state.legs, LEG_COLUMNS))
    if isinstance(state.sleeve_returns, pd.DataFrame) and _Returns.fits(state.sleeve_returns):
        state = replace(state, sleeve_returns=_Returns.from_frame(state.sleeve_returns))
    return state


def _with_frame(state: ModeState) -> ModeState:
    if isinstance(state.legs, Table):
        state = replace(state, legs=state.legs.to_frame())
    if isinstance(state.sleeve_returns, _Returns):
        state = replace(state, sleeve_returns=state.sleeve_returns.to_frame())
    return state


class _Returns:
    """Trailing sleeve returns as arrays (dates strictly increasing, one column per SLEEVES): what
    `alloc.mode_weights` selects from a frame, without a frame built and sorted every day."""

    __slots__ = ("dates", "values")

    def __init__(self, dates: np.ndarray, values: np.ndarray) -> None:
        self.dates, self.values = dates, values

    @staticmethod
    def fits(frame: pd.DataFrame) -> bool:
        """Whether `frame` is held as is: the sleeves' columns as floats, dates strictly increasing
        (mode_weights' sort is then a no-op); otherwise the frame is kept and mode_weights reads it."""
        if not all(s in frame and frame[s].dtype == float for s in alloc.SLEEVES):
            return False
        dates = pd.DatetimeIndex(frame.index)
        return dates.is_monotonic_increasing and dates.is_unique and not dates.hasnans

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> _Returns:
        return cls(pd.DatetimeIndex(frame.index).to_numpy("datetime64[ns]"),
                   frame[list(alloc.SLEEVES)].to_numpy(float))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, index=pd.DatetimeIndex(self.dates), columns=list(alloc.SLEEVES))

    def trailing(self, day: pd.Timestamp, window: int, columns: list[int]) -> np.ndarray:
        """mode_weights' rows of `columns`: dated before `day`, the last `window`, those without a NaN."""
        rows = self.values[self.dates < day.to_datetime64()][:, columns]
        rows = rows[max(len(rows) - window, 0):]
        return rows[~np.isnan(rows).any(axis=1)]


_ALLOCATED_COLUMNS = [alloc.SLEEVES.index(s) for s in alloc.ALLOCATED]


def _weights(returns: pd.DataFrame | _Returns, date: pd.Timestamp, mode: str, cfg: BookConfig
             ) -> tuple[dict[str, float], str]:
    """The ALLOCATED sleeves' weights and their basis (prior / erc / sharpe) from the trailing returns."""
    if not isinstance(returns, _Returns):
        returns = _Returns.from_frame(returns.sort_index())
    return alloc.weights_from_history(returns.trailing(date, cfg.allocation_window, _ALLOCATED_COLUMNS), mode)


def _append_returns(history: pd.DataFrame | _Returns, date: pd.Timestamp, returns: dict[str, float],
                    keep: int) -> pd.DataFrame | _Returns:
    """`history` and today's row, the last `keep` rows."""
    if isinstance(history, _Returns) and (not len(history.dates) or date.to_datetime64() > history.dates[-1]):
        row = np.array([[returns[s] for s in alloc.SLEEVES]], dtype=float)
        dates = np.append(history.dates, date.to_datetime64().astype("datetime64[ns]"))
        return _Returns(dates[-keep:], np.vstack([history.values, row])[-keep:])
    if isinstance(history, _Returns):
        history = history.to_frame()
    history = pd.concat([history, pd.DataFrame([returns], index=[date])])
    return history.iloc[-keep:]


def _step(state: ModeState, day: MarketDay, cfg: BookConfig, quotes: DayQuotes
          ) -> tuple[ModeState, Table, Table | None, dict]:
    """`step` on Tables: (new state, legs at the close, the day's trades or None, account row)."""
    d = _Day(state, day, cfg, quotes)
    interest = _interest(d.cash, state.legs, day, cfg)
    d.cash += interest

    _settle_expiries(d)
    d.legs = mark_legs(d.legs, day, quotes)
    margin_call_cut = _cut_for_margin_call(d) if state.margin_call > 0 else 0.0
    _condor_exits(d)
    _hedge_rolls(d)

    equity_open = d.equity()
    allocated, basis = _weights(state.sleeve_returns, day.date, state.mode, cfg)
    weights = _sleeve_weights(allocated, state.mode, cfg)
    _statarb(d, _statarb_capital(allocated, state.mode, max(equity_open, 0.0), cfg))
    _open_condor(d, max(equity_open, 0.0))
    notional = condor_max_loss(d.legs) or state.program_notional  # kept between cycles (DESIGN §5)
    if state.mode == "steward":
        _open_hedge(d, weights["hedge"] * max(equity_open, 0.0), weights["hedge"])
        _resize_l2(d, notional, weights["hedge"])
        _enforce_sizing_rule(d, notional)
    else:
        _static_vx(d, max(equity_open, 0.0))

    # the lake's row order: a state restored from the lake sums in the same order (bit-identical runs)
    legs = _sort(d.legs, LEG_SORT)
    if len(legs):
        vx_eq = vx_equivalent(legs)
        legs = legs.assign(vx_equivalent=vx_eq, beta_to_vix=np.where(vx_eq != 0, _leg_beta(legs, day, quotes), np.nan),
                           date=day.date)
    equity = d.equity()
    components = margin_components(legs, day)
    requirement = float(sum(components.values()))
    margin_call = max(requirement - equity, 0.0) if len(legs) else 0.0
    vx_loss = vx_futures_loss(legs)
    if margin_call > 0:
        d.events.append(f"margin call: equity {equity:,.0f} below maintenance {requirement:,.0f}")

    # sleeve P&L: change in (cumulative sleeve cash flows + sleeve marks) since yesterday
    values = {s: d.sleeve_cash[s] for s in alloc.SLEEVES}
    if len(legs):
        for book, v in _group_sums(legs["book"], _values(legs)).items():
            values[sleeve_of(book)] += v
    pnl = {s: values[s] - state.sleeve_value.get(s, 0.0) for s in alloc.SLEEVES}
    prev_capital = {s: state.weights.get(s, np.nan) * (state.cash + _nansum(_values(state.legs))
                                                        if len(state.legs) else state.cash) for s in alloc.SLEEVES}
    # a sleeve that held nothing at yesterday's close has no return (NaN), not 0: a flat sleeve's
    # zero variance and zero Sharpe would otherwise lock its weight at 0 (or at everything) for good
    held = {sleeve_of(b) for b in np.unique(state.legs["book"])} if len(state.legs) else set()
    returns = {s: pnl[s] / prev_capital[s] if s in held and prev_capital[s] and np.isfinite(prev_capital[s])
               else np.nan for s in alloc.SLEEVES}
    history = _append_returns(state.sleeve_returns, day.date, returns, cfg.allocation_window + 5)

    trades = Table.concat(d.trades) if d.trades else None
    cml = condor_max_loss(legs)
    notional = cml or state.program_notional
    fut = legs["kind"] == "future" if len(legs) else np.zeros(0, dtype=bool)
    account = {
        "date": day.date, "mode": state.mode, "cash": d.cash, "equity": equity,
        "liquidation_equity": d.cash + (liquidation_value(legs) if len(legs) else 0.0),
        "margin_requirement": requirement, **{f"margin_{k}": v for k, v in components.items()},
        "margin_call": margin_call > 0, "margin_call_size": margin_call,
        # DESIGN §5: a call whose shortfall the VX futures leg's loss alone would cause (its loss
        # since the open contracts were bought covers the shortfall)
        "margin_call_vx_alone": bool(margin_call > 0 and vx_loss >= margin_call), "vx_futures_loss": vx_loss,
        "margin_call_cut": margin_call_cut, "interest": interest,
        "spread_costs": _nansum(trades["spread_cost"]) if trades is not None else 0.0,
        "fees": _nansum(trades["fee"]) if trades is not None else 0.0,
        "condor_max_loss": cml, "program_notional": notional,
        "vx_delta_dollars": vx_delta_dollars(legs, day, cfg, quotes),
        "vx_delta_dollars_static": vx_delta_dollars(legs, day, cfg, quotes, (STATIC_VX_LAYER,)),
        "vx_futures_contracts": float(np.abs(legs["quantity"][fut]).sum()) if len(legs) else 0.0,
        "cap_dollars": cfg.hedge_cap * notional, "l2_target_dollars": d.l2_target,
        "allocation_basis": basis,
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
                          d.last_condor_expiry, d.hedge_month, d.hedge_budget_left, notional, d.l2_target)
    return new_state, legs, trades, account


def _interest(cash: float, legs: Table, day: MarketDay, cfg: BookConfig) -> float:
    """A day's interest, actual/360: the T-bill on the cash balance (short-sale proceeds included),
    less the borrow fee on the short stock's value at yesterday's marks, so the proceeds earn the
    T-bill minus the fee, not the full rate. The books carry a future at its notional (cash paid at
    the fill, value marked); a future needs no financing, so that notional is added back."""
    accrual = day.days_since_previous / 360.0
    short_value = futures_notional = 0.0
    if len(legs):
        eq = (legs["kind"] == "equity") & (legs["quantity"] < 0)
        short_value = float(-np.sum(legs["quantity"][eq] * legs["mark"][eq]))
        fut = legs["kind"] == "future"
        futures_notional = float(np.sum(legs["quantity"][fut] * legs["multiplier"][fut] * legs["mark"][fut]))
    return (cash + futures_notional) * day.rate * accrual - cfg.short_borrow_fee * short_value * accrual


def _sleeve_weights(allocated: dict[str, float], mode: str, cfg: BookConfig) -> dict[str, float]:
    """The account's sleeve weights: the allocated pair, and the condor program's equity at risk.
    The promoter's hedge weight is its static VX notional share (what its hedge returns are per)."""
    hedge = allocated["hedge"] if mode == "steward" else cfg.promoter_vx_share
    return {"statarb": allocated["statarb"], "condor": cfg.condor_risk_per_cycle, "hedge": hedge}


def _statarb_capital(allocated: dict[str, float], mode: str, equity: float, cfg: BookConfig) -> float:
    """What the pairs are sized on (their gross is capped at 1x it, `BookConfig.statarb_rules`):
    the steward's ERC share of equity, unlevered; the promoter's Sharpe share levered to the gross limit."""
    leverage = 1.0 if mode == "steward" else cfg.gross_limit
    return allocated["statarb"] * leverage * equity


def vx_futures_loss(legs: Table | pd.DataFrame) -> float:
    """The open VX futures' loss since they were bought or sold (entry price to today's mark), USD;
    negative when they gain."""
    if not len(legs):
        return 0.0
    fut = _col(legs, "kind") == "future"
    q, mult = _col(legs, "quantity", float)[fut], _col(legs, "multiplier", float)[fut]
    return float(np.sum(q * mult * (_col(legs, "entry_price", float)[fut] - _col(legs, "mark", float)[fut])))


def _days_to_expiry(legs: Table, date: pd.Timestamp) -> np.ndarray:
    """Whole calendar days from `date` to each leg's expiry (`.dt.days`); NaN without an expiry."""
    return np.floor((legs["expiry"] - date.to_datetime64()) / np.timedelta64(1, "D"))


def _settle_expiries(d: _Day) -> None:
    if not len(d.legs):
        return
    mask = (d.legs["expiry"] <= d.day.date.to_datetime64()) & np.isin(d.legs["kind"], ["option", "future"])
    if not mask.any():
        return
    expiring = d.legs.take(mask)
    value, source = settlement_values(expiring, d.day)
    rows = []
    for src in np.unique(source):
        sel = source == src
        rows.append(settle_rows(expiring.take(sel), value[sel], d.day, d.mode, str(src), d.cfg))
    for t in rows:
        d.book_trades(t)
    d.legs = d.legs.take(~mask)


def _cut_for_margin_call(d: _Day) -> float:
    """Yesterday's close left equity below maintenance: today, close whole groups at bid/ask in
    the order the method fears most (VX futures and synthetic futures, then stat-arb, then the
    condors, then the rest) until the requirement released covers the shortfall."""
    shortfall = d.state.margin_call
    released = 0.0
    before = margin_requirement(d.legs, d.day)
    for group in ((*HEDGE_VX_LAYERS, STATIC_VX_LAYER), ("statarb",), ("condor",), ("L1", "L3")):
        if released >= shortfall or not len(d.legs):
            break
        mask = np.isin(d.legs["layer"], group)
        if not mask.any():
            continue
        d.close(mask, "margin call")
        released = before - margin_requirement(d.legs, d.day)
    d.events.append(f"margin call cut: shortfall {shortfall:,.0f}, requirement released {released:,.0f}")
    return released


def _condor_exits(d: _Day) -> None:
    rows = np.flatnonzero(d.has("book", "condor"))
    if not len(rows):
        return
    c = d.legs.take(rows)
    if d.cfg.condor_rules.held_to_expiry:
        return
    # the triggers read the cost to close at mid (DESIGN §5): a spread that widens alone does not
    # stop a condor out; the close itself fills at bid/ask (`_Day.close`)
    close_px = -np.sign(c["quantity"]) * c["mark"]
    dte = _days_to_expiry(c, d.day.date)
    pids = np.unique(c["position_id"])
    cost = _group_sums(c["position_id"], close_px)
    credit = [_first_valid(c["credit"][c["position_id"] == p]) for p in pids]
    min_dte = [dte[c["position_id"] == p].min() for p in pids]
    reason = condor.exit_reason(np.array(credit), np.array([cost[p] for p in pids]), np.array(min_dte),
                                d.cfg.condor_rules)
    for why in ("take_profit", "stop_loss", "dte"):
        closing = set(pids[reason == why].tolist())
        if closing:
            d.close(np.array([p in closing for p in d.legs["position_id"].tolist()], dtype=bool), f"condor {why}")


def _first_valid(values: np.ndarray) -> float:
    """groupby "first": the first non-NaN value, NaN when there is none."""
    ok = values[~np.isnan(values)]
    return float(ok[0]) if len(ok) else np.nan


def _hedge_rolls(d: _Day) -> None:
    """Time-shifting: L1 rolls at <= l1_roll_dte, L3 at <= l3_roll_dte, L2 / synthetic when the
    long month has become the front month (the new position is opened by `_open_hedge`)."""
    if not len(d.legs):
        return
    r = d.cfg.ladder_rules
    d.close(d.has("layer", "L1") & (_days_to_expiry(d.legs, d.day.date) <= r.l1_roll_dte), "L1 roll (time-shift)")
    d.close(d.has("layer", "L3") & (_days_to_expiry(d.legs, d.day.date) <= r.l3_roll_dte), "L3 roll")
    front_expiry = d.quotes.front_expiry
    if front_expiry is not None and len(d.legs):
        legs = d.legs
        long_leg = (np.isin(legs["layer"], [*HEDGE_VX_LAYERS, STATIC_VX_LAYER]) & (legs["quantity"] > 0)
                    & ((legs["kind"] == "future") | (legs["right"] == "C")))
        due = long_leg & (legs["expiry"] <= front_expiry)
        for label, layers in (("L2", HEDGE_VX_LAYERS), ("static VX", (STATIC_VX_LAYER,))):
            rolling = set(legs["position_id"][due & np.isin(legs["layer"], layers)].tolist())
            if rolling:
                d.close(np.array([p in rolling for p in d.legs["position_id"].tolist()], dtype=bool),
                        f"{label} roll: long month is now the front")


def _statarb(d: _Day, capital: float) -> None:
    """Pairs from today's signals: closes on exit / stop / broken cointegration, opens on entry
    (dollar-neutral, volatility-sized, scaled by conviction: `core.statarb_book`); held pairs are
    not rebalanced day to day (each trade pays the spread)."""
    sig, q = d.day.statarb, d.quotes
    pairs = _open_pairs(d.legs.take(d.has("book", "statarb")))
    if not len(sig) and not pairs:
        return
    if not _signals_may_act(q.memo("signals", lambda: _signal_rows(sig)), pairs):
        return
    prices = q.memo("stock closes", lambda: d.day.equities.set_index("symbol")["close"])
    targets = sab.pair_target_arrays(sig, pairs, prices, d.day.equity_vols, capital, d.cfg.statarb_rules)
    if targets is None:  # inputs pair_target_arrays does not take: the frame formulation
        held = pd.DataFrame([{"symbol_y": y, "symbol_x": x, **p} for (y, x), p in pairs.items()],
                            columns=PAIR_COLUMNS)
        t = sab.pair_targets(sig, held, prices, d.day.equity_vols, capital, d.cfg.statarb_rules)
        targets = sab.Targets(t["symbol_y"].tolist(), t["symbol_x"].tolist(),
                              *(t[c].to_numpy(np.int64) for c in ("direction", "qty_y", "qty_x")),
                              t["action_taken"].to_numpy(object))
    if not len(targets.action_taken):
        return
    y, x = targets.symbol_y, targets.symbol_x
    pid = np.array([f"pair:{a}|{b}" for a, b in zip(y, x)], dtype=object)
    action = targets.action_taken
    for taken in sorted(set(action.tolist()) - {"open", "hold"}):
        closing = set(pid[action == taken].tolist())
        d.close(np.array([p in closing for p in d.legs["position_id"].tolist()], dtype=bool), f"statarb {taken}")
    opens = np.flatnonzero(action == "open")
    if not len(opens):
        return
    sym = np.concatenate([np.array(y, dtype=object)[opens], np.array(x, dtype=object)[opens]])
    qty = np.concatenate([targets.qty_y[opens], targets.qty_x[opens]]).astype(float)
    ids = np.concatenate([pid[opens], pid[opens]])
    ok = (qty != 0) & np.array([s in q.stocks for s in sym.tolist()], dtype=bool)
    rows = {c: q.stocks.values(sym[ok], f) for c, f in (("bid", "bid"), ("ask", "ask"), ("mid", "close"))}
    rows["option_type"] = np.full(int(ok.sum()), "", dtype=object)
    d.open(_new_legs(rows, d.day, d.mode, "statarb", "statarb", ids[ok], qty[ok], sym[ok], "equity", 1.0),
           "statarb open")


PAIR_COLUMNS = ["symbol_y", "symbol_x", "direction", "qty_y", "qty_x"]


def _open_pairs(held: Table) -> dict[tuple[str, str], dict]:
    """(symbol_y, symbol_x) -> direction, qty_y, qty_x of each held pair, in position-id order."""
    pairs = {}
    instrument, qty = held["instrument"], held["quantity"]
    for pid in np.unique(held["position_id"]):
        mine = held["position_id"] == pid
        y, x = pid.split(":", 1)[1].split("|")
        qy = _nansum(qty[mine & (instrument == y)])
        qx = _nansum(qty[mine & (instrument == x)])
        pairs[(y, x)] = {"direction": int(np.sign(qy) or -np.sign(qx)), "qty_y": qy, "qty_x": qx}
    return pairs


def _signal_rows(sig: pd.DataFrame) -> list[tuple] | None:
    """((symbol_y, symbol_x), action, direction, selected, p-value) per signal row; None when a pair
    has two rows (pair_targets refuses that day, so it must be called)."""
    keys = list(zip(sig["symbol_y"].astype(str).tolist(), sig["symbol_x"].astype(str).tolist()))
    if len(set(keys)) < len(keys):
        return None
    n = len(sig)
    return list(zip(keys, sig["action"].fillna("none").tolist(), sig["direction"].fillna(0).to_numpy(float).tolist(),
                    sig["selected"].tolist() if "selected" in sig else [True] * n,
                    sig["pvalue"].to_numpy(float).tolist() if "pvalue" in sig else [np.nan] * n))


def _signals_may_act(rows: list[tuple] | None, pairs: dict[tuple[str, str], dict]) -> bool:
    """Whether `sab.pair_targets` could do anything but hold today (its docstring's rules): an
    entry with a direction on a pair not held; or, on a held pair, an exit / stop, an entry the
    other way, or the pair no longer selected or cointegrated (p-value above BROKEN_P). Without
    any, it returns every held pair as "hold" and opens nothing, so the call (~20 ms) is skipped."""
    if rows is None:
        return True
    for key, action, direction, selected, pvalue in rows:
        held = pairs.get(key)
        if held is None:
            if action == "entry" and direction != 0:
                return True
        elif (action in ("exit", "stop") or (action == "entry" and direction != 0 and direction != held["direction"])
              or (not pd.isna(selected) and not bool(selected)) or pvalue > sab.BROKEN_P):
            return True
    return False


def _open_condor(d: _Day, equity: float) -> None:
    """The condor program's entry (the same legs in every mode): on its monthly cycle, as many
    condors as keep the cycle's max loss within `condor_risk_per_cycle` x the mode's equity, and
    within the margin headroom."""
    if d.has("book", "condor").any() or not len(d.day.spx):
        return
    rules, q = d.cfg.condor_rules, d.quotes
    # the expiry a condor would be opened on (select_condor's), known before selecting its strikes
    expiry = q.memo(("condor expiry", rules), lambda: _condor_expiry(q.chain("SPX"), rules))
    if expiry is None:
        return
    if d.last_condor_expiry is not None and expiry <= d.last_condor_expiry:
        return  # one condor per monthly expiry: after an early exit the cycle waits for the next month
    pick = q.memo(("condor", rules), lambda: _condor_pick(q, rules))
    if pick is None:
        return
    legs, expiry, credit, pw, cw = pick
    per_condor = condor.max_loss_per_condor(pw, cw, credit)
    if credit <= 0 or per_condor <= 0:
        return
    n = int(np.floor(d.cfg.condor_risk_per_cycle * equity / per_condor))
    if n < 1:
        d.events.append(f"condor skipped: equity {equity:,.0f} x risk per cycle {d.cfg.condor_risk_per_cycle} "
                        f"< one condor's max loss {per_condor:,.0f}")
        return
    headroom = d.equity() - margin_requirement(d.legs, d.day)
    n = min(n, int(np.floor(headroom / max(condor.condor_margin(pw, cw, credit, 1), 1e-9))))
    if n < 1:
        d.events.append("condor skipped: no margin headroom")
        return
    pid = f"condor:{d.day.date:%Y%m%d}:{expiry:%Y%m%d}"
    new = _new_legs(legs, d.day, d.mode, "condor", "condor", pid, legs["side"].to_numpy(float) * n, "SPX", "option",
                    SPX_MULT, credit)
    d.open(new, "condor open")
    d.last_condor_expiry = expiry


def _condor_expiry(chain: _Chain, rules: condor.CondorRules) -> pd.Timestamp | None:
    """The nearest expiry with min_dte <= dte <= max_dte (monthly only when the rules say so): the
    one `condor.select_condor` opens on, if it finds all four legs."""
    if not chain.n:
        return None
    expiries, first = np.unique(chain.cols["expiry"], return_index=True)
    dte = chain.cols["dte"][first]
    ok = (dte >= rules.min_dte) & (dte <= rules.max_dte)
    if rules.monthly_only:
        ok &= condor.is_monthly_expiry(pd.DatetimeIndex(expiries))
    return pd.Timestamp(expiries[ok].min()) if ok.any() else None


def _condor_pick(quotes: DayQuotes, rules: condor.CondorRules) -> tuple | None:
    """The day's condor (the same for every mode): (legs, expiry, credit, put width, call width)."""
    spx = quotes.chain("SPX").frame_within_dte(rules.min_dte, rules.max_dte)  # all select_condor reads
    legs = condor.select_condor(spx, rules)
    if not len(legs):
        return None
    pw, cw = condor.condor_widths(legs)
    return legs, pd.Timestamp(legs["expiry"].iloc[0]), condor.condor_credit(legs), pw, cw


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
    fut, reason = q.memo(("L2", r), lambda: alvh.l2_calendar(day.futures, r))
    moved = abs(target - d.l2_target) > cfg.hedge_band * max(d.l2_target, 1e-9)
    if not (moved or held == 0.0) or not len(fut) or reason:
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
        _cut_vx_to(d, limit, "sizing rule")


def _cut_vx_to(d: _Day, limit: float, reason: str) -> None:
    """Reduce the ladder's VX spreads, newest first, in whole units, until the net VX delta
    dollars are <= `limit`."""
    spreads = d.legs.take(np.isin(d.legs["layer"], HEDGE_VX_LAYERS))
    for pid in sorted(set(spreads["position_id"].tolist()), key=lambda p: p.split(":", 1)[1], reverse=True):
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
            _reduce(d, pid, keep / units, f"{reason}: cut to {keep} of {int(units)}")


def _reduce(d: _Day, pid: str, keep_fraction: float, reason: str) -> None:
    mask = d.legs["position_id"] == pid
    legs = d.legs.take(mask)
    change = -legs["quantity"] * (1.0 - keep_fraction)
    d.book_trades(trade_rows(legs, change, d.day, d.mode, reason, d.cfg))
    qty = d.legs["quantity"].copy()
    qty[mask] = legs["quantity"] + change
    d.legs = d.legs.assign(quantity=qty)
    d.legs = d.legs.take(d.legs["quantity"] != 0)


# ---- the run --------------------------------------------------------------------------------

VOL_WINDOW = 60  # sessions of returns behind each stock's volatility
BETA_WINDOW = 60  # sessions behind each VX month's beta to spot VIX
BETA_TREND_LAG = 21  # "rising" CAPM beta: today's universe mean above its value a month ago
HISTORY_SESSIONS = max(VOL_WINDOW, BETA_WINDOW, BETA_TREND_LAG) + 5  # validated / feature look-back the books read


def _provenance(parts: dict[str, set[str] | None]) -> str:
    """Where the day's numbers come from, per input: e.g. 'index=real futures=real options=model'
    (`parts`: the provenance labels of each input's rows of the day; None or empty: not shown)."""
    return " ".join(f"{name}={'+'.join(sorted(labels))}" for name, labels in parts.items() if labels)


class _ByDate:
    """A multi-day frame's rows per date (dates as timestamps, rows in their order within a day,
    index reset): one stable sort and a slice per day, rather than a frame per day up front."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.empty = frame.iloc[0:0]
        self.bounds: dict[pd.Timestamp, tuple[int, int]] = {}
        self.rows = frame
        if not len(frame):
            return
        dates = pd.to_datetime(frame["date"])
        values = dates.to_numpy()
        order = np.argsort(values, kind="stable")
        self.rows = frame.assign(date=dates)
        if not np.array_equal(order, np.arange(len(order))):
            self.rows = self.rows.take(order)
        values = values[order]
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
        ends = np.r_[starts[1:], len(values)]
        self.bounds = {pd.Timestamp(values[a]): (a, b) for a, b in zip(starts, ends) if not np.isnat(values[a])}
        self.provenance = (self.rows["provenance"].astype(str).to_numpy(object) if "provenance" in frame
                           else None)

    def get(self, date: pd.Timestamp) -> pd.DataFrame:
        """The day's rows (the frame's first 0 rows when it has none)."""
        if date not in self.bounds:
            return self.empty
        a, b = self.bounds[date]
        return self.rows.iloc[a:b].reset_index(drop=True)

    def labels(self, date: pd.Timestamp) -> set[str] | None:
        """The day's provenance labels (None without rows or a provenance column)."""
        if date not in self.bounds or self.provenance is None:
            return None
        a, b = self.bounds[date]
        return set(self.provenance[a:b].tolist())


def _with_datetime_expiry(chain: pd.DataFrame) -> pd.DataFrame:
    """The chain with `expiry` as datetime64[ns] (the lake gives dates as objects): converted once
    per chunk, from its few distinct values, rather than every row of every day's chain."""
    if not len(chain) or "expiry" not in chain or chain["expiry"].dtype != object:
        return chain
    codes, uniques = pd.factorize(chain["expiry"])
    values = pd.to_datetime(pd.Index(uniques)).to_numpy("datetime64[ns]")
    return chain.assign(expiry=np.where(codes >= 0, values[np.maximum(codes, 0)], np.datetime64("NaT", "ns")))


def market_days(frames: dict[str, pd.DataFrame], dates: pd.DatetimeIndex) -> list[MarketDay]:
    """Per-day inputs from multi-day frames (each may start before `dates[0]` for look-backs).
    frames: spx_options, vix_options, vix_futures, index_levels, equity_bars, rates (validated),
    regime, statarb (signals), fundamentals (features)."""
    frames = {**frames, **{name: _with_datetime_expiry(frames[name]) for name in ("spx_options", "vix_options")}}
    by = {name: _ByDate(frames[name]) for name in ("spx_options", "vix_options", "vix_futures", "index_levels",
                                                    "regime", "statarb", "equity_bars")}
    idx = frames["index_levels"].assign(date=lambda x: pd.to_datetime(x["date"]))
    levels = {k: g.set_index("date")[["open", "close"]] for k, g in idx.groupby("index")}
    vix_close = levels["VIX"]["close"].sort_index()
    betas = alvh.vx_beta_to_spot(frames["vix_futures"], vix_close, window=BETA_WINDOW)
    beta_by_day = _ByDate(betas[pd.to_datetime(betas["date"]).isin(dates)])
    eq = frames["equity_bars"].assign(date=lambda x: pd.to_datetime(x["date"]))
    closes = eq.pivot(index="date", columns="symbol", values="close").sort_index()
    vols = trailing_std(np.log(closes).diff(), VOL_WINDOW, min_periods=20)
    fund = frames["fundamentals"].assign(date=lambda x: pd.to_datetime(x["date"]))
    mean_beta = fund.groupby("date")["capm_beta_60d"].mean().sort_index()
    rising = mean_beta > mean_beta.shift(BETA_TREND_LAG)
    rates = frames["rates"].assign(date=lambda x: pd.to_datetime(x["date"])).set_index("date")["tbill_3m"]
    finals = _real_final_settlements(frames)
    sessions = closes.index
    positions = sessions.get_indexer(dates)
    out = []
    for date, pos in zip(dates, positions):  # the per-day views only; nothing here reads past `date`
        prev = sessions[pos - 1] if pos > 0 else date - pd.Timedelta(days=1)
        regime = by["regime"].get(date)
        beta = beta_by_day.get(date)
        options = [by[name].labels(date) for name in ("spx_options", "vix_options")]
        out.append(MarketDay(
            date=date, spx=by["spx_options"].get(date), vix=by["vix_options"].get(date),
            futures=by["vix_futures"].get(date),
            spx_open=float(levels["SPX"].at[date, "open"]), spx_close=float(levels["SPX"].at[date, "close"]),
            vix_open=float(levels["VIX"].at[date, "open"]), vix_close=float(levels["VIX"].at[date, "close"]),
            rate=float(rates.get(date, 0.0)),
            regime=regime.iloc[0] if len(regime) else pd.Series(dtype=object),
            statarb=by["statarb"].get(date), equities=by["equity_bars"].get(date),
            equity_vols=vols.loc[date] if date in vols.index else pd.Series(dtype=float),
            vx_beta=beta.set_index("month_index")["beta"] if len(beta) else pd.Series(dtype=float),
            beta_rising=bool(rising.get(date, False)),
            provenance=_provenance({"index": by["index_levels"].labels(date),
                                    "futures": by["vix_futures"].labels(date),
                                    "options": set().union(*(o for o in options if o is not None)),
                                    "equities": by["equity_bars"].labels(date)}),
            days_since_previous=int((date - prev).days), vx_final_settlement=finals,
        ))
    return out


def _real_final_settlements(frames: dict[str, pd.DataFrame]) -> dict[pd.Timestamp, float]:
    """`frames["vx_final_settlements"]` (expiry, settle: published CFE values, when a caller has
    them) for the expiries whose futures rows in `frames["vix_futures"]` are real: a model market
    settles on its own VIX, not on history's."""
    finals = frames.get("vx_final_settlements")
    fut = frames["vix_futures"]
    if finals is None or not len(finals) or "provenance" not in fut:
        return {}
    real = set(pd.to_datetime(fut.loc[fut["provenance"].astype(str) == "real", "expiry"]))
    return {e: float(v) for e, v in zip(pd.to_datetime(finals["expiry"]), finals["settle"].to_numpy(float))
            if e in real}


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
        float(last["hedge_budget_left"]), float(last["program_notional"]), float(last["l2_target_dollars"]))


def simulate(days: list[MarketDay], states: dict[str, ModeState], cfg: BookConfig,
             quotes_by_day: list[DayQuotes] | None = None
             ) -> tuple[dict[str, ModeState], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Run every mode through `days` in order. Returns the final states and the legs, trades and
    account rows of every day (legs: the book at each day's close). `quotes_by_day`: the days'
    `DayQuotes` when a caller re-runs the same market under several configurations (their marks
    and memoized selections are keyed by the rules they depend on, so they can be shared)."""
    legs: list[Table] = []
    trades: list[Table] = []
    accounts = []
    running = {mode: _with_table(states[mode]) for mode in cfg.modes}
    for i, day in enumerate(days):
        quotes = DayQuotes(day) if quotes_by_day is None else quotes_by_day[i]  # marked once, shared by the modes
        for mode in cfg.modes:
            running[mode], day_legs, day_trades, account = _step(running[mode], day, cfg, quotes)
            if len(day_legs):
                legs.append(day_legs)
            if day_trades is not None:
                trades.append(day_trades)
            accounts.append(account)
    for mode in cfg.modes:
        states[mode] = _with_frame(running[mode])
    legs_f = Table.concat(legs).to_frame() if legs else empty_legs()
    trades_f = Table.concat(trades).to_frame() if trades else empty_trades()
    return states, legs_f, trades_f, pd.DataFrame(accounts)


def book_greeks(legs: pd.DataFrame) -> pd.DataFrame:
    """Per (date, mode, book): Σ quantity × multiplier × greek over the legs (delta in units of
    the underlying, gamma per point, vega per vol point, theta per day; USD per unit move)."""
    g = ["delta", "gamma", "vega", "theta"]
    scaled = legs[g].mul(legs["quantity"] * legs["multiplier"], axis=0)
    return scaled.groupby([legs["date"], legs["mode"], legs["book"]]).sum().reset_index()
