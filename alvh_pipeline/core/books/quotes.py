"""The day's quotes and the legs' marks: the marked SPX and VIX chains with a lookup by key,
futures by contract / expiry / month and stocks by symbol (`DayQuotes`, built once a day and
shared by the modes), and today's bid / ask / mark and greeks on every open leg (a strike no
longer quoted is marked on the same expiry's nearest-strike implied vol and labelled
`mark_source` = "model")."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from alvh_pipeline.core.books.model import MarketDay
from alvh_pipeline.core.books.tables import Table
from alvh_pipeline.core.option_marks import mark_greeks, mark_inputs
from alvh_pipeline.core.pricing import black

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
