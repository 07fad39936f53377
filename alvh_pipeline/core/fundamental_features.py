"""Point-in-time fundamental features: valuation ratios, DDM implied growth, P/CF dispersion
of pairs, rolling CAPM beta.

Point in time.  The validated ``fundamentals`` table has one row per (as-of ``date``, symbol):
the latest quarterly report with ``report_date <= date``.  :func:`valuation_panel` attaches to
each (day t, symbol) close the fundamentals row with the latest as-of date ``<= t`` (a backward
as-of join, so a sparse table -- e.g. one row per publication -- works too, its values carried
forward until the next row) and refuses rows whose ``report_date`` is after their as-of date.
A value on day t therefore never depends on a report published after t.

Valuation, per (t, symbol), with P = close, E = eps_ttm, CF = cfps_ttm, D0 = dps_ttm::

    pe = P / E                    (NaN when E <= 0: not meaningful)
    pcf = P / CF                  (NaN when CF <= 0)
    dividend_yield = D0 / P
    r = rf + beta * ERP           (CAPM required return, ERP = 5.5 % by default)
    Gordon growth: P = D1 / (r - g) with D1 = D0 (1 + g)
        =>  g = (r P - D0) / (P + D0)         (NaN when D0 <= 0: no dividend, no DDM)

``r - g = D0 (1 + r) / (P + D0) > 0`` whenever D0 > 0, so the identity P = D0 (1+g)/(r-g)
always holds for the returned g.  ``rf`` is whatever annual rate the caller passes (e.g. the
13-week T-bill of the ``rates`` table, a fraction).

P/CF dispersion of pair (y = column i, x = column j)::

    disp_t = ln(P/CF)_y,t - ln(P/CF)_x,t
    z_t    = (disp_t - mean(disp_{t-w+1..t})) / std(disp_{t-w+1..t}, ddof=0),   w = 252
    direction_t = +1 if z_t >= k, -1 if z_t <= -k, else 0     (k = 1 by default; 0 when z NaN)

+1 means y is rich relative to x on cash flow (same sign convention as the cointegration
z-score: +1 = short y / long x).  The window includes day t and only earlier days.

Rolling CAPM beta of stock returns y on market returns x over the trailing w days (t-w+1..t)::

    beta_t = S_xy / S_xx,   S_xy = sum(x y) - sum(x) sum(y) / n,   S_xx = sum(x^2) - sum(x)^2 / n

i.e. the OLS slope of y = a + b x + e (pass excess returns for the textbook CAPM), computed
for all columns at once from rolling sums over the days where both returns are present.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from alvh_pipeline.core.indicators import pair_difference
from alvh_pipeline.core.rolling import window_count_sum, window_mean_std

__all__ = [
    "EQUITY_RISK_PREMIUM",
    "PcfDispersion",
    "pcf_dispersion",
    "rolling_capm_beta",
    "valuation_panel",
]

EQUITY_RISK_PREMIUM = 0.055  # long-run US equity risk premium assumed by the CAPM required return

_FUND_COLS = ("fiscal_period_end", "report_date", "eps_ttm", "cfps_ttm", "dps_ttm")


def _long(wide: pd.DataFrame, name: str) -> pd.DataFrame:
    out = wide.rename_axis(index="date", columns="symbol").stack().rename(name).reset_index()
    return out.dropna(subset=[name])


def valuation_panel(
    fundamentals: pd.DataFrame,
    closes: pd.DataFrame,
    rf: pd.Series | float = 0.0,
    beta: pd.DataFrame | float = 1.0,
    erp: float = EQUITY_RISK_PREMIUM,
) -> pd.DataFrame:
    """Point-in-time valuation per (date, symbol) (formulas in the module docstring).

    Parameters
    ----------
    fundamentals : the validated ``fundamentals`` table (long; ``date``, ``symbol``,
        ``report_date``, ``eps_ttm``, ``cfps_ttm``, ``dps_ttm``, ...).
    closes : wide closes, index = trading days, columns = symbols.
    rf : risk-free rate, annual fraction; a Series indexed by date (aligned to the close dates,
        carried forward over gaps) or a constant.
    beta : CAPM beta; a wide frame like ``closes`` (e.g. :func:`rolling_capm_beta`) or a constant.
    erp : equity risk premium (default 5.5 %).

    Returns a long frame sorted by (date, symbol) with ``close``, the fundamentals columns,
    ``pe``, ``pcf``, ``dividend_yield``, ``rf``, ``beta``, ``required_return`` and
    ``ddm_implied_growth``.  Days before a symbol's first report have NaN fundamentals.
    """
    f = fundamentals.copy()
    f["date"] = pd.to_datetime(f["date"]).astype("datetime64[ns]")
    f["report_date"] = pd.to_datetime(f["report_date"]).astype("datetime64[ns]")
    leak = f["report_date"] > f["date"]
    if leak.any():
        row = f.loc[leak].iloc[0]
        raise ValueError(
            f"fundamentals: {int(leak.sum())} rows with report_date after their as-of date "
            f"(e.g. {row['symbol']} as of {row['date'].date()} reports {row['report_date'].date()})"
        )
    f = f.sort_values("date")[["date", "symbol", *_FUND_COLS]]

    c = closes.copy()
    c.index = pd.DatetimeIndex(c.index).as_unit("ns")
    px = _long(c, "close").sort_values("date")
    out = pd.merge_asof(px, f, on="date", by="symbol", direction="backward")

    if isinstance(rf, pd.Series):
        r = rf.copy()
        r.index = pd.DatetimeIndex(r.index).as_unit("ns")
        r = r.sort_index().reindex(r.index.union(c.index)).ffill().reindex(c.index)
        out["rf"] = r.reindex(pd.DatetimeIndex(out["date"])).to_numpy()
    else:
        out["rf"] = float(rf)
    if isinstance(beta, pd.DataFrame):
        b = beta.copy()
        b.index = pd.DatetimeIndex(b.index).as_unit("ns")
        out = out.merge(_long(b, "beta"), on=["date", "symbol"], how="left")
    else:
        out["beta"] = float(beta)

    p = out["close"].to_numpy(np.float64)
    e, cf, d0 = (out[k].to_numpy(np.float64) for k in ("eps_ttm", "cfps_ttm", "dps_ttm"))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["pe"] = np.where(e > 0, p / e, np.nan)
        out["pcf"] = np.where(cf > 0, p / cf, np.nan)
        out["dividend_yield"] = d0 / p
        req = out["rf"].to_numpy(np.float64) + out["beta"].to_numpy(np.float64) * erp
        out["required_return"] = req
        out["ddm_implied_growth"] = np.where(d0 > 0, (req * p - d0) / (p + d0), np.nan)
    return out.sort_values(["date", "symbol"]).reset_index(drop=True)


class PcfDispersion(NamedTuple):
    dispersion: pd.DataFrame  # ln(P/CF)_y - ln(P/CF)_x
    zscore: pd.DataFrame  # trailing-window z-score of the dispersion
    direction: pd.DataFrame  # -1 / 0 / +1 (int8)


def pcf_dispersion(
    pcf_wide: pd.DataFrame,
    i: np.ndarray,
    j: np.ndarray,
    window: int = 252,
    min_periods: int | None = None,
    threshold: float = 1.0,
) -> PcfDispersion:
    """P/CF dispersion of pairs (y = column i, x = column j), its z-score and direction.

    ``pcf_wide``: P/CF per date x symbol (e.g. ``valuation_panel(...).pivot(index="date",
    columns="symbol", values="pcf")``); non-positive P/CF is treated as missing.  ``window``
    trading days (incl. today) for the z-score, ``min_periods`` defaults to ``window``.
    Formulas in the module docstring; outputs have ``(y, x)`` MultiIndex columns.
    """
    mp = window if min_periods is None else min_periods
    logp = np.log(pcf_wide.where(pcf_wide > 0).astype(np.float64))
    disp = pair_difference(logp, i, j)
    mean, std = window_mean_std(disp, window, mp, ddof=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (disp - mean) / std
    zv = z.to_numpy()
    sign = np.where(zv >= threshold, 1, np.where(zv <= -threshold, -1, 0)).astype(np.int8)
    return PcfDispersion(disp, z, pd.DataFrame(sign, index=z.index, columns=z.columns))


def rolling_capm_beta(
    stock_returns: pd.DataFrame,
    market_returns: pd.Series,
    window: int = 60,
    min_periods: int | None = None,
) -> pd.DataFrame:
    """Rolling OLS beta of every stock on the market over the trailing ``window`` rows.

    ``beta_t = S_xy / S_xx`` from rolling sums over the days t-window+1..t where both the
    stock's and the market's return are present (at least ``min_periods`` of them, default
    ``window``); NaN otherwise or when the market return is constant in the window
    (``S_xx <= 1e-12 sum(x^2)``).
    """
    mp = window if min_periods is None else min_periods
    m = market_returns.reindex(stock_returns.index).astype(np.float64)
    y = stock_returns.astype(np.float64)
    x = pd.DataFrame(np.broadcast_to(m.to_numpy()[:, None], y.shape), index=y.index, columns=y.columns)
    both = y.notna() & x.notna()
    x, y = x.where(both), y.where(both)
    n, sx = window_count_sum(x, window)  # the windows' own sums (`core.rolling`)

    def rsum(a: pd.DataFrame) -> pd.DataFrame:
        return window_count_sum(a, window)[1]

    sy, sxx_raw = rsum(y), rsum(x * x)
    sxy = rsum(x * y) - sx * sy / n
    sxx = sxx_raw - sx * sx / n
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = sxy / sxx
    # a market return constant over the window leaves only rounding noise in S_xx
    return beta.where((n >= mp) & (sxx > 1e-12 * sxx_raw))
