"""Cboe strategy benchmark indexes replicated on an SPX option chain (DESIGN §4 "Benchmarks",
issue 17): the proof that the chains the books trade earn what the real market earned.

Rules (Cboe index methodologies; the sentences quoted are from them, details not found are marked
ASSUMPTION and repeated in the README):

* **CNDR** (S&P 500 Iron Condor): on each roll date "sells a monthly OTM SPX put (delta ≈ -0.20)
  and a monthly OTM SPX call (delta ≈ 0.20), buys a monthly OTM SPX put (delta ≈ -0.05) and a
  monthly OTM SPX call (delta ≈ 0.05)", strikes "with delta closest to" those targets, priced at
  "the average of the last bid-ask quote"; held to expiry, settled against the SOQ. Collateral: "a
  Treasury bill account with initial cash that equals ten times the maximum possible loss of the
  new option positions", the maximum loss being the wider wing: n = V / (10 · max(K_ps - K_pl,
  K_cl - K_cs)) condors per unit of index value V.
* **PUT** (S&P 500 PutWrite): sells the one-month SPX put "closest to but not greater than" the
  index; T-bills equal to the strike (n = V / K, full collateral), the premium added to them.
* **BXM** (S&P 500 BuyWrite): holds the S&P 500 (dividends reinvested) and sells one one-month call
  per unit, strike the "closest listed strike price equal to or greater than" the index.

Common: roll date = the monthly SPX expiry (third Friday, the session before when it is a holiday);
the expiring options settle at the Special Opening Quotation, for which the SPX open of the roll
date stands in (ASSUMPTION: the SOQ is computed from the components' opening prints). In the
shipped arch / Yahoo SPX history the open equals the previous close on most days before 2007
(12 of 12 roll dates in 2004, 10 in 2005, 9 in 2006, 3 in 2007, none from 2008): there the
settlement is in effect Thursday's close. New options
are priced at the chain's mid: Cboe uses the pre-11:00 mid (CNDR) or the 11:30-12:00 VWAP (PUT,
BXM); the project's chains are end-of-day, so the closing mid stands in for both and strikes are
chosen on the closing index (ASSUMPTION). Between rolls the index is marked at mid. Cash accrues
at the T-bill rate, simple, act/360 between consecutive marked days (ASSUMPTION: the 13-week bill
stands in for the 4-week bill, which the project does not hold; Cboe skips the roll day's interest).
Marking fewer sessions (the calibration marks roll dates and month ends) changes only that
compounding: values agree with a daily run to about 1e-4 of the index a year.

Every figure is per unit of index value; a held strike absent from a day's chain (outside the
listed range) is marked at its intrinsic value on the close (counted in `marks_intrinsic`).

Formulas, per day t of the cycle that started on roll date R:
    value_t = cash_t + spx_units_t · S_t + Σ_legs qty_leg · mid_leg,t
    cash_t = cash_{t-1} · (1 + r_{t-1} · days(t-1, t) / 360)
    spx_units_t = spx_units_R · exp(q_year · days(R, t) / 365)         (BXM dividends reinvested)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alvh_pipeline.core import calendar as cal
from alvh_pipeline.core.condor import CondorRules, select_condor
from alvh_pipeline.core.option_marks import mark_chain

__all__ = ["INDEXES", "PUBLISHED_RETURNS", "PUBLISHED_WINDOWS", "SPX_TOTAL_VS_PRICE", "TOLERANCE_PTS",
           "IndexState", "BENCHMARK_COLUMNS", "dividend_yield", "roll_dates", "replicate", "calendar_year_returns",
           "window_return", "compare_to_published", "max_drawdown"]

INDEXES = ("CNDR", "PUT", "BXM")
SLOTS = ("k_put_long", "k_put_short", "k_call_short", "k_call_long")
SLOT_TYPE = ("P", "P", "C", "C")
CNDR_SIGN = np.array([1.0, -1.0, -1.0, 1.0])
# the chain handed to select_condor holds the new monthly expiry only (`held_expiry`)
CNDR_RULES = CondorRules(min_dte=1, max_dte=10_000, short_delta=0.20, wing_delta=0.05, monthly_only=False)
COLLATERAL_MULTIPLE = 10.0  # CNDR: T-bills = 10 x the maximum possible loss
BASE_VALUE = 100.0

#: Calendar-year total returns, %, from Cboe month-end index values (issue 17, which took them from
#: Cboe's published daily index histories, cdn.cboe.com/api/global/us_indices/daily_prices/
#: {CNDR,PUT,BXM}_History.csv). PROVENANCE: real, published.
PUBLISHED_RETURNS = pd.DataFrame(
    {"CNDR": [10.10, 10.02, 13.68, 4.89, -3.99, 12.59, -4.85, 1.74, -3.05, -0.74, -5.23],
     "PUT": [9.48, 6.71, 15.16, 9.51, -26.77, 31.51, 9.02, 6.17, 8.14, 12.28, 6.38],
     "BXM": [8.30, 4.25, 13.33, 6.59, -28.65, 25.91, 5.86, 5.72, 5.20, 13.26, 5.64]},
    index=pd.Index(range(2004, 2015), name="year"))

#: Published figures over windows (issue 17): CNDR 2007-06-29..2009-06-30 and its deepest 2008 fall.
PUBLISHED_WINDOWS = {
    "CNDR_2007-06_2009-06": {"index": "CNDR", "start": "2007-06-29", "end": "2009-06-30", "return_pct": 10.2},
}
CNDR_2008_DRAWDOWN = {"peak": "2008-09-25", "trough": "2008-12-08", "return_pct": -10.6}

#: Calibration years (fit) and the out-of-sample test years: never fit on the latter.
IN_SAMPLE_YEARS = (2004, 2005, 2006, 2010, 2011, 2012, 2013, 2014)
OUT_OF_SAMPLE_YEARS = (2007, 2008, 2009)

#: Targets (issue 17): in-sample MAE per index; out-of-sample error per index-year; windows.
TOLERANCE_PTS = {"in_sample_mae": 2.0, "CNDR": 4.0, "PUT": 5.0, "BXM": 5.0, "window": 5.0}

#: S&P 500 calendar-year total return and price return, % (S&P Dow Jones Indices' published annual
#: figures). The BXM's reinvested dividends: q = ln((1 + TR) / (1 + PR)) per year. PROVENANCE: real.
SPX_TOTAL_VS_PRICE = pd.DataFrame(
    {"total": [10.88, 4.91, 15.79, 5.49, -37.00, 26.46, 15.06, 2.11, 16.00, 32.39, 13.69],
     "price": [8.99, 3.00, 13.62, 3.53, -38.49, 23.45, 12.78, 0.00, 13.41, 29.60, 11.39]},
    index=pd.Index(range(2004, 2015), name="year"))
DEFAULT_DIVIDEND_YIELD = 0.018  # years outside the table (ASSUMPTION; the chains' own forward yield)

BENCHMARK_COLUMNS = ["date", "index", "value", "cash", "rate", "spx_units", "contracts", "expiry", *SLOTS,
                     "option_value", "rolled", "settlement", "premium", "max_loss", "marks_intrinsic"]


def dividend_yield(years: np.ndarray) -> np.ndarray:
    """Continuous S&P 500 dividend yield per calendar year (module doc), 1.8 % outside the table."""
    tab = np.log((1 + SPX_TOTAL_VS_PRICE["total"] / 100) / (1 + SPX_TOTAL_VS_PRICE["price"] / 100))
    return tab.reindex(np.asarray(years)).fillna(DEFAULT_DIVIDEND_YIELD).to_numpy(float)


def roll_dates(start, end) -> pd.DatetimeIndex:
    """Monthly SPX expiries (= the indexes' roll dates) in [start, end]."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    months = np.arange(start.year * 12 + start.month - 1, end.year * 12 + end.month)
    exp = cal.spx_monthly_expiry(months // 12, months % 12 + 1)
    return exp[(exp >= start) & (exp <= end)]


def held_expiry(dates: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The monthly expiry an index holds at the close of each date: the first one strictly after it."""
    d = pd.DatetimeIndex(dates)
    months = d.year * 12 + d.month - 1
    this = cal.spx_monthly_expiry(months // 12, months % 12 + 1)
    nxt = cal.spx_monthly_expiry((months + 1) // 12, (months + 1) % 12 + 1)
    return pd.DatetimeIndex(np.where(this > d, this, nxt))


@dataclass
class IndexState:
    """What an index holds at a close: enough to continue the next day (one row of the layer)."""
    value: float
    cash: float
    spx_units: float
    contracts: float
    expiry: pd.Timestamp | None
    strikes: np.ndarray  # 4 slots (SLOTS), NaN where unused
    date: pd.Timestamp
    rate: float  # the T-bill rate of that close: the cash grows at it into the next marked day
    max_loss: float = float("nan")  # CNDR: the open condors' maximum loss per unit of index value

    @classmethod
    def from_row(cls, row: pd.Series) -> IndexState:
        exp = row["expiry"]
        return cls(float(row["value"]), float(row["cash"]), float(row["spx_units"]), float(row["contracts"]),
                   None if pd.isna(exp) else pd.Timestamp(exp), row[list(SLOTS)].to_numpy(float),
                   pd.Timestamp(row["date"]), float(row["rate"]), float(row["max_loss"]))


def _qty(index: str, contracts: float, strikes: np.ndarray) -> np.ndarray:
    """Signed quantity per slot (short < 0), per unit of index value."""
    sign = {"CNDR": CNDR_SIGN, "PUT": np.array([0.0, -1.0, 0.0, 0.0]), "BXM": np.array([0.0, 0.0, -1.0, 0.0])}[index]
    return np.where(np.isfinite(strikes), sign * contracts, 0.0)


def _intrinsic(strikes: np.ndarray, spot: np.ndarray) -> np.ndarray:
    """(n_days, 4) intrinsic values of the slots at `spot`."""
    k = np.nan_to_num(strikes)[None, :]
    s = np.asarray(spot, dtype=float)[:, None]
    is_call = np.array([t == "C" for t in SLOT_TYPE])[None, :]
    return np.where(is_call, np.maximum(s - k, 0.0), np.maximum(k - s, 0.0))


class ChainGapError(ValueError):
    """A held leg's quote is absent although the day lists its expiry around that strike."""


def _slot_mids(expiry_rows: dict[str, np.ndarray] | None, strikes: np.ndarray, dates: pd.DatetimeIndex,
               spot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n_days, 4) mids of the held slots on `dates` from the chain rows of the held expiry
    (`_by_expiry`), unused slots 0; second array: True where a slot's strike lies outside the
    strikes the day lists for its type, and is marked at its intrinsic value. A day without rows
    of the expiry, or a listed-range strike without a quote, is a data gap: ChainGapError."""
    out = _intrinsic(strikes, spot)
    missing = np.zeros((len(dates), 4), dtype=bool)
    n = len(dates)
    rows = expiry_rows or {"date": np.array([], np.int64), "strike": np.array([]), "is_call": np.array([], bool),
                           "mid": np.array([])}
    day_pos = np.searchsorted(dates.asi8, rows["date"])
    on_day = (day_pos < n) & (dates.asi8[np.minimum(day_pos, n - 1)] == rows["date"])
    for j, (k, t) in enumerate(zip(strikes, SLOT_TYPE)):  # 4 slots
        if not np.isfinite(k):
            out[:, j] = 0.0
            continue
        side = on_day & (rows["is_call"] == (t == "C"))
        lo, hi = np.full(n, np.inf), np.full(n, -np.inf)
        np.minimum.at(lo, day_pos[side], rows["strike"][side])
        np.maximum.at(hi, day_pos[side], rows["strike"][side])
        hit = side & (rows["strike"] == k)
        col = np.full(n, np.nan)
        col[day_pos[hit]] = rows["mid"][hit]
        gap = ~np.isfinite(col) & (((k >= lo) & (k <= hi)) | ~np.isfinite(lo))
        if gap.any():
            raise ChainGapError(f"no quote of the held {t} {k:g} on {len(np.flatnonzero(gap))} session(s), e.g. "
                                f"{dates[gap][0].date()}, while the chain lists that expiry around it")
        missing[:, j] = ~np.isfinite(col)
        out[:, j] = np.where(missing[:, j], out[:, j], col)
    return out, missing


def _by_expiry(chain: pd.DataFrame) -> dict[int, dict[str, np.ndarray]]:
    """Chain rows as arrays per expiry (ns): date (ns), strike, is_call, mid."""
    exp = chain["expiry"].to_numpy("datetime64[ns]").astype(np.int64)
    arrays = {"date": chain["date"].to_numpy("datetime64[ns]").astype(np.int64),
              "strike": chain["strike"].to_numpy(float),
              "is_call": chain["option_type"].astype(str).str.upper().eq("C").to_numpy(),
              "mid": ((chain["bid"] + chain["ask"]) / 2).to_numpy(float)}
    order = np.argsort(exp, kind="stable")
    bounds = np.flatnonzero(np.diff(exp[order])) + 1
    return {int(exp[idx[0]]): {k: v[idx] for k, v in arrays.items()}
            for idx in np.split(order, bounds) if len(idx)}


def _select(index: str, day_chain: pd.DataFrame, spot: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(strikes per slot, mids per slot) of the options sold / bought on a roll date, from that
    date's chain rows of the new expiry; None when the chain cannot supply them."""
    strikes, mids = np.full(4, np.nan), np.zeros(4)
    if day_chain.empty:
        return None
    if index == "CNDR":
        legs = select_condor(mark_chain(day_chain, "spx"), CNDR_RULES)
        if legs.empty:
            return None
        strikes[:] = legs["strike"].to_numpy(float)  # long put, short put, short call, long call
        mids[:] = legs["mid"].to_numpy(float)
        return strikes, mids
    is_put = index == "PUT"
    rows = day_chain[(day_chain["option_type"] == ("P" if is_put else "C")) & (day_chain["bid"] > 0)]
    rows = rows[rows["strike"] <= spot] if is_put else rows[rows["strike"] >= spot]
    if rows.empty:
        return None
    row = rows.loc[rows["strike"].idxmax() if is_put else rows["strike"].idxmin()]
    slot = 1 if is_put else 2
    strikes[slot], mids[slot] = float(row["strike"]), float((row["bid"] + row["ask"]) / 2)
    return strikes, mids


@dataclass
class _Opening:
    """What a cycle holds at its first day's close: the roll's new legs, or a carried-in state."""
    cash: float
    spx_units: float
    contracts: float
    strikes: np.ndarray
    expiry: pd.Timestamp | None
    max_loss: float
    rolled: bool = False
    settlement: float = float("nan")
    premium: float = float("nan")


def _growth(dates: pd.DatetimeIndex, rate: np.ndarray, state: IndexState | None) -> tuple[np.ndarray, np.ndarray]:
    """Per day, the growth of cash (T-bill, simple act/360) and of BXM's index units (dividends
    reinvested, continuous yield of the year) from the marked day before it: each at the previous
    day's rate / yield, so a range split in two grows exactly as one."""
    gap = np.diff(dates.asi8) / 86_400e9
    q = dividend_yield(dates.year)
    cash = np.concatenate([[1.0], 1.0 + rate[:-1] * gap / 360.0])
    units = np.concatenate([[1.0], np.exp(q[:-1] * gap / 365.0)])
    if state is not None:
        days = (dates[0] - state.date).days
        cash[0] = 1.0 + state.rate * days / 360.0
        units[0] = float(np.exp(dividend_yield(np.array([state.date.year]))[0] * days / 365.0))
    return cash, units


def _continue(st: IndexState, cash_growth: float, unit_growth: float) -> _Opening:
    return _Opening(st.cash * cash_growth, st.spx_units * unit_growth, st.contracts, st.strikes, st.expiry,
                    st.max_loss)


def _roll(index: str, st: IndexState | None, date: pd.Timestamp, soq: float, spot: float, cash_growth: float,
          unit_growth: float, day_chain: pd.DataFrame, expiry: pd.Timestamp) -> _Opening:
    """The roll date: the expiring legs settle at the SOQ, the account is valued at the close,
    and the new legs are sold / bought at mid, sized by the index's collateral rule."""
    if st is None:  # inception: all cash
        value = BASE_VALUE
    else:
        settle_value = float(_qty(index, st.contracts, st.strikes) @ _intrinsic(st.strikes, [soq])[0])
        value = st.cash * cash_growth + settle_value + st.spx_units * unit_growth * spot
    pick = _select(index, day_chain, spot)
    if pick is None:
        raise ValueError(f"benchmark {index}: no options to roll into on {date.date()} "
                         f"(expiry {expiry.date()}): the chain lacks them")
    strikes, mids = pick
    max_loss, units = float("nan"), 0.0
    if index == "CNDR":
        width = max(strikes[1] - strikes[0], strikes[3] - strikes[2])
        contracts = value / (COLLATERAL_MULTIPLE * width)
        max_loss = contracts * width
    elif index == "PUT":
        contracts = value / strikes[1]
    else:  # BXM: one call per index unit, the premium buys more units
        contracts = units = value / (spot - mids[2])
    premium = -float(_qty(index, contracts, strikes) @ mids)  # received for the sales, paid for the wings
    return _Opening(value - units * spot + premium, units, contracts, strikes, expiry, max_loss, True,
                    soq if st is not None else float("nan"), premium)


def _mark(index: str, o: _Opening, dates: pd.DatetimeIndex, spot: np.ndarray, rate: np.ndarray,
          cash_growth: np.ndarray, unit_growth: np.ndarray, expiry_rows: dict[str, np.ndarray] | None) -> pd.DataFrame:
    """The cycle's rows: cash and units grown from the opening, the legs at mid (module doc)."""
    cash = o.cash * np.cumprod(np.concatenate([[1.0], cash_growth[1:]]))
    units = o.spx_units * np.cumprod(np.concatenate([[1.0], unit_growth[1:]]))
    mids, missing = _slot_mids(expiry_rows, o.strikes, dates, spot)
    option_value = mids @ _qty(index, o.contracts, o.strikes)
    first = np.arange(len(dates)) == 0
    return pd.DataFrame({
        "date": dates, "index": index, "value": cash + units * spot + option_value, "cash": cash, "rate": rate,
        "spx_units": units, "contracts": o.contracts, "expiry": o.expiry,
        **{s: o.strikes[j] for j, s in enumerate(SLOTS)}, "option_value": option_value,
        "rolled": first & o.rolled, "settlement": np.where(first, o.settlement, np.nan),
        "premium": np.where(first, o.premium, np.nan), "max_loss": o.max_loss,
        "marks_intrinsic": missing.sum(axis=1).astype(np.int64)})


def replicate(index: str, days: pd.DataFrame, chain: pd.DataFrame, state: IndexState | None = None) -> pd.DataFrame:
    """The index's rows (BENCHMARK_COLUMNS) on `days`.

    `days`: one row per marked session, columns date, spx_open, spx_close, rate (T-bill, a
    fraction), in date order; every roll date in the range must be among them (another subset of
    sessions gives the same values but for the compounding over the gaps, module doc). `chain`:
    SPX option rows (date, expiry, strike, option_type, bid, ask, and on roll dates what
    `option_marks.mark_chain` needs); only the held expiry of each day is read. `state`: the index
    at the close of the session before `days` (None: it starts at BASE_VALUE on the first roll).
    Loops over monthly cycles only; each cycle's days are marked at once.
    """
    if index not in INDEXES:
        raise KeyError(f"unknown benchmark {index!r}; known: {INDEXES}")
    days = days.sort_values("date").reset_index(drop=True)
    dates = pd.DatetimeIndex(pd.to_datetime(days["date"])).as_unit("ns")
    if not len(dates):
        return pd.DataFrame({c: pd.Series(dtype=float) for c in BENCHMARK_COLUMNS})
    bad = ~np.isfinite(days[["spx_open", "spx_close", "rate"]].to_numpy(float)).all(axis=1)
    if bad.any():
        raise ValueError(f"benchmark {index}: SPX open / close or the T-bill rate missing on {int(bad.sum())} "
                         f"session(s), e.g. {dates[bad][0].date()}")
    if state is not None and not (state.date < dates[0] and np.isfinite(state.value)):
        raise ValueError(f"benchmark {index}: the state of {state.date.date()} (value {state.value}) cannot "
                         f"start a range from {dates[0].date()}")
    chain = chain.assign(date=pd.to_datetime(chain["date"]).dt.as_unit("ns"),
                         expiry=pd.to_datetime(chain["expiry"]).dt.as_unit("ns"))
    rolls = roll_dates(dates[0], dates[-1])
    missing_rolls = rolls.difference(dates)
    if len(missing_rolls):
        raise ValueError(f"benchmark {index}: roll dates missing from the days: {list(missing_rolls.date[:3])}")
    cycle = np.cumsum(dates.isin(rolls))  # 0 = before the first roll in range (continues `state`)
    spot_close, spot_open = days["spx_close"].to_numpy(float), days["spx_open"].to_numpy(float)
    rate = days["rate"].to_numpy(float)
    cash_growth, unit_growth = _growth(dates, rate, state)
    held = held_expiry(dates)
    rows_by_expiry = _by_expiry(chain)
    roll_chains = {d: g for d, g in chain[chain["date"].isin(rolls)].groupby("date")}
    parts, st = [], state
    for c in np.unique(cycle):  # one iteration per monthly cycle
        sel = np.flatnonzero(cycle == c)
        d0 = sel[0]
        if c == 0:
            if st is None:
                continue  # no index before its first roll date
            opening = _continue(st, cash_growth[d0], unit_growth[d0])
        else:
            day_chain = roll_chains.get(dates[d0], chain.iloc[0:0])
            opening = _roll(index, st, dates[d0], spot_open[d0], spot_close[d0], cash_growth[d0], unit_growth[d0],
                            day_chain[day_chain["expiry"] == held[d0]], held[d0])
        expiry_rows = rows_by_expiry.get(pd.Timestamp(opening.expiry).value) if opening.expiry is not None else None
        part = _mark(index, opening, dates[sel], spot_close[sel], rate[sel], cash_growth[sel], unit_growth[sel],
                     expiry_rows)
        parts.append(part)
        st = IndexState.from_row(part.iloc[-1])
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in BENCHMARK_COLUMNS})
    return pd.concat(parts, ignore_index=True)[BENCHMARK_COLUMNS]


def calendar_year_returns(values: pd.Series) -> pd.Series:
    """Total return (%) of each calendar year Y whose last session and Y-1's last session are both
    in `values` (a value per date): V(last session of Y) / V(last session of Y-1) - 1, as from
    Cboe's month-end index values. A year without either year-end is left out, never stretched."""
    v = values.sort_index()
    v = v[~v.index.duplicated(keep="last")]
    sessions = cal.all_sessions()
    years = np.unique(v.index.year)
    last_session = pd.Series(sessions, index=sessions).groupby(sessions.year).max()
    ends = last_session.reindex(years)
    held = v.reindex(pd.DatetimeIndex(ends.to_numpy()))
    ye = pd.Series(held.to_numpy(), index=years).dropna()
    prev = ye.reindex(ye.index - 1).to_numpy()
    out = pd.Series(ye.to_numpy() / prev - 1, index=ye.index).dropna().mul(100)
    return out.rename_axis("year")


def window_return(values: pd.Series, start, end) -> float:
    """Return (%) from the close of `start` to the close of `end` (nearest held session on or before)."""
    v = values.sort_index()
    a = v[v.index <= pd.Timestamp(start)]
    b = v[v.index <= pd.Timestamp(end)]
    if a.empty or b.empty:
        return float("nan")
    return float((b.iloc[-1] / a.iloc[-1] - 1) * 100)


def max_drawdown(values: pd.Series) -> float:
    """Deepest fall from a running peak, %."""
    v = values.sort_index().to_numpy(float)
    if not len(v):
        return float("nan")
    return float((v / np.maximum.accumulate(v) - 1).min() * 100)


def compare_to_published(replicated: pd.DataFrame) -> pd.DataFrame:
    """Replicated vs published calendar-year returns: one row per (index, year) the replication
    covers, with the error in points, the sample (in / out) and its tolerance. `replicated`: rows
    of `replicate` (date, index, value)."""
    rows = []
    for name, g in replicated.groupby("index"):
        rets = calendar_year_returns(pd.Series(g["value"].to_numpy(float), index=pd.DatetimeIndex(g["date"])))
        for year, r in rets.items():
            if year not in PUBLISHED_RETURNS.index:
                continue
            pub = float(PUBLISHED_RETURNS.loc[year, name])
            oos = year in OUT_OF_SAMPLE_YEARS
            rows.append({"index": name, "period": str(year), "replicated_pct": float(r), "published_pct": pub,
                         "error_pts": float(r) - pub, "sample": "out" if oos else "in",
                         "tolerance_pts": TOLERANCE_PTS[name] if oos else TOLERANCE_PTS["in_sample_mae"]})
        for key, w in PUBLISHED_WINDOWS.items():
            if w["index"] != name:
                continue
            dates = pd.DatetimeIndex(g["date"])
            if dates.min() > pd.Timestamp(w["start"]) or dates.max() < pd.Timestamp(w["end"]):
                continue
            r = window_return(pd.Series(g["value"].to_numpy(float), index=dates), w["start"], w["end"])
            rows.append({"index": name, "period": key.split("_", 1)[1], "replicated_pct": r,
                         "published_pct": w["return_pct"], "error_pts": r - w["return_pct"], "sample": "out",
                         "tolerance_pts": TOLERANCE_PTS["window"]})
    cols = ["index", "period", "replicated_pct", "published_pct", "error_pts", "sample", "tolerance_pts"]
    return pd.DataFrame(rows, columns=cols)


def comparison_png(comparison: pd.DataFrame, values: pd.DataFrame | None = None, title: str = "",
                   dpi: int = 80) -> bytes:
    """Replicated vs published calendar-year returns per index (bars; out-of-sample years hatched),
    and, with `values` (rows of `replicate`), the replicated index paths. matplotlib (Agg)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    years = comparison[comparison["period"].str.fullmatch(r"\d{4}")]
    n_panels = len(INDEXES) + (1 if values is not None and len(values) else 0)
    fig, axes = plt.subplots(n_panels, 1, figsize=(9, 2.8 * n_panels), squeeze=False)
    for ax, name in zip(axes[:, 0], INDEXES):
        g = years[years["index"] == name].sort_values("period")
        x = np.arange(len(g))
        ax.bar(x - 0.2, g["published_pct"], 0.4, label="published (Cboe)", color="#888888")
        bars = ax.bar(x + 0.2, g["replicated_pct"], 0.4, label="replicated (model chains)", color="#1f77b4")
        for bar, sample in zip(bars, g["sample"]):
            if sample == "out":
                bar.set_hatch("//")
        ax.set_xticks(x, g["period"])
        ax.axhline(0, color="black", lw=0.5)
        ax.set_ylabel(f"{name} %")
        ax.legend(fontsize=7, loc="lower left")
    if n_panels > len(INDEXES):
        ax = axes[-1, 0]
        for name, g in values.groupby("index"):
            ax.plot(pd.to_datetime(g["date"]), g["value"], label=name)
        ax.set_ylabel("index value (replicated)")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
