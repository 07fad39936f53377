"""Exchange calendars and contract expiry rules (DESIGN §9).

NYSE sessions come from `exchange_calendars` (XNYS), never a hand-kept holiday list.
VIX futures (CFE VX) settle on the Wednesday 30 days before the third Friday of the following
month; when that Friday is not a session, 30 days before the session preceding it; when the
resulting Wednesday is not a session, the session before it.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

CALENDAR_START = "1998-01-01"  # a year before the first partition, for look-backs
FIRST_PARTITION = "1999-01-04"
MONTH_CODES = "FGHJKMNQUVXZ"


def _xnys_sessions() -> np.ndarray:
    """XNYS's sessions from `exchange_calendars` (its default end: a year after today), as
    datetime64[ns]."""
    import exchange_calendars as xc

    return pd.DatetimeIndex(xc.get_calendar("XNYS", start=CALENDAR_START).sessions).as_unit("ns").to_numpy()


def sessions_cache_path(today: pd.Timestamp | None = None) -> Path:
    """Where this machine keeps the sessions `exchange_calendars` gave today: named by its version,
    the calendar's start and today's date (the calendar ends a year after today), in a folder of
    this user's under the temp directory."""
    from importlib.metadata import version

    today = (today or pd.Timestamp.now()).floor("D")
    folder = Path(tempfile.gettempdir()) / f"alvh_pipeline-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    return folder / f"xnys-{version('exchange_calendars')}-{CALENDAR_START}-{today:%Y-%m-%d}.npy"


def _cached_sessions() -> np.ndarray:
    """`_xnys_sessions`, kept on disk for the day: building the calendar (its import and holiday
    rules) cost ~0.8 s in every process that needs a session (each run worker, the code server, the
    nightly's run); reading the kept array takes ~1 ms. A missing or unreadable file is rebuilt;
    the write is a temp file + rename, so a reader never sees half of it."""
    path = sessions_cache_path()
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        pass
    sessions = _xnys_sessions()
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as fh:
            np.save(fh, sessions, allow_pickle=False)
        os.replace(fh.name, path)
    except OSError:  # a cache: a machine that cannot keep it builds the calendar each time
        pass
    return sessions


@lru_cache(maxsize=1)
def all_sessions() -> pd.DatetimeIndex:
    """Every NYSE session the calendar knows, tz-naive midnight timestamps."""
    return pd.DatetimeIndex(_cached_sessions())


def sessions_between(start, end) -> pd.DatetimeIndex:
    s = all_sessions()
    return s[(s >= pd.Timestamp(start)) & (s <= pd.Timestamp(end))]


def weekday_holidays(start=FIRST_PARTITION, end=None) -> pd.DatetimeIndex:
    """Weekdays on which NYSE is closed (holidays and ad-hoc closures such as 2001-09-11)."""
    s = all_sessions()
    end = pd.Timestamp(end) if end is not None else s[-1]
    weekdays = pd.bdate_range(pd.Timestamp(start), end)
    return weekdays.difference(s)


def is_session(dates) -> np.ndarray:
    return pd.DatetimeIndex(dates).isin(all_sessions())


def previous_session(dates, inclusive: bool = True) -> pd.DatetimeIndex:
    """Latest session <= date (inclusive) or < date."""
    s = all_sessions().values
    d = pd.DatetimeIndex(dates).values
    pos = np.searchsorted(s, d, side="right" if inclusive else "left") - 1
    if (pos < 0).any():
        raise ValueError(f"date before the calendar start {CALENDAR_START}: {pd.DatetimeIndex(dates)[pos < 0][0]}")
    beyond = d > s[-1] + np.timedelta64(4, "D")  # a date past the calendar's last session + a weekend
    if beyond.any():
        raise ValueError(f"date after the exchange calendar's end {pd.Timestamp(s[-1]).date()}: "
                         f"{pd.DatetimeIndex(dates)[beyond][0].date()}")
    return pd.DatetimeIndex(s[pos])


def third_friday(year, month) -> pd.DatetimeIndex:
    """Third Friday of each (year, month); vectorized, in numpy's calendar arithmetic (a frame of
    dates cost 4 ms a call, and every chain, curve and book day asks)."""
    months = (np.atleast_1d(year).astype(np.int64) - 1970) * 12 + np.atleast_1d(month).astype(np.int64) - 1
    first = months.astype("datetime64[M]").astype("datetime64[D]")
    weekday = (first.astype(np.int64) + 3) % 7  # Monday = 0: 1970-01-01 was a Thursday
    offset = (4 - weekday) % 7  # days to the first Friday
    return pd.DatetimeIndex((first + (offset + 14).astype("timedelta64[D]")).astype("datetime64[ns]"))


def spx_monthly_expiry(year, month) -> pd.DatetimeIndex:
    """SPX monthly expiry: third Friday, or the session before it when it is a holiday."""
    return previous_session(third_friday(year, month))


def vix_expiry(year, month) -> pd.DatetimeIndex:
    """Final settlement date of the VX future of contract month (year, month)."""
    year = np.atleast_1d(year)
    month = np.atleast_1d(month)
    nxt_month = month % 12 + 1
    nxt_year = year + (month == 12)
    friday = spx_monthly_expiry(nxt_year, nxt_month)
    return previous_session(friday - pd.Timedelta(days=30))


def contract_code(year, month) -> np.ndarray:
    year = np.atleast_1d(year)
    month = np.atleast_1d(month)
    codes = np.array(list(MONTH_CODES))[month - 1]
    return np.char.add(np.char.add("VX", codes), np.char.zfill((year % 100).astype(str), 2))


def listed_vix_futures(date, n_months: int = 8) -> pd.DataFrame:
    """The n front VX contracts listed on `date` (expiry strictly after `date`), front first."""
    d = pd.Timestamp(date)
    months = d.year * 12 + (d.month - 1) + np.arange(-1, n_months + 2)
    years, mons = months // 12, months % 12 + 1
    exp = vix_expiry(years, mons)
    keep = np.asarray(exp > d)
    out = pd.DataFrame(
        {
            "contract": contract_code(years[keep], mons[keep]),
            "expiry": exp[keep],
            "year": years[keep],
            "month": mons[keep],
        }
    ).head(n_months)
    out["month_index"] = np.arange(1, len(out) + 1)
    return out.reset_index(drop=True)


def spx_expiries(date, n_weeklies: int = 6, n_monthlies: int = 5) -> pd.DatetimeIndex:
    """SPX expiries listed on `date`: the next Friday weeklies and monthly third Fridays
    (each moved to the previous session when the Friday is a holiday), after `date`."""
    return _spx_expiries(pd.Timestamp(date), n_weeklies, n_monthlies)


@lru_cache(maxsize=8192)
def _spx_expiries(d: pd.Timestamp, n_weeklies: int, n_monthlies: int) -> pd.DatetimeIndex:
    """`spx_expiries`, once per day (an index is immutable): the chains, the books and the
    benchmarks each ask for every day's."""
    fridays = pd.date_range(d + pd.Timedelta(days=1), periods=n_weeklies, freq="W-FRI")
    months = d.year * 12 + (d.month - 1) + np.arange(0, n_monthlies + 1)
    monthly = spx_monthly_expiry(months // 12, months % 12 + 1)
    monthly = monthly[monthly > d][:n_monthlies]
    weekly = previous_session(fridays)
    return pd.DatetimeIndex(np.unique(np.concatenate([weekly.values, monthly.values])))


# Weekday weeklies Cboe lists beside the Friday ones (SPXW), from their first listing.
SPX_WEEKDAY_WEEKLIES = {0: pd.Timestamp("2016-08-15"), 1: pd.Timestamp("2022-04-18"),
                        2: pd.Timestamp("2016-02-23"), 3: pd.Timestamp("2022-05-11")}
VIX_WEEKLIES_START = pd.Timestamp("2015-07-01")  # VIXW: weekly Wednesdays


def _session_of_weekday(expiry: pd.DatetimeIndex, weekday: int) -> np.ndarray:
    """Per expiry: is it the session for that week's `weekday` (the weekday itself, or the session
    before it when it is a holiday)?"""
    day = expiry + pd.to_timedelta((weekday - expiry.weekday) % 7, unit="D")
    return np.asarray(previous_session(day) == expiry)


def spx_expiry_kind(expiry) -> np.ndarray:
    """Per expiry date: "monthly" (the third-Friday SPX expiry, or the session before it), "weekly"
    (a Friday weekly, or a Monday / Tuesday / Wednesday / Thursday weekly on or after Cboe listed
    that day, each the session before the day when it is a holiday) or "" (not a listed SPX expiry:
    e.g. a quarterly or end-of-month expiry, or a weekday weekly before its listing)."""
    e = pd.DatetimeIndex(pd.to_datetime(expiry)).normalize()
    monthly = np.asarray(spx_monthly_expiry(e.year, e.month) == e)
    weekly = _session_of_weekday(e, 4)
    for weekday, start in SPX_WEEKDAY_WEEKLIES.items():
        weekly |= _session_of_weekday(e, weekday) & np.asarray(e >= start)
    return np.select([monthly, weekly], ["monthly", "weekly"], "")


def vix_expiry_kind(expiry) -> np.ndarray:
    """Per expiry date: "monthly" (a VX final settlement date, `vix_expiry`), "weekly" (a Wednesday
    session, or the session before, from the VIXW listing) or ""."""
    e = pd.DatetimeIndex(pd.to_datetime(expiry)).normalize()
    # the contract month whose final settlement falls in e's month, or in the month before
    monthly = np.asarray(vix_expiry(e.year, e.month) == e) | np.asarray(
        vix_expiry(e.year + (e.month == 12), e.month % 12 + 1) == e)
    weekly = _session_of_weekday(e, 2) & np.asarray(e >= VIX_WEEKLIES_START)
    return np.select([monthly, weekly], ["monthly", "weekly"], "")


def window_start(day, lookback: int) -> pd.Timestamp:
    """The session `lookback` sessions before `day` (or the calendar's first session)."""
    s = all_sessions()
    return s[max(s.get_loc(pd.Timestamp(day)) - lookback, 0)]


def business_days_between(start, end) -> np.ndarray:
    """Number of NYSE sessions in (start, end], vectorized over arrays of dates."""
    s = all_sessions().values
    a = np.searchsorted(s, pd.DatetimeIndex(np.atleast_1d(start)).values, side="right")
    b = np.searchsorted(s, pd.DatetimeIndex(np.atleast_1d(end)).values, side="right")
    return b - a
