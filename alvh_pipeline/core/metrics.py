"""Performance metrics of a daily return series, XIRR of dated capital flows, the hedge's cost of carry.

Used by the attribution layer (DESIGN §4 ``attribution/performance``), once per mode (steward /
promoter). Every return metric reproduces **quantstats 0.0.86** (``quantstats.stats``) on the same
daily series, same ``periods``, to 1e-10 (``tests/core/test_metrics.py``); quantstats itself is a
test dependency only. The conventions, named after the quantstats function each one matches:

* Returns are simple daily returns; NaN is a missing observation: statistics skip it, the equity
  curve carries the last value through it (``utils._prepare_returns``, ``stats.compsum``).
* Risk-free rate: an annual rate de-annualized geometrically, ``(1 + rf) ** (1 / periods) - 1``,
  and subtracted from each return (``utils.to_excess_returns``). A Series is a time-varying rate:
  reindexed onto the return dates, then forward- then back-filled, NaN -> 0. As in quantstats a
  scalar rf is applied only when ``rf > 0`` (``utils._rf_is_nonzero``): a negative scalar is
  ignored. Only Sharpe and Sortino use rf; CAGR, Calmar, VaR/CVaR, volatility and win rate do not.
* Annualization by ``periods`` (252) trading periods a year: volatility and ratios by
  ``sqrt(periods)``, CAGR over ``years = observations / periods`` (``stats.cagr`` in 0.0.86 counts
  observations; it does not use the calendar span of the index / 365).
* Drawdown on the compounded equity curve started at 1.0 one period before the first return, the
  base dated ``index[0] - index.freq`` (one calendar day when the index has no freq): quantstats'
  "phantom baseline" (``stats.max_drawdown``), so a loss on day one counts.

Return-series helpers raise ``ValueError`` on +-inf (quantstats would silently turn it into NaN; an
infinite return is an upstream division by zero, not a missing day). quantstats also reads an
all-non-negative series whose maximum exceeds 1 as *prices*; these functions always read returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import ndtri

__all__ = [
    "LEVELS",
    "PERIODS",
    "XIRR_GUESS",
    "cagr",
    "calmar",
    "equity_curve",
    "excess_returns",
    "hedge_cost_of_carry",
    "max_drawdown",
    "performance",
    "sharpe",
    "sortino",
    "total_return",
    "var_cvar",
    "volatility",
    "win_rate",
    "xirr",
]

PERIODS = 252
LEVELS = (0.95, 0.99)
# Excel's XIRR and pyxirr start Newton at 10 %: among several IRRs, the closest to it is reported.
XIRR_GUESS = 0.1

# XIRR root search on x = log(1 + r): from 1 + r = e^-32 (about pyxirr's lowest bracket,
# r = -0.99999999999999) to r = 1e6 (pyxirr's highest); a step of 0.005 in x is 0.5 % in 1 + r.
_XIRR_X_GRID = np.arange(-32.0, np.log1p(1e6), 0.005)


def _returns(returns: pd.Series | np.ndarray | Sequence[float]) -> pd.Series:
    """Float Series of returns; NaN kept as missing, +-inf refused, at least one observation."""
    r = pd.Series(returns, dtype=float) if not isinstance(returns, pd.Series) else returns.astype(float)
    if np.isinf(r.to_numpy()).any():
        raise ValueError("returns hold +-inf: an upstream division by zero, not a missing day")
    if r.count() == 0:
        raise ValueError("returns hold no observation")
    return r


def _dated_returns(returns: pd.Series) -> pd.Series:
    r = _returns(returns)
    if not isinstance(r.index, pd.DatetimeIndex):
        raise TypeError("returns need a DatetimeIndex (drawdown dates, the equity curve's base date)")
    if not (r.index.is_monotonic_increasing and r.index.is_unique):
        raise ValueError("returns' dates must be increasing and unique")
    return r


def excess_returns(returns: pd.Series, rf_annual: float | pd.Series = 0.0, periods: int = PERIODS) -> pd.Series:
    """Returns minus the de-annualized risk-free rate: ``r_t - ((1 + rf_t) ** (1 / periods) - 1)``.

    quantstats' ``utils.to_excess_returns`` via ``_prepare_returns(returns, rf, periods)``: a Series
    rf is ``rf.reindex(returns.index).ffill().bfill().fillna(0)`` (a print dated off the return
    dates is dropped before the fill); a scalar rf is applied only when ``rf > 0``
    (``utils._rf_is_nonzero``), so a negative scalar rate leaves the returns unchanged.
    """
    r = _returns(returns)
    if isinstance(rf_annual, pd.Series):
        if not bool((rf_annual.fillna(0) != 0).any()):
            return r
        rf: float | pd.Series = rf_annual.astype(float).reindex(r.index).ffill().bfill().fillna(0.0)
    else:
        if not rf_annual > 0:
            return r
        rf = float(rf_annual)
    return (r - (np.power(1.0 + rf, 1.0 / periods) - 1.0)).rename(r.name)


def total_return(returns: pd.Series) -> float:
    """Compounded total return ``prod(1 + r_t) - 1`` over observed days (``stats.comp``)."""
    return float(_returns(returns).add(1.0).prod() - 1.0)


def cagr(returns: pd.Series, periods: int = PERIODS) -> float:
    """Compound annual growth rate ``(1 + R) ** (1 / years) - 1``, ``years = N / periods``.

    ``stats.cagr`` of quantstats 0.0.86: R is the compounded total return, N the number of observed
    (non-NaN) returns, so a year is ``periods`` trading days, not 365 calendar days of the index
    span. No risk-free rate is subtracted (quantstats accepts ``rf`` and ignores it). Terminal
    wealth below zero (a return below -100 %) has no real growth rate: NaN.
    """
    r = _returns(returns)
    wealth = total_return(r) + 1.0
    if wealth < 0:
        return float("nan")
    return float(abs(wealth) ** (1.0 / (r.count() / periods)) - 1.0)


def volatility(returns: pd.Series, periods: int = PERIODS) -> float:
    """Annualized volatility ``std(r, ddof=1) * sqrt(periods)`` (``stats.volatility``)."""
    return float(_returns(returns).std(ddof=1) * np.sqrt(periods))


def sharpe(returns: pd.Series, rf_annual: float | pd.Series = 0.0, periods: int = PERIODS) -> float:
    """Annualized Sharpe ratio ``mean(x) / std(x, ddof=1) * sqrt(periods)``, x = excess returns.

    ``stats.sharpe`` (smart=False): the mean and the sample deviation are both of the excess
    returns (see ``excess_returns`` for the rf convention).
    """
    x = excess_returns(returns, rf_annual, periods)
    return float(x.mean() / x.std(ddof=1) * np.sqrt(periods))


def sortino(returns: pd.Series, rf_annual: float | pd.Series = 0.0, periods: int = PERIODS) -> float:
    """Annualized Sortino ratio ``mean(x) / DD * sqrt(periods)``, ``DD = sqrt(sum(min(x, 0)^2) / N)``.

    ``stats.sortino`` (Red Rock Capital, "Sortino: a sharper ratio"): the downside deviation is
    taken around a target of 0 on the excess returns x, over ALL N observed returns (not N - 1,
    not only the losing days). No losing day (DD = 0): NaN.
    """
    x = excess_returns(returns, rf_annual, periods)
    downside = float(np.sqrt((x[x < 0] ** 2).sum() / x.count()))
    if downside == 0:
        return float("nan")
    return float(x.mean() / downside * np.sqrt(periods))


def win_rate(returns: pd.Series) -> float:
    """Share of winning days among days that moved: ``#{r > 0} / #{r != 0}`` (``stats.win_rate``).

    Flat days (r = 0) and missing days are left out. With no day that moved quantstats returns 0.0
    (not NaN); matched.
    """
    r = _returns(returns).dropna()
    moved = int((r != 0).sum())
    return float((r > 0).sum() / moved) if moved else 0.0


def equity_curve(returns: pd.Series, start: float = 1.0) -> pd.Series:
    """Compounded equity ``start * prod_{s <= t}(1 + r_s)`` with the base ``start`` prepended.

    The base is dated one period before the first return: ``index[0] - index.freq``, one calendar
    day when the index has no freq (quantstats' phantom baseline in ``stats.max_drawdown`` /
    ``to_drawdown_series``). Missing returns are flat days (``stats.compsum`` fills 0).
    """
    r = _dated_returns(returns)
    step = r.index.freq or pd.Timedelta(days=1)
    base = pd.Series([float(start)], index=pd.DatetimeIndex([r.index[0] - step]))
    return pd.concat([base, start * r.fillna(0.0).add(1.0).cumprod()])


def max_drawdown(
    equity: pd.Series,
) -> tuple[float, pd.Timestamp | None, pd.Timestamp | None, pd.Timestamp | None]:
    """Deepest fall of equity from its running peak: ``min_t(E_t / max_{s <= t} E_s) - 1``.

    Returns ``(depth, peak, trough, recovery)``: depth <= 0 as a fraction (``stats.max_drawdown``
    on the same curve); trough = first date of the deepest point; peak = the last date on or before
    the trough at which equity stood at its running maximum (a flat top counts from its last day);
    recovery = the first date after the trough with equity back at or above the peak (exact
    comparison), None if it never gets there. Relative to ``stats.drawdown_details``, whose
    ``start`` and ``end`` are the first and last days *in* drawdown: peak is the session before
    its start, recovery the session after its end, trough its ``valley``. No drawdown:
    ``(0.0, None, None, None)``. NaN equity marks are dropped. From returns, pass
    ``equity_curve(returns)`` so a first-day loss counts.
    """
    e = equity.dropna().astype(float)
    if e.empty:
        raise ValueError("equity holds no observation")
    if not (e.index.is_monotonic_increasing and e.index.is_unique):
        raise ValueError("equity's dates must be increasing and unique")
    v = e.to_numpy()
    if v[0] <= 0:
        raise ValueError("equity must start positive: a drawdown is measured from a positive peak")
    running_peak = np.maximum.accumulate(v)
    ratio = v / running_peak
    i_trough = int(np.argmin(ratio))
    depth = float(ratio[i_trough] - 1.0)
    if depth >= 0:
        return 0.0, None, None, None
    peak_value = running_peak[i_trough]
    i_peak = int(np.flatnonzero(v[: i_trough + 1] == peak_value)[-1])
    back = np.flatnonzero(v[i_trough + 1 :] >= peak_value)
    recovery = e.index[i_trough + 1 + int(back[0])] if back.size else None
    return depth, e.index[i_peak], e.index[i_trough], recovery


def calmar(returns: pd.Series, periods: int = PERIODS) -> float:
    """Calmar ratio ``CAGR / |max drawdown|`` over the whole series (``stats.calmar``).

    CAGR as in ``cagr`` (no rf), the drawdown of ``equity_curve(returns)``. No drawdown: +-inf
    (NaN for a zero CAGR), the numpy division quantstats does.
    """
    depth = max_drawdown(equity_curve(returns))[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(cagr(returns, periods)) / abs(depth))


def var_cvar(
    returns: pd.Series | np.ndarray | Sequence[float],
    level: float,
    method: Literal["historical", "parametric"],
) -> tuple[float, float]:
    """One-period Value at Risk and Conditional VaR (expected shortfall) at confidence ``level``.

    Both are returns at the left tail (negative = a loss), alpha = 1 - level; NaN returns skipped.

    * ``"parametric"`` (Gaussian, variance-covariance): ``VaR = mu + sigma * Phi^-1(alpha)``,
      ``CVaR = mu - sigma * phi(Phi^-1(alpha)) / alpha``, mu the mean and sigma the sample (ddof=1)
      deviation of the daily returns, no sigma multiplier: ``stats.value_at_risk(returns, sigma=1,
      confidence=level)`` and ``stats.conditional_value_at_risk(..., method="parametric")``.
      A constant series (sigma = 0) gives ``(mu, mu)``.
    * ``"historical"``: VaR = the empirical alpha-quantile with linear interpolation (Hyndman-Fan
      type 7, pandas' ``Series.quantile`` default), CVaR = the mean of the returns at or below it:
      ``stats.conditional_value_at_risk(..., method="historical")`` and its threshold (quantstats
      has no separate historical VaR).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level is a confidence in (0, 1), e.g. 0.95; got {level}")
    r = _returns(returns).dropna()
    alpha = 1.0 - level
    if method == "historical":
        q = float(r.quantile(alpha))
        return q, float(r[r <= q].mean())
    if method == "parametric":
        mu, sd = float(r.mean()), float(r.std(ddof=1))
        if sd == 0 or np.isnan(sd):
            return mu, mu
        # scipy.stats.norm's ppf / pdf as it computes them (ndtri(q) * scale + loc; exp(-z²/2) / sqrt(2 pi)),
        # bit for bit (tested): scipy.stats costs ~0.6 s of every process's import
        z = ndtri(alpha)
        pdf = np.exp(-z**2 / 2.0) / np.sqrt(2 * np.pi)
        return float(z * sd + mu), float(mu - sd * pdf / alpha)
    raise ValueError(f"method must be 'historical' or 'parametric', got {method!r}")


def performance(
    returns: pd.Series, rf_annual: float | pd.Series = 0.0, periods: int = PERIODS
) -> dict[str, float | str | None]:
    """All metrics of one daily return series (one mode), as a flat dict.

    Keys: ``start``, ``end`` (ISO dates of the first / last return), ``observations`` (non-NaN
    returns), ``total_return``, ``cagr``, ``volatility``, ``sharpe``, ``sortino``, ``calmar``,
    ``max_drawdown`` (< 0), ``max_drawdown_peak`` / ``_trough`` / ``_recovery`` (ISO dates on
    ``equity_curve(returns)``; the peak may be its base date; recovery None if not recovered),
    ``var_{95,99}_{historical,parametric}``, ``cvar_{95,99}_{historical,parametric}`` and
    ``win_rate``. Conventions: the functions of the same names and the module docstring; rf is
    used by ``sharpe`` and ``sortino`` only, as in quantstats.
    """
    r = _dated_returns(returns)
    depth, peak, trough, recovery = max_drawdown(equity_curve(r))
    out: dict[str, float | str | None] = {
        "start": r.index[0].strftime("%Y-%m-%d"),
        "end": r.index[-1].strftime("%Y-%m-%d"),
        "observations": int(r.count()),
        "total_return": total_return(r),
        "cagr": cagr(r, periods),
        "volatility": volatility(r, periods),
        "sharpe": sharpe(r, rf_annual, periods),
        "sortino": sortino(r, rf_annual, periods),
        "calmar": calmar(r, periods),
        "max_drawdown": depth,
        "max_drawdown_peak": None if peak is None else peak.strftime("%Y-%m-%d"),
        "max_drawdown_trough": None if trough is None else trough.strftime("%Y-%m-%d"),
        "max_drawdown_recovery": None if recovery is None else recovery.strftime("%Y-%m-%d"),
    }
    for level in LEVELS:
        for method in ("historical", "parametric"):
            var, cvar = var_cvar(r, level, method)
            out[f"var_{round(level * 100)}_{method}"] = var
            out[f"cvar_{round(level * 100)}_{method}"] = cvar
    out["win_rate"] = win_rate(r)
    return out


def _xnpv_scaled(x: np.ndarray | float, t: np.ndarray, amounts: np.ndarray) -> np.ndarray:
    """``NPV(r) = sum_i a_i (1 + r)^(-t_i)`` at ``x = log(1 + r)``, times ``e^(x t_max)`` when x < 0.

    The positive factor keeps the sign and the roots while every exponent stays <= 0, so no term
    overflows at rates near -100 % or over long spans.
    """
    x = np.asarray(x, dtype=float)
    shift = np.where(x < 0, t.max(), 0.0)
    return np.exp(np.multiply.outer(x, -t) + (x * shift)[..., None]) @ amounts


def xirr(dates: Sequence, amounts: Sequence[float]) -> float:
    """Annual IRR of dated cash flows: the r with ``sum_i a_i / (1 + r)^((d_i - d_0) / 365) = 0``.

    XIRR on actual dates, day count Actual/365 Fixed, d_0 the earliest date (Excel's XIRR,
    ``pyxirr.xirr`` with its default ``DayCount.ACT_365F``); time of day is dropped. Sign
    convention, the investor's: deposits (money into the strategy) negative, withdrawals and the
    final equity positive; the opposite signs give the same rate. Rates are searched on
    -100 % < r <= 1e6 by brackets of sign change of the NPV on a grid in log(1 + r), each solved
    with scipy's ``brentq``; with several roots (flows changing sign more than once) the one
    closest to ``XIRR_GUESS`` = 10 % is returned, the root a Newton solver started at Excel's and
    pyxirr's 10 % guess usually finds. NaN when the flows do not change sign (pyxirr raises
    ``InvalidPaymentsError``) or the NPV has no sign-changing root (pyxirr returns None); a double
    (tangent) root, or two roots within 0.5 % of each other in 1 + r, is not separated. The root is
    exact to double precision; pyxirr 0.10.8 stops its Newton iteration up to ~5e-10 away from it.
    """
    a = np.asarray(amounts, dtype=float)
    d = pd.DatetimeIndex(pd.to_datetime(list(dates))).normalize()
    if a.ndim != 1 or len(a) != len(d):
        raise ValueError(f"{len(d)} dates and {a.size} amounts: one amount per date")
    if len(a) and (d.isna().any() or not np.isfinite(a).all()):
        raise ValueError("dates and amounts must be given (no NaT / NaN / inf)")
    if not ((a > 0).any() and (a < 0).any()):
        return float("nan")
    t = ((d - d.min()) / pd.Timedelta(days=1)).to_numpy(dtype=float) / 365.0
    g = _xnpv_scaled(_XIRR_X_GRID, t, a)
    sign = np.sign(g)
    roots = list(_XIRR_X_GRID[sign == 0])
    for i in np.flatnonzero(sign[:-1] * sign[1:] < 0):
        roots.append(
            optimize.brentq(
                lambda x: float(_xnpv_scaled(x, t, a)),
                _XIRR_X_GRID[i],
                _XIRR_X_GRID[i + 1],
                xtol=1e-15,
                rtol=4 * np.finfo(float).eps,
                maxiter=200,
            )
        )
    if not roots:
        return float("nan")
    rates = np.expm1(np.asarray(roots))
    return float(rates[np.argmin(np.abs(rates - XIRR_GUESS))])


def _window_total(flow: float | pd.Series, name: str, window: pd.DatetimeIndex | None) -> float:
    """Sum of a USD flow; a dated Series must lie inside the equity window."""
    if isinstance(flow, pd.Series):
        if window is not None and isinstance(flow.index, pd.DatetimeIndex) and len(flow):
            if flow.index.min() < window[0] or flow.index.max() > window[-1]:
                span = f"{window[0]:%Y-%m-%d}..{window[-1]:%Y-%m-%d}"
                raise ValueError(f"{name} has dates outside the equity window {span}")
        total = float(flow.sum())
    else:
        total = float(flow)
    if not np.isfinite(total):
        raise ValueError(f"{name} is not finite")
    return total


def hedge_cost_of_carry(
    costs_usd: float | pd.Series,
    roll_usd: float | pd.Series,
    decay_usd: float | pd.Series,
    equity_series: pd.Series,
    periods: int = PERIODS,
) -> float:
    """The hedge's cost of carry (the methodology's "WACC of the hedge"), a fraction of equity a year.

    ``carry = (C + R + D) / years / mean(E)``, ``years = N / periods``:

    * C = transaction costs (commissions, spreads paid), R = roll cost of the VX futures (the loss
      from futures converging to spot: roll yield), D = time-value (extrinsic) decay of the option
      layers, each in USD over the window of ``equity_series``, as a total or a daily Series
      (summed; dated entries must fall inside the window). A cost is positive; a carry gain
      (a backwardated roll) enters negative.
    * E = the daily equity marks (NaN dropped), N their number; the window holds N sessions of
      carry, ``periods`` a year (the ``cagr`` convention), and mean(E) is their arithmetic mean.

    A fraction per year: 0.02 is 2 % of average equity a year.
    """
    e = equity_series.dropna().astype(float)
    if e.empty:
        raise ValueError("equity_series holds no observation")
    avg = float(e.mean())
    if avg <= 0:
        raise ValueError("average equity must be positive")
    window = e.index if isinstance(e.index, pd.DatetimeIndex) else None
    total = sum(
        _window_total(flow, name, window)
        for flow, name in ((costs_usd, "costs_usd"), (roll_usd, "roll_usd"), (decay_usd, "decay_usd"))
    )
    return total / (len(e) / periods) / avg
