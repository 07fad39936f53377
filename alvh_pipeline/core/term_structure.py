"""VIX futures term structure: constant-maturity prices, curve features and a VXX-style
S&P 500 VIX Short-Term Futures index (DESIGN §4 `features/term_structure`, §5, §8, §9).

Input everywhere is the validated ``vix_futures`` table over one or many dates (columns used:
``date``, ``contract``, ``expiry``, ``settle``). Per date the curve is the traded contracts
(``settle > 0``, ``expiry > date``) ranked by expiry: M1 = the nearest expiry *strictly after*
the date (on a final-settlement day the expiring contract no longer counts). The table's
``month_index`` is not needed (the CFE loader has none); ranking by expiry among traded rows
skips a listed-but-untraded month instead of leaving a hole.

Constant maturity (roll-weight method of the S&P VIX futures indices, in calendar days):
for a target of τ days and the two contracts bracketing it, with days to expiry
``d_lo < τ <= d_hi`` and settles ``P_lo, P_hi``,

    CM(τ) = w P_lo + (1 - w) P_hi,   w = (d_hi - τ) / (d_hi - d_lo).

Extrapolation: beyond the last listed expiry (τ > d_last) CM = P_last (flat). Before the first
(τ <= d_1): flat CM = P_1 by default; when a spot VIX is given it is used as the zero-maturity
point (futures converge to the VIX at expiry), CM = VIX + (P_1 - VIX) τ / d_1.

Short-term index (S&P 500 VIX Short-Term Futures Index methodology): the roll period runs from
one VIX futures settlement date E_prev (inclusive) to the next E_next (exclusive); on date t

    dt = #business days in [E_prev, E_next),   dr = #business days in (t, E_next),
    crw1_t = dr / dt on M1 (expiry E_next),     crw2_t = 1 - crw1_t on M2,

so the weights go from (dt-1)/dt on a settlement day to 0 on the Tuesday (the last business
day) before the next settlement: the index rolls continuously from M1 into M2. The excess-return
index compounds

    CDR_t = Σ_i crw_{i,t-1} P_{i,t} / Σ_i crw_{i,t-1} P_{i,t-1} - 1,   I_t = I_{t-1} (1 + CDR_t [+ TBR_t]),

with the previous day's weights applied to today's and yesterday's settles of the *same*
contracts, and optionally the T-bill return TBR_t = (1 / (1 - 91/360 · TBAR_{t-1}))^(Δ_t/91) - 1
(Δ_t calendar days since the previous index date) for the total-return version. Business days
are NYSE sessions (`core.calendar`); E_prev is the latest expiry of a contract already seen in
the data (its rows all precede it, so this never looks ahead), or the calendar rule's expiry of
the month before M1 at the start of the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alvh_pipeline.core import calendar as cal

__all__ = [
    "CM_TARGETS",
    "constant_maturity",
    "short_term_index",
    "short_term_returns",
    "short_term_weights",
    "term_structure_features",
]

CM_TARGETS: tuple[int, ...] = (30, 60, 90, 150)


@dataclass(frozen=True)
class _Curve:
    """Per-date curves as padded matrices, row = date, column = rank by expiry (M1 first)."""

    dates: pd.DatetimeIndex
    days: np.ndarray  # calendar days to expiry, +inf padding
    settle: np.ndarray  # NaN padding
    expiry: np.ndarray  # datetime64[ns], NaT padding
    contract: np.ndarray  # object, None padding
    rows: pd.DataFrame  # the filtered long rows with columns date, contract, expiry, settle, rank


def _curve(futures: pd.DataFrame) -> _Curve:
    df = pd.DataFrame(
        {
            "date": pd.to_datetime(futures["date"]).to_numpy("datetime64[ns]"),
            "contract": futures["contract"].astype(str).to_numpy(),
            "expiry": pd.to_datetime(futures["expiry"]).to_numpy("datetime64[ns]"),
            "settle": pd.to_numeric(futures["settle"], errors="coerce").to_numpy(float),
        }
    )
    df = df[np.isfinite(df["settle"]) & (df["settle"] > 0) & (df["expiry"] > df["date"])]
    df = df.drop_duplicates(["date", "contract"]).sort_values(["date", "expiry"], kind="stable")
    df["rank"] = df.groupby("date").cumcount().to_numpy()
    codes, dates = pd.factorize(df["date"], sort=True)
    n, m = len(dates), int(df["rank"].max()) + 1 if len(df) else 0
    r = df["rank"].to_numpy()
    days = np.full((n, m), np.inf)
    settle = np.full((n, m), np.nan)
    expiry = np.full((n, m), np.datetime64("NaT"), dtype="datetime64[ns]")
    contract = np.full((n, m), None, dtype=object)
    days[codes, r] = (df["expiry"] - df["date"]).dt.days.to_numpy(float)
    settle[codes, r] = df["settle"].to_numpy()
    expiry[codes, r] = df["expiry"].to_numpy()
    contract[codes, r] = df["contract"].to_numpy()
    return _Curve(pd.DatetimeIndex(dates, name="date"), days, settle, expiry, contract, df.reset_index(drop=True))


def _cm_name(tau: float) -> str:
    return f"cm{int(tau)}" if float(tau).is_integer() else f"cm{tau}"


def _cm_from_curve(c: _Curve, targets: Sequence[float], spot: np.ndarray | None) -> pd.DataFrame:
    n = len(c.dates)
    if c.settle.shape[1] == 0:
        return pd.DataFrame({_cm_name(t): np.full(n, np.nan) for t in targets}, index=c.dates)
    rows = np.arange(n)
    n_valid = np.isfinite(c.days).sum(axis=1)
    out = {}
    for tau in targets:  # a handful of targets; everything inside is vectorized over dates
        k = (c.days < tau).sum(axis=1)  # contracts expiring strictly before the target
        hi = np.minimum(k, np.maximum(n_valid - 1, 0))
        lo = np.maximum(k - 1, 0)
        d_lo, d_hi = c.days[rows, lo], c.days[rows, hi]
        p_lo, p_hi = c.settle[rows, lo], c.settle[rows, hi]
        with np.errstate(divide="ignore", invalid="ignore"):
            w = (d_hi - tau) / (d_hi - d_lo)
            inside = p_lo * w + p_hi * (1.0 - w)
        cm = np.where((k > 0) & (k < n_valid), inside, np.nan)
        cm = np.where(k >= n_valid, c.settle[rows, np.maximum(n_valid - 1, 0)], cm)  # beyond last: flat
        before = (k == 0) & (n_valid > 0)
        p1, d1 = c.settle[:, 0], c.days[:, 0]
        front = p1
        if spot is not None:
            with np.errstate(invalid="ignore"):
                anchored = spot + (p1 - spot) * tau / d1
            front = np.where(np.isfinite(spot), anchored, p1)
        cm = np.where(before, front, cm)
        cm = np.where(n_valid > 0, cm, np.nan)
        out[_cm_name(tau)] = cm
    return pd.DataFrame(out, index=c.dates)


def _align(series: pd.Series | None, dates: pd.DatetimeIndex) -> np.ndarray | None:
    if series is None:
        return None
    s = pd.Series(np.asarray(series, dtype=float), index=pd.to_datetime(series.index).normalize())
    s = s[~s.index.duplicated(keep="last")]
    return s.reindex(dates).to_numpy(float)


def constant_maturity(
    futures: pd.DataFrame,
    targets: Sequence[float] = CM_TARGETS,
    spot: pd.Series | None = None,
) -> pd.DataFrame:
    """Constant-maturity VIX futures prices per date, one column ``cm<τ>`` per target τ (calendar days).

    CM(τ) = w P_lo + (1 - w) P_hi with w = (d_hi - τ)/(d_hi - d_lo), the roll-weight linear
    interpolation of the S&P VIX futures indices between the two contracts whose days to expiry
    bracket τ (d_lo < τ <= d_hi). Flat beyond the last listed expiry; before the first expiry
    flat at M1, or, when ``spot`` (VIX close by date) is given, linear between (0, VIX) and
    (d_1, P_1). Only each date's own rows are used. Index: ``date`` (sorted).
    """
    c = _curve(futures)
    return _cm_from_curve(c, targets, _align(spot, c.dates))


def term_structure_features(futures: pd.DataFrame, vix_close: pd.Series) -> pd.DataFrame:
    """Per-date term-structure features (DESIGN §4).

    Columns:
      vx1, vx2            front two settles (M1, M2 by expiry among traded contracts)
      days_to_m1_expiry   calendar days from the date to M1's final settlement
      cm30, cm60, cm90, cm150   constant maturity, spot-VIX-anchored before M1 (see module doc)
      slope_m2_m1         vx2 - vx1 (> 0 contango)
      slope_cm            cm150 - cm30, the curve's 1-to-5-month slope free of roll-date jumps
      vix                 the VIX close on the date (NaN where missing)
      basis               vx1 - vix (> 0: the future trades above spot, contango)
      roll_yield          (vix - vx1) / vx1 / days_to_m1_expiry: the per-calendar-day fractional return a long
                          M1 position earns if spot stays put and the future converges to it
                          linearly (negative in contango); noisy in the last days before expiry
      roll_yield_cm30     (vix - cm30) / cm30 / 30: the same for the 30-day constant-maturity
                          point, free of the expiry-cycle effect
      backwardation       vx1 > vx2 (False where vx2 is missing)
    Index ``date``. ``vix_close``: a Series indexed by date.
    """
    c = _curve(futures)
    vix = _align(vix_close, c.dates)
    m = c.settle.shape[1]
    vx1 = c.settle[:, 0] if m > 0 else np.full(len(c.dates), np.nan)
    vx2 = c.settle[:, 1] if m > 1 else np.full(len(c.dates), np.nan)
    d1 = c.days[:, 0] if m > 0 else np.full(len(c.dates), np.nan)
    cm = _cm_from_curve(c, CM_TARGETS, vix)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = pd.DataFrame(
            {
                "vx1": vx1,
                "vx2": vx2,
                "days_to_m1_expiry": np.where(np.isfinite(d1), d1, np.nan),
                **{k: cm[k].to_numpy() for k in cm.columns},
                "slope_m2_m1": vx2 - vx1,
                "slope_cm": cm["cm150"].to_numpy() - cm["cm30"].to_numpy(),
                "vix": vix,
                "basis": vx1 - vix,
                "roll_yield": (vix - vx1) / vx1 / d1,
                "roll_yield_cm30": (vix - cm["cm30"].to_numpy()) / cm["cm30"].to_numpy() / 30.0,
                "backwardation": np.nan_to_num(vx1) > np.where(np.isfinite(vx2), vx2, np.inf),
            },
            index=c.dates,
        )
    return out


# ---- S&P 500 VIX Short-Term Futures index ------------------------------------------------------

def _sessions_before(dates: np.ndarray, side: str) -> np.ndarray:
    """Number of NYSE sessions < date (side='left') or <= date (side='right')."""
    return np.searchsorted(cal.all_sessions().values, dates, side=side)


def short_term_weights(futures: pd.DataFrame) -> pd.DataFrame:
    """Daily roll weights of the S&P 500 VIX Short-Term Futures index (module doc).

    Columns: contract1, contract2 (M1, M2; contract2 None when only one contract trades),
    expiry1, prev_settlement (E_prev), dt, dr, crw1 = dr/dt, crw2 = 1 - crw1 (0 without an M2,
    crw1 then 1). Index ``date``. Uses only rows dated on or before each date.
    """
    c = _curve(futures)
    n = len(c.dates)
    if n == 0:
        cols = ["contract1", "contract2", "expiry1", "prev_settlement", "dt", "dr", "crw1", "crw2"]
        return pd.DataFrame(columns=cols, index=c.dates)
    e_next = c.expiry[:, 0]
    # E_prev: latest expiry <= t among contracts seen so far (a contract's expiry is taken from
    # its first row; every row of a contract expiring <= t is dated < t, so no look-ahead).
    first = c.rows.groupby("contract", sort=False)["expiry"].first()
    ex = np.sort(first.to_numpy("datetime64[ns]"))
    t = c.dates.values
    pos = np.searchsorted(ex, t, side="right") - 1
    seen_prev = np.where(pos >= 0, ex[np.maximum(pos, 0)], np.datetime64("NaT"))
    # Fallback at the start of the data: the calendar rule's expiry for the month before M1's.
    e1 = pd.DatetimeIndex(e_next)
    months = e1.year.to_numpy() * 12 + e1.month.to_numpy() - 2
    fallback = cal.vix_expiry(months // 12, months % 12 + 1).values
    fallback = np.where(fallback <= t, fallback, np.datetime64("NaT"))
    e_prev = np.where(pos >= 0, seen_prev, fallback).astype("datetime64[ns]")
    e_prev = np.where(np.isnat(e_prev), t, e_prev)  # last resort: the roll period starts today
    dt = _sessions_before(e_next, "left") - _sessions_before(e_prev, "left")
    dr = _sessions_before(e_next, "left") - _sessions_before(t, "right")
    dt = np.maximum(dt, 1)
    dr = np.clip(dr, 0, dt)
    has2 = c.settle.shape[1] > 1
    c2 = c.contract[:, 1] if has2 else np.full(n, None, dtype=object)
    crw1 = np.where(pd.isna(c2), 1.0, dr / dt)
    return pd.DataFrame(
        {
            "contract1": c.contract[:, 0],
            "contract2": c2,
            "expiry1": e_next,
            "prev_settlement": e_prev,
            "dt": dt.astype(np.int64),
            "dr": dr.astype(np.int64),
            "crw1": crw1,
            "crw2": 1.0 - crw1,
        },
        index=c.dates,
    )


def short_term_returns(futures: pd.DataFrame, tbill: pd.Series | None = None) -> pd.Series:
    """The daily returns ``CDR_t [+ TBR_t]`` of ``short_term_index`` (its doc), by date; NaN on the
    first date. Each is formed from that day's and the day before's data only, so a day's return
    is the same whatever day the series starts (the index level's ratio I_t / I_{t-1} carries the
    rounding of every day since the start)."""
    c = _curve(futures)
    if len(c.dates) == 0:
        return pd.Series(dtype=float, index=c.dates, name="vix_short_term_return")
    w = short_term_weights(futures)
    contracts, col = np.unique(c.rows["contract"].to_numpy(), return_inverse=True)
    date_code = c.dates.get_indexer(pd.DatetimeIndex(c.rows["date"]))
    wide = np.full((len(c.dates), len(contracts)), np.nan)
    wide[date_code, col] = c.rows["settle"].to_numpy()
    wide = pd.DataFrame(wide).ffill().to_numpy()  # carry a missing settle forward (no look-ahead)

    lookup = pd.Index(contracts)
    i1 = lookup.get_indexer(w["contract1"])  # -1 where missing
    i2 = lookup.get_indexer(w["contract2"])
    crw1, crw2 = w["crw1"].to_numpy(), w["crw2"].to_numpy()

    def leg(weight, idx, row):
        price = wide[row, np.maximum(idx, 0)]
        return np.where((weight > 0) & (idx >= 0), weight * price, 0.0)

    today, prev = np.arange(1, len(c.dates)), np.arange(0, len(c.dates) - 1)
    num = leg(crw1[prev], i1[prev], today) + leg(crw2[prev], i2[prev], today)
    den = leg(crw1[prev], i1[prev], prev) + leg(crw2[prev], i2[prev], prev)
    with np.errstate(divide="ignore", invalid="ignore"):
        cdr = num / den - 1.0
    cdr = np.where(np.isfinite(cdr), cdr, 0.0)
    if tbill is not None:
        rate = pd.Series(_align(tbill, c.dates)).ffill().to_numpy()
        gap = np.diff(c.dates.values).astype("timedelta64[D]").astype(float)
        with np.errstate(invalid="ignore"):
            tbr = (1.0 / (1.0 - 91.0 / 360.0 * rate[prev])) ** (gap / 91.0) - 1.0
        cdr = cdr + np.where(np.isfinite(tbr), tbr, 0.0)
    return pd.Series(np.concatenate([[np.nan], cdr]), index=c.dates, name="vix_short_term_return")


def short_term_index(
    futures: pd.DataFrame,
    start_level: float = 100_000.0,
    tbill: pd.Series | None = None,
) -> pd.Series:
    """VXX-style S&P 500 VIX Short-Term Futures index level per date (module doc):

        I_t = I_{t-1} (1 + CDR_t [+ TBR_t]),
        CDR_t = (crw1_{t-1} P1_t + crw2_{t-1} P2_t) / (crw1_{t-1} P1_{t-1} + crw2_{t-1} P2_{t-1}) - 1,

    where P1, P2 are the settles of the contracts that were M1, M2 on the previous index date.
    ``I`` = ``start_level`` on the first date. A contract's missing settle is carried forward
    from its own last settle (past data only); a day whose return still cannot be formed counts
    as 0. ``tbill`` (13-week T-bill rate as a fraction, discount basis, by date) adds the
    T-bill return of the total-return index. Computed from data on or before each date only.
    """
    returns = short_term_returns(futures, tbill)
    level = start_level * np.cumprod(1.0 + returns.fillna(0.0).to_numpy())
    return pd.Series(level, index=returns.index, name="vix_short_term_index")
