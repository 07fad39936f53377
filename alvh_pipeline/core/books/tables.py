"""The books' small tables: the leg and trade columns, their row order and dtypes, the contract
multipliers, the empty frames, and `Table` (one numpy array per column, what the legs and trades
are while `simulate` runs) with the sorts and sums that reproduce pandas' to the bit."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

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
# a decision filled at the next session: the leg, its quantity change, why, and whether it opens a
# position ("open") or changes a held leg ("change": a close, a cut)
ORDER_COLUMNS = [*LEG_COLUMNS, "reason", "action"]
TRADE_SORT = ("mode", "book", "position_id", "instrument", "right", "strike", "contract", "reason")
TRADE_COLUMNS = [
    "date", "mode", "book", "layer", "position_id", "instrument", "kind", "right", "strike", "expiry",
    "contract", "quantity", "multiplier", "fill", "mid", "spread_cost", "fee", "cash_flow", "reason",
    "provenance",
]


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
               "provenance", "reason", "action"):
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
