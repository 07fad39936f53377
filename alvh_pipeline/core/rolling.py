"""Trailing-window statistics whose value on a day depends on that day's window only.

pandas' ``rolling().sum() / mean() / std()`` update running sums as the window slides (add the
new value, remove the old one), so the rounding a value carries depends on where the series
began: the same day computed in a nightly run (its read starts a look-back before that day) and
inside a year's backfill (its read starts a look-back before January) differed in the last bits
(up to ~5e-15 relative), and so did every signal and book downstream of it.

Here the rows are cut into blocks of ``window`` consecutive sessions at fixed places of the
trading calendar (block = session number // window, the session number of a frame's first date
from `calendar.all_sessions`; a RangeIndex counts by its own numbers, any other index from its
first row). Within each
block two running statistics are kept, each always accumulated from the same end of the block:
a prefix from the block's first row forward and a suffix from its last row backward (Welford's
count / mean / sum of squared deviations, and the plain sum). A full window ending on row t
starts in t's block or the one before, so it is the earlier block's suffix from the window's
first row merged with the prefix of t's block up to t (Chan et al.'s pairwise merge):

    n = n_a + n_b,   d = mean_b - mean_a,   mean = mean_a + d n_b / n,
    M2 = M2_a + M2_b + d^2 n_a n_b / n,     std = sqrt(M2 / (n - ddof)),   sum = sum_a + sum_b

Both parts accumulate the window's own rows only, each from a block boundary that does not move
with the read, so a day's value is the same bits whatever day the run's read starts (for a window
that lies inside the read). NaN values are skipped as pandas skips them (``n`` counts the others); a value is NaN
where ``n < min_periods`` or, for the deviation, ``n <= ddof``. Cost: one pass forward and one
backward over the rows, each a few numpy operations over all columns at once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from alvh_pipeline.core.calendar import all_sessions

Panel = pd.Series | pd.DataFrame


class _Stats(NamedTuple):
    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray  # sum of squared deviations from the mean
    total: np.ndarray


def _as_2d(x: Panel) -> np.ndarray:
    return x.to_numpy(dtype=np.float64).reshape(len(x), -1)


def _like(x: Panel, values: np.ndarray) -> Panel:
    if isinstance(x, pd.Series):
        return pd.Series(values[:, 0], index=x.index, name=x.name)
    return pd.DataFrame(values, index=x.index, columns=x.columns)


def _session_numbers(index: pd.Index) -> np.ndarray:
    """Each row's place on the trading calendar: the first date's session number, then one per row
    (a frame of consecutive sessions); a RangeIndex's own numbers; 0, 1, ... for any other index."""
    first = 0
    if isinstance(index, pd.DatetimeIndex) and len(index):
        first = int(all_sessions().searchsorted(index[0]))
    elif isinstance(index, pd.RangeIndex) and index.step == 1:
        first = index.start
    return first + np.arange(len(index))


def _accumulate(values: np.ndarray, restart: np.ndarray, order: np.ndarray) -> _Stats:
    """Welford's running statistics over the rows in `order`, restarted at rows where `restart`."""
    n, k = values.shape
    out = _Stats(*(np.empty((n, k)) for _ in range(4)))
    count, mean, m2, total = np.zeros(k), np.zeros(k), np.zeros(k), np.zeros(k)
    for t in order:
        if restart[t]:
            count, mean, m2, total = np.zeros(k), np.zeros(k), np.zeros(k), np.zeros(k)
        x = values[t]
        present = ~np.isnan(x)
        count = count + present
        delta = np.where(present, x - mean, 0.0)
        mean = mean + np.where(present, delta / np.maximum(count, 1.0), 0.0)
        m2 = m2 + delta * np.where(present, x - mean, 0.0)
        total = total + np.where(present, x, 0.0)
        out.count[t], out.mean[t], out.m2[t], out.total[t] = count, mean, m2, total
    return out


def _window_stats(x: Panel, window: int) -> _Stats:
    """Count, mean, M2 and sum of the non-NaN values of each row's trailing `window` rows (module
    doc: a suffix of the block before merged with a prefix of the row's own block)."""
    values = _as_2d(x)
    n = len(values)
    if n == 0:
        return _Stats(*(np.zeros(values.shape) for _ in range(4)))
    block = _session_numbers(x.index) // window
    first_of_block = np.r_[True, block[1:] != block[:-1]]
    last_of_block = np.r_[block[1:] != block[:-1], True]
    prefix = _accumulate(values, first_of_block, np.arange(n))
    suffix = _accumulate(values, last_of_block, np.arange(n - 1, -1, -1))
    start = np.maximum(np.arange(n) - window + 1, 0)  # the window's first row inside the frame
    one_block = block[start] == block
    a = _Stats(*(np.where(one_block[:, None], 0.0, part[start]) for part in suffix))  # the earlier block's part
    b = prefix
    count = a.count + b.count
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = b.mean - a.mean
        mean = np.where(a.count == 0, b.mean, np.where(b.count == 0, a.mean, a.mean + delta * b.count / count))
        m2 = np.where((a.count == 0) | (b.count == 0), a.m2 + b.m2,
                      a.m2 + b.m2 + delta * delta * a.count * b.count / count)
    return _Stats(count, mean, m2, a.total + b.total)


def window_count_sum(x: Panel, window: int) -> tuple[Panel, Panel]:
    """(non-NaN count, sum of the non-NaN values) of each trailing window (0 and 0.0 for a window
    with no value)."""
    stats = _window_stats(x, window)
    return _like(x, stats.count), _like(x, stats.total)


def window_sum(x: Panel, window: int, min_periods: int = 1) -> Panel:
    """``x.rolling(window, min_periods).sum()``, each window on its own (module doc)."""
    stats = _window_stats(x, window)
    return _like(x, np.where(stats.count >= max(min_periods, 1), stats.total, np.nan))


def window_mean_std(x: Panel, window: int, min_periods: int | None = None, ddof: int = 1) -> tuple[Panel, Panel]:
    """``x.rolling(window, min_periods)``'s ``mean()`` and ``std(ddof)``, each window on its own
    (module doc)."""
    mp = max(window if min_periods is None else min_periods, 1)
    stats = _window_stats(x, window)
    ok = stats.count >= mp
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(stats.m2 / (stats.count - ddof))
    return _like(x, np.where(ok, stats.mean, np.nan)), _like(x, np.where(ok & (stats.count > ddof), std, np.nan))


def window_product(x: Panel, window: int) -> Panel:
    """The product of each trailing window's ``window`` values, in row order; NaN where one is NaN
    or the window is not full (a compounded return over the window, whatever day the series
    starts). Each window is multiplied on its own: ``window`` operations per value, for a series."""
    values = _as_2d(x)
    out = np.full(values.shape, np.nan)
    if len(values) >= window:
        out[window - 1:] = np.prod(sliding_window_view(values, window, axis=0), axis=-1)
    return _like(x, out)


def trailing_zscore(x: Panel, window: int, min_periods: int | None = None) -> Panel:
    """``(x_t - mean(x_{t-w..t-1})) / std(x_{t-w..t-1}, ddof=1)``: today against the previous
    ``window`` observations only (at least ``min_periods`` of them, default ``window``)."""
    mean, std = window_mean_std(x.shift(1), window, min_periods)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (x - mean) / std
