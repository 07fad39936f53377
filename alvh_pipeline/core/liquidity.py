"""Liquidity gates for the hedge (DESIGN §5 "Liquidity filter"): depth quick ratio of the VIX
futures months an order uses, QQQ / IWM volume participation, and an order-flow
liquidity-evaporation warning.  Inputs are the validated long tables; outputs are per date.

Depth quick ratio on day t, for the months M used by the order (month_index, 1 = front)::

    top_of_book_t = sum_{m in M} min(bid_size_{m,t}, ask_size_{m,t})
    quick_ratio_t = top_of_book_t / order_contracts

(the smaller side is what a round trip can rely on).  >= 1 means the displayed top of book
covers the order; NaN when any month in M is not quoted that day (a data gap is not depth).

Volume participation of ETF e on day t (window w = 20 by default)::

    participation_{e,t} = V_{e,t} / mean(V_{e,t-w} .. V_{e,t-1})

The trailing average *excludes* day t (today's volume is compared with what came before),
uses only earlier days (no look-ahead) and needs w full earlier days, else NaN.
``participation_ok_t`` = every ETF's participation >= threshold, default 0.8: volume is not in a
drought relative to its own recent norm.  (1.0 would ask for above-average volume on both ETFs,
which ordinary day-to-day dispersion of volume denies on most normal days.)

Liquidity-evaporation warning from the front-month VX quote (window w = 60)::

    rel_spread_t = (ask_t - bid_t) / ((ask_t + bid_t) / 2)
    depth_t      = ln min(bid_size_t, ask_size_t)
    spread_z_t   = (rel_spread_t - mean(rel_spread_{t-w..t-1})) / std(rel_spread_{t-w..t-1})
    depth_loss_z_t = -(depth_t - mean(depth_{t-w..t-1})) / std(depth_{t-w..t-1})
    warning_t    = spread_z_t > 2 and depth_loss_z_t > 2

Trailing windows exclude day t (so a shock does not dilute its own baseline) and need
``min_periods`` (default w) earlier days; std is the sample std (ddof=1).  A baseline with zero
variance gives +/-inf for any move off it (and NaN for none).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from alvh_pipeline.core.rolling import trailing_zscore, window_mean_std

__all__ = ["depth_quick_ratio", "liquidity_evaporation", "trailing_zscore", "volume_participation"]


def _by_date_month(futures: pd.DataFrame, column: str, months: Sequence[int]) -> pd.DataFrame:
    f = futures[futures["month_index"].isin(list(months))]
    wide = f.pivot_table(index="date", columns="month_index", values=column, aggfunc="first")
    wide.index = pd.DatetimeIndex(wide.index)
    all_dates = pd.DatetimeIndex(pd.to_datetime(futures["date"]).unique()).sort_values()
    return wide.reindex(index=all_dates, columns=list(months))


def depth_quick_ratio(
    futures: pd.DataFrame,
    order_contracts: float | pd.Series,
    months: Sequence[int] = (1, 2),
) -> pd.Series:
    """Top-of-book contracts in ``months`` divided by the contracts the order needs, per date.

    ``futures``: the validated ``vix_futures`` table (``date``, ``month_index``, ``bid_size``,
    ``ask_size``).  ``order_contracts``: contracts needed (> 0), a constant or a Series by date.
    Formula in the module docstring.
    """
    if np.isscalar(order_contracts) and not float(order_contracts) > 0:
        raise ValueError(f"order_contracts must be > 0, got {order_contracts}")
    bid = _by_date_month(futures, "bid_size", months).astype(np.float64)
    ask = _by_date_month(futures, "ask_size", months).astype(np.float64)
    side = np.minimum(bid, ask)  # NaN if either side (or the month) is missing
    top = side.sum(axis=1).where(side.notna().all(axis=1))
    if isinstance(order_contracts, pd.Series):
        need = order_contracts.copy()
        need.index = pd.DatetimeIndex(need.index)
        need = need.reindex(top.index).astype(np.float64).where(lambda s: s > 0)
    else:
        need = float(order_contracts)
    return (top / need).rename("depth_quick_ratio")


def volume_participation(
    equity_bars: pd.DataFrame,
    symbols: Sequence[str] = ("QQQ", "IWM"),
    window: int = 20,
    threshold: float = 0.8,
) -> pd.DataFrame:
    """Each ETF's volume over its trailing ``window``-day average (excluding today) and the
    combined ``participation_ok`` flag (all >= ``threshold``); formula in the module docstring.

    Returns a frame indexed by date with one column per symbol and ``participation_ok``
    (False where any ratio is NaN).
    """
    bars = equity_bars[equity_bars["symbol"].isin(list(symbols))]
    vol = bars.pivot_table(index="date", columns="symbol", values="volume", aggfunc="first")
    vol.index = pd.DatetimeIndex(vol.index)
    vol = vol.reindex(columns=list(symbols)).astype(np.float64).sort_index()
    avg, _ = window_mean_std(vol.shift(1), window)
    ratio = vol / avg
    ratio["participation_ok"] = (ratio[list(symbols)] >= threshold).all(axis=1)
    ratio.columns.name = None
    return ratio


def liquidity_evaporation(
    futures: pd.DataFrame,
    window: int = 60,
    z_threshold: float = 2.0,
    month: int = 1,
    min_periods: int | None = None,
) -> pd.DataFrame:
    """Order-flow liquidity-evaporation warning from the ``month`` (default front) VX quote.

    ``futures``: validated ``vix_futures`` (``date``, ``month_index``, ``bid``, ``ask``,
    ``bid_size``, ``ask_size``).  Returns per date ``rel_spread``, ``depth`` (contracts,
    min of the two sides), ``spread_z``, ``depth_loss_z`` and ``warning`` (both z >
    ``z_threshold``); formulas in the module docstring.
    """
    cols = {k: _by_date_month(futures, k, (month,))[month].astype(np.float64)
            for k in ("bid", "ask", "bid_size", "ask_size")}
    mid = (cols["ask"] + cols["bid"]) / 2.0
    rel = (cols["ask"] - cols["bid"]) / mid.where(mid > 0)
    depth = np.minimum(cols["bid_size"], cols["ask_size"])
    log_depth = np.log(depth.where(depth > 0))
    sz = trailing_zscore(rel, window, min_periods)
    dz = -trailing_zscore(log_depth, window, min_periods)
    return pd.DataFrame(
        {
            "rel_spread": rel, "depth": depth, "spread_z": sz, "depth_loss_z": dz,
            "warning": (sz > z_threshold) & (dz > z_threshold),
        }
    )
