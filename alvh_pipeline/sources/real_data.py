"""Real market data shipped with the package or with its dependencies (DESIGN §3 `replay`, §9).

Pure pandas, no network, no Dagster. Every loader is cached (functools.lru_cache) and returns a
fresh copy, so callers may mutate what they get.

- CFE VIX futures settlements 2004-03-26 .. 2014-08-14 and the 13-week T-bill 2005-01-03 ..
  2014-08-15: ``sources/data/*.parquet``, converted verbatim from ``../shared/data/cfe_vix_futures``
  by ``scripts/convert_cfe.py`` (MIT licence: ``sources/data/LICENSE-cfe_vix_futures``). The
  publication's fixes (10x prices before 2007-03-26, untraded rows, final-settlement rows) are
  applied here, not in the stored files.
- Daily OHLC and volume of 120 US large caps and SPY / QQQ / IWM, 2004-01-02 .. 2017-11-10:
  ``sources/data/real_equities.parquet``, converted row for row from ``../shared/data/real_equities``
  by ``scripts/convert_real_equities.py`` (public-domain dataset; source, licence and caveats in
  ``sources/data/LICENSE-real_equities``, per-symbol sources in ``real_equities_manifest.csv``).
  Split- and dividend-adjusted back from 2017-11-10 (returns, not traded levels; the dividend
  adjustment is not point-in-time), and survivors: names still listed in 2017, ranked by 2015-2017
  liquidity (no Lehman, Wachovia, Bear Stearns), so stat-arb results on them are biased upward.
  Read by :func:`load_real_equities`.
- S&P 500 / NASDAQ Composite daily OHLC 1999-01-04 .. 2018-12-31 and VIX close 2014-01-03 ..
  2019-01-03: the datasets bundled with the ``arch`` package.
- Derived (computed from the real VX curve by a stated rule, :func:`vix_from_futures`): spot VIX
  on every CFE day 2004-03-26 .. 2014-08-14 as the zero-maturity linear extrapolation of the
  front two settles. Out of sample (the final-settlement rows are not inputs) it is within
  1.30 points on average (max 6.09, 2008-10-22) of the 119 final settlement values (= VIX's
  special opening quotation on each expiry day), and within 0.65 points on average (max 1.96,
  bias +0.42) of the real VIX close on the 155 days 2014-01-03 .. 2014-08-14 where both exist.

Publication facts worth knowing (checked by tests/sources/test_real_data.py):

- Each expired contract's last published row is its final settlement date: OHLC 0, volume 0 (one
  exception: Dec 11 traded on its final day), Settle = the final settlement value (SOQ). Those rows
  are returned by :func:`load_cfe_final_settlements`, not by :func:`load_cfe_settlements`, whose
  rows all satisfy ``date < expiry``. Expiries are Wednesdays except VXG08 (2008-02-19) and VXH14
  (2014-03-18), Tuesdays because the next SPX expiry Friday was a holiday.
- Zero-volume rows sometimes carry placeholder high/low (high < low, e.g. listing days); open /
  high / low / close are therefore NaN whenever volume is 0 (settle is always kept).
- The Jul 04 and Oct 04 contracts settled on the Wednesday before the contract month's third Friday
  (the original 2004 rule), a week before the 30-days-before-next-SPX-expiry rule of
  ``core.calendar.vix_expiry``; :data:`EXPIRY_OVERRIDES` carries their published dates. Every other
  expired contract's final row falls exactly on ``vix_expiry``.
- A few far-back-month, (nearly) untraded rows carry implausible settles (:data:`SUSPECT_SETTLES`,
  e.g. 1.00); they are kept as published. All lie beyond M8.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from importlib.resources import as_file, files

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from alvh_pipeline.core.calendar import MONTH_CODES, contract_code, vix_expiry

DATA_PACKAGE = "alvh_pipeline.sources"
CFE_FILE = "cfe_vix_futures.parquet"
TBILL_FILE = "tbill_13week.parquet"
EQUITIES_FILE = "real_equities.parquet"
EQUITY_COLUMNS = ["date", "symbol", "sector", "open", "high", "low", "close", "volume"]

#: Trade dates before this are quoted at 10x the index (the old $100 multiplier, DESIGN §9).
MULTIPLIER_CHANGE = pd.Timestamp("2007-03-26")
PRICE_COLUMNS = ("open", "high", "low", "close", "settle")

#: Contracts whose published final settlement date differs from ``vix_expiry`` (original 2004 rule:
#: the Wednesday before the third Friday of the contract month).
EXPIRY_OVERRIDES: dict[str, pd.Timestamp] = {
    "VXN04": pd.Timestamp("2004-07-14"),
    "VXV04": pd.Timestamp("2004-10-13"),
}

#: (contract, date, published settle after the 10x fix) rows whose settle is clearly not a market
#: level (1.00 placeholders, a 10.25 first print, an 18.14 between 32 and 35). Kept as published.
SUSPECT_SETTLES: tuple[tuple[str, str, float], ...] = (
    ("VXQ09", "2008-10-30", 18.14),
    ("VXF09", "2008-04-21", 1.00),
    ("VXG09", "2008-04-21", 1.00),
    ("VXG14", "2013-05-28", 10.25),
)

CFE_COLUMNS = [
    "date", "contract", "year", "month", "expiry",
    "settle", "open", "high", "low", "close", "volume", "open_interest",
]
INDEX_COLUMNS = ["date", "index", "open", "high", "low", "close"]
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _read_packaged(name: str) -> pd.DataFrame:
    with as_file(files(DATA_PACKAGE).joinpath("data", name)) as path:
        return pq.read_table(path).to_pandas()


def _midnight(values) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(values)).as_unit("ns")


@lru_cache(maxsize=1)
def _cfe_raw() -> pd.DataFrame:
    raw = _read_packaged(CFE_FILE)
    raw["trade_date"] = _midnight(raw["trade_date"])
    return raw


def load_cfe_raw() -> pd.DataFrame:
    """The packaged CFE publication, parsed but untouched (trade_date as datetime64[ns])."""
    return _cfe_raw().copy()


def cfe_contracts(futures: pd.Series) -> pd.DataFrame:
    """CFE's futures codes (`K (May 04)`) as contract ("VXK04"), year, month and expiry (the
    calendar's `vix_expiry`, or the published date of `EXPIRY_OVERRIDES`), aligned with `futures`;
    `ok` False (the rest unset) where the code is not a VX month code whose letter and month name
    agree. Shared by the packaged publication and the `files` source's CFE layout."""
    code = futures.astype(str).str.strip().str.extract(r"^([FGHJKMNQUVXZ]) \((\w{3}) (\d{2})\)$")
    month = code[1].map({m: i + 1 for i, m in enumerate(_MONTH_NAMES)})
    letter = month.map(lambda m: MONTH_CODES[int(m) - 1] if m == m else None)
    ok = (code.notna().all(axis=1) & month.notna() & (code[0] == letter)).to_numpy()
    year = np.where(ok, 2000 + pd.to_numeric(code[2], errors="coerce").fillna(0).astype("int64"), 2000)
    month = np.where(ok, month.fillna(1).astype("int64"), 1)
    contract = pd.Series(contract_code(year, month), index=futures.index).astype("str")
    expiry = pd.Series(_midnight(vix_expiry(year, month)), index=futures.index)
    for name, published in EXPIRY_OVERRIDES.items():
        expiry[contract == name] = published
    return pd.DataFrame({"contract": contract, "year": year, "month": month, "expiry": expiry, "ok": ok},
                        index=futures.index)


@lru_cache(maxsize=1)
def _cfe_all() -> pd.DataFrame:
    """Traded rows (Settle > 0), 10x fixed, with contract, year, month, expiry."""
    raw = _cfe_raw()
    raw = raw[raw["settle"] > 0]
    codes = cfe_contracts(raw["futures"])
    if not codes["ok"].all():
        raise ValueError(f"unparsed futures codes: {sorted(raw['futures'][~codes['ok']].unique())}")
    df = pd.DataFrame({"date": raw["trade_date"], **{c: codes[c] for c in ("contract", "year", "month", "expiry")}})
    scale = np.where(raw["trade_date"] < MULTIPLIER_CHANGE, 10.0, 1.0)
    traded = raw["total_volume"].to_numpy() > 0
    for col in PRICE_COLUMNS:
        price = raw[col].to_numpy(dtype="float64") / scale
        if col != "settle":
            # open/high/low/close are trade prices: NaN when published 0 / blank, and on
            # zero-volume days, where the publication holds placeholders (e.g. high < low).
            price = np.where((price > 0) & traded, price, np.nan)
        df[col] = price
    df["volume"] = raw["total_volume"].astype("int64")
    df["open_interest"] = raw["open_interest"].astype("int64")
    df = df[CFE_COLUMNS].sort_values(["date", "expiry"], kind="stable").reset_index(drop=True)
    if (df["date"] > df["expiry"]).any():
        bad = df[df["date"] > df["expiry"]]
        raise ValueError(f"CFE rows after their contract's expiry:\n{bad.head()}")
    return df


def load_cfe_settlements() -> pd.DataFrame:
    """Daily CFE VX settlements in VIX points, one row per (date, contract), ``date < expiry``.

    Columns: date, expiry (datetime64[ns] midnight), contract ("VXK04"), year, month (int64),
    settle, open, high, low, close (float64, VIX points; published prices before 2007-03-26 divided
    by 10; open/high/low/close NaN where published 0 / blank or where volume is 0), volume
    (Total Volume), open_interest (int64). Untraded rows (Settle 0) and final-settlement rows
    (``date == expiry``, see :func:`load_cfe_final_settlements`) are not included. Sorted by date,
    then expiry (front month first).
    """
    df = _cfe_all()
    return df[df["date"] < df["expiry"]].reset_index(drop=True).copy()


def load_cfe_final_settlements() -> pd.DataFrame:
    """Final settlement value of each expired contract: its published row on the expiry date.

    Columns as :func:`load_cfe_settlements` (``date == expiry``; settle = final settlement value).
    """
    df = _cfe_all()
    return df[df["date"] == df["expiry"]].reset_index(drop=True).copy()


def vix_from_futures(settlements: pd.DataFrame) -> pd.Series:
    """Spot VIX implied by each day's VX curve, date-indexed (days with < 2 contracts left out).

    With F1, F2 the settles of the two nearest contracts (``date < expiry``) and t1 < t2 their
    calendar days to expiry, the curve is extended linearly in maturity to t = 0:
    ``VIX = F1 - (F2 - F1) * t1 / (t2 - t1)``. A future converges to the VIX at expiry, so its
    zero-maturity value is the spot; the linear slope corrects F1's carry (contango: F1 > VIX,
    backwardation: F1 < VIX). Chosen over F1 alone, a square-root-of-maturity extrapolation and
    the market model's mean-reverting-variance fit (k = 2, 4, 8/yr) as the smallest error against
    the out-of-sample expiry-day final settlements (module docstring for the figures); the
    extrapolation span t1 / (t2 - t1) stays <= 2.25 on the published curve.
    """
    s = settlements.sort_values(["date", "expiry"], kind="stable")
    g = s.groupby("date", sort=True)
    front = g.nth(0).set_index("date")
    second = g.nth(1).set_index("date").reindex(front.index)
    t1 = (front["expiry"] - front.index).dt.days.to_numpy(float)
    t2 = (second["expiry"] - second.index).dt.days.to_numpy(float)
    f1, f2 = front["settle"].to_numpy(float), second["settle"].to_numpy(float)
    vix = f1 - (f2 - f1) * t1 / (t2 - t1)
    out = pd.Series(vix, index=pd.DatetimeIndex(front.index, name="date"), name="vix_derived")
    return out[np.isfinite(out) & (out > 0)]  # a non-positive level would mean a broken curve


@lru_cache(maxsize=1)
def _vix_derived() -> pd.Series:
    return vix_from_futures(load_cfe_settlements())


def load_vix_derived() -> pd.Series:
    """:func:`vix_from_futures` of the packaged CFE settlements (2004-03-26 .. 2014-08-14)."""
    return _vix_derived().copy()


@lru_cache(maxsize=1)
def _tbill() -> pd.Series:
    raw = _read_packaged(TBILL_FILE)
    s = pd.Series(
        raw["value"].to_numpy(dtype="float64"),
        index=pd.DatetimeIndex(_midnight(raw["date"]), name="date"),
        name="tbill_13week",
    ).sort_index()
    if not s.index.is_unique:
        raise ValueError("duplicate T-bill dates")
    return s


def load_tbill() -> pd.Series:
    """13-week T-bill discount rate as a fraction (0.0222 = 2.22%), date-indexed, ascending."""
    return _tbill().copy()


@lru_cache(maxsize=1)
def _real_equities() -> pd.DataFrame:
    raw = _read_packaged(EQUITIES_FILE)
    raw["date"] = _midnight(raw["date"])
    for col in ("symbol", "sector"):
        raw[col] = raw[col].astype("str")
    raw = raw[EQUITY_COLUMNS].sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)
    if raw.duplicated(["date", "symbol"]).any():
        raise ValueError(f"{EQUITIES_FILE}: duplicate (date, symbol) rows")
    return raw


def load_real_equities() -> pd.DataFrame:
    """The packaged real daily bars, one row per (date, symbol) as published: date
    (datetime64[ns] midnight), symbol, sector ('ETF' for SPY / QQQ / IWM), open, high, low, close
    (float64, adjusted for splits and dividends back from 2017-11-10), volume (int64; 0 on the
    file's artifact days, e.g. every stock on 2010-04-26). A session a symbol lacks has no row.
    Sorted by date, then symbol."""
    return _real_equities().copy()


def _arch_data(name: str) -> pd.DataFrame:
    """`arch.data.<name>.load()`: arch's `load_file`, step for step, on the file it ships, without
    importing arch (its package import loads its volatility models with scipy.stats: ~1 s of every
    process that replays). Tests compare with arch's own loader."""
    spec = importlib.util.find_spec("arch")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the arch package (a dependency) is not installed")
    data = pd.read_csv(os.path.join(spec.submodule_search_locations[0], "data", name, f"{name}.csv.gz"))
    if "Date" in data:
        data.Date = pd.to_datetime(data.Date)
        data = data.set_index("Date")
    for col in data:
        data[col] = pd.to_numeric(data[col], errors="coerce")
    return data


@lru_cache(maxsize=1)
def _arch_indices() -> pd.DataFrame:
    frames = []
    for name, module in (("SPX", "sp500"), ("COMP", "nasdaq")):
        d = _arch_data(module)
        frames.append(
            pd.DataFrame(
                {
                    "date": _midnight(d.index),
                    "index": name,
                    **{c.lower(): pd.to_numeric(d[c], errors="coerce").to_numpy("float64")
                       for c in ("Open", "High", "Low", "Close")},
                }
            )
        )
    v = _arch_data("vix")
    close = pd.to_numeric(v["vix"], errors="coerce").to_numpy("float64")  # '.' on holidays -> NaN
    frames.append(
        pd.DataFrame(
            {"date": _midnight(v.index), "index": "VIX", "open": close, "high": close, "low": close,
             "close": close}
        )
    )
    df = pd.concat(frames, ignore_index=True)
    df["index"] = df["index"].astype("str")
    df = df.dropna(subset=["open", "high", "low", "close"])
    return df[INDEX_COLUMNS].sort_values(["date", "index"], kind="stable").reset_index(drop=True)


def load_arch_indices() -> pd.DataFrame:
    """Daily index levels from the ``arch`` package: long frame date, index, open, high, low, close.

    SPX (``arch.data.sp500``) and COMP (``arch.data.nasdaq``): unadjusted Open/High/Low/Close.
    VIX (``arch.data.vix``): arch ships the close only, so open = high = low = close for VIX.
    Rows with a non-numeric value (VIX holidays published as '.') are dropped. Sorted by date, index.
    """
    return _arch_indices().copy()


def coverage() -> pd.DataFrame:
    """First and last date (and row count) of each real series, indexed by series name."""
    rows = {
        "cfe_vix_futures": load_cfe_settlements()["date"],
        "tbill_13week": load_tbill().index.to_series(),
        "real_equities": _real_equities()["date"],
    }
    idx = load_arch_indices()
    for name in ("SPX", "COMP", "VIX"):
        rows[name] = idx.loc[idx["index"] == name, "date"]
    return pd.DataFrame(
        [{"series": name, "first": d.min(), "last": d.max(), "rows": len(d)} for name, d in rows.items()]
    ).set_index("series")
