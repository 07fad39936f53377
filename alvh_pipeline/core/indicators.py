"""Technical indicators on wide price panels (rows = trading days, columns = symbols).

Everything is vectorised across symbols: the recursions (``ewm_mean``) step through the rows
once, each step one numpy operation over every column, with pandas' ``ewm(adjust=False,
ignore_na=True).mean()`` arithmetic to the bit (pandas applies its compiled recursion column by
column: a (250 × 25,000) panel of per-day windows took ~1 s per call, ~20 ms here).  Each column
is processed over its own *valid* observations: leading NaNs (a name not yet listed) delay that
column's warm-up, interior NaNs (a missing bar) are skipped -- the next change is measured from
the last valid close -- and the output is NaN wherever the input close is NaN.

RSI (J. Welles Wilder, *New Concepts in Technical Trading Systems*, 1978), period ``n``::

    d_t  = C_t - C_{t-1},   U_t = max(d_t, 0),   D_t = max(-d_t, 0)
    AU_n = (U_1 + ... + U_n) / n,   AD_n = (D_1 + ... + D_n) / n        (simple mean seed)
    AU_t = (AU_{t-1} (n - 1) + U_t) / n,   AD_t likewise                (Wilder smoothing, t > n)
    RS_t = AU_t / AD_t,   RSI_t = 100 - 100 / (1 + RS_t) = 100 AU_t / (AU_t + AD_t)

RSI is NaN for the first ``n`` closes of a column (the first value sits on the (n+1)-th close);
``AD_t = 0 < AU_t`` gives 100, ``AU_t = 0 < AD_t`` gives 0, ``AU_t = AD_t = 0`` (flat prices)
gives the neutral 50.

MACD (Gerald Appel), EMAs with ``alpha = 2 / (span + 1)`` and ``adjust=False``::

    EMA_0 = x_0,   EMA_t = alpha x_t + (1 - alpha) EMA_{t-1}        (pandas ewm(adjust=False) seed)
    MACD_t   = EMA_fast(C)_t - EMA_slow(C)_t
    SIGNAL_t = EMA_signal(MACD)_t          (seeded at MACD_0 = 0, the unmasked line)
    HIST_t   = MACD_t - SIGNAL_t

The recursions start at a column's first valid close (so ``MACD_0 = 0``); with ``warmup=True``
the outputs are masked to NaN until the EMAs have seen enough data: the MACD line for the first
``slow - 1`` valid closes, the signal line and histogram for the first ``slow + signal - 2``.
Masking does not change the values after warm-up.

Pairs follow the cointegration screen's convention: ``y = column i``, ``x = column j``;
divergence = indicator(y) - indicator(x).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = ["MACD", "PairDivergence", "ewm_mean", "macd", "pair_difference", "pair_divergence", "rsi_wilder"]


def _as_frame(x: pd.DataFrame | pd.Series) -> tuple[pd.DataFrame, bool]:
    if isinstance(x, pd.Series):
        return x.to_frame(), True
    return x, False


def ewm_mean(x: pd.DataFrame, *, alpha: float | None = None, span: float | None = None) -> pd.DataFrame:
    """``x.ewm(alpha=alpha | span=span, adjust=False, ignore_na=True).mean()``, bit for bit, with
    the loop over rows instead of columns. pandas' recursion (window/aggregations.pyx ``ewm``) per
    column: the first valid value seeds the average; each later valid value ``c`` gives
    ``w = ((1 - a) w + a c) / ((1 - a) + a)`` (unchanged when ``w == c``), a NaN leaves it as it
    is; ``a = 1 / (1 + com)``, the centre of mass derived as pandas derives it."""
    com = (1.0 - alpha) / alpha if alpha is not None else (float(span) - 1) / 2.0
    a = 1.0 / (1.0 + com)
    old = 1.0 - a
    denom = old + a
    v = x.to_numpy(dtype=np.float64)
    out = np.empty_like(v)
    if len(v):
        w = v[0].copy()
        out[0] = w
        for i in range(1, len(v)):  # rows: each step is vectorised over every column
            cur = v[i]
            seen = w == w
            move = seen & (cur == cur) & (w != cur)
            w[move] = (old * w[move] + a * cur[move]) / denom
            start = ~seen & (cur == cur)
            w[start] = cur[start]
            out[i] = w
    return pd.DataFrame(out, index=x.index, columns=x.columns)


def _last_valid_change(close: pd.DataFrame) -> pd.DataFrame:
    """``C_t - (last valid close before t)``; NaN where ``C_t`` is NaN or no earlier close exists."""
    return close - close.ffill().shift(1)


def rsi_wilder(close: pd.DataFrame | pd.Series, n: int = 14) -> pd.DataFrame | pd.Series:
    """Wilder's RSI of every column (formula in the module docstring).

    Parameters
    ----------
    close : wide panel (date x symbol) of closes, or a single Series.
    n : look-back period (Wilder used 14).

    Returns the RSI in [0, 100], same shape as ``close``; NaN during each column's warm-up
    (its first ``n`` valid closes) and where ``close`` is NaN.
    """
    if n < 1:
        raise ValueError(f"RSI period must be >= 1, got {n}")
    c, was_series = _as_frame(close.astype(np.float64))
    d = _last_valid_change(c)
    valid = d.notna()
    k = valid.cumsum()  # number of valid changes so far, per column
    up, dn = d.clip(lower=0.0), (-d).clip(lower=0.0)
    seed = (k == n) & valid
    after = (k > n) & valid

    def wilder(x: pd.DataFrame) -> pd.DataFrame:
        # simple-mean seed on the n-th valid change, raw values afterwards, NaN elsewhere;
        # ewm(alpha=1/n, adjust=False, ignore_na=True) is exactly avg_t = (avg_{t-1}(n-1) + x_t)/n
        # over the valid observations, starting from the seed.
        seeded = x.fillna(0.0).cumsum() / n
        z = x.where(after, seeded.where(seed))
        return ewm_mean(z, alpha=1.0 / n)

    au, ad = wilder(up), wilder(dn)
    total = au + ad
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = 100.0 * au / total
    rsi = rsi.mask(total == 0.0, 50.0)
    rsi = rsi.where((k >= n) & c.notna())
    return rsi.iloc[:, 0].rename(close.name) if was_series else rsi


class MACD(NamedTuple):
    macd_line: pd.DataFrame
    signal_line: pd.DataFrame
    histogram: pd.DataFrame


def _ema(x: pd.DataFrame, span: int) -> pd.DataFrame:
    """EMA with alpha = 2/(span+1), adjust=False, seeded at each column's first valid value,
    skipping NaNs (the value carried over a NaN row is masked by the caller)."""
    return ewm_mean(x, span=span)


def macd(
    close: pd.DataFrame | pd.Series,
    fast: int = 12,
    slow: int = 26,
    signal: int = 9,
    warmup: bool = True,
) -> MACD:
    """MACD line, signal line and histogram of every column (formula in the module docstring).

    ``warmup=True`` masks the first ``slow - 1`` valid closes of the MACD line and the first
    ``slow + signal - 2`` of the signal line / histogram to NaN; output is NaN where ``close``
    is NaN.  Series in, Series out.
    """
    if not 1 <= fast < slow or signal < 1:
        raise ValueError(f"need 1 <= fast < slow and signal >= 1, got {fast}, {slow}, {signal}")
    c, was_series = _as_frame(close.astype(np.float64))
    present = c.notna()
    line = (_ema(c, fast) - _ema(c, slow)).where(present)
    sig = _ema(line, signal).where(present)
    hist = line - sig
    if warmup:
        k = present.cumsum()
        line = line.where(k >= slow)
        sig = sig.where(k >= slow + signal - 1)
        hist = hist.where(k >= slow + signal - 1)
    if was_series:
        name = close.name
        return MACD(line.iloc[:, 0].rename(name), sig.iloc[:, 0].rename(name), hist.iloc[:, 0].rename(name))
    return MACD(line, sig, hist)


def pair_difference(panel: pd.DataFrame, i: np.ndarray, j: np.ndarray) -> pd.DataFrame:
    """``panel[:, i] - panel[:, j]`` for arrays of column positions, one output column per pair.

    Output columns are a MultiIndex ``(y, x)`` of the column labels (``y = i``, ``x = j``),
    the index is ``panel``'s.  One fancy-indexing operation, no loop over pairs.
    """
    i = np.atleast_1d(np.asarray(i, dtype=np.intp))
    j = np.atleast_1d(np.asarray(j, dtype=np.intp))
    if i.shape != j.shape:
        raise ValueError(f"pair index arrays differ in shape: {i.shape} vs {j.shape}")
    v = panel.to_numpy(dtype=np.float64)
    cols = pd.MultiIndex.from_arrays([panel.columns[i], panel.columns[j]], names=["y", "x"])
    return pd.DataFrame(v[:, i] - v[:, j], index=panel.index, columns=cols)


class PairDivergence(NamedTuple):
    rsi: pd.DataFrame  # RSI_y - RSI_x, points in [-100, 100]
    macd_hist: pd.DataFrame  # HIST_y - HIST_x (price units, or per unit of price if close given)


def pair_divergence(
    rsi: pd.DataFrame,
    macd_hist: pd.DataFrame,
    i: np.ndarray,
    j: np.ndarray,
    close: pd.DataFrame | None = None,
) -> PairDivergence:
    """Per-pair technical divergence for pairs ``(y = column i, x = column j)``.

    rsi_div_t  = RSI(y)_t - RSI(x)_t
    hist_div_t = HIST(y)_t - HIST(x)_t, or with ``close`` given
               = HIST(y)_t / C(y)_t - HIST(x)_t / C(x)_t   (scale-free, PPO-style histogram)

    ``rsi`` / ``macd_hist`` are the wide outputs of :func:`rsi_wilder` / :func:`macd` with the
    same columns; outputs are date x pair frames with ``(y, x)`` MultiIndex columns.  Positive
    divergence = y has stronger momentum than x.
    """
    if not rsi.columns.equals(macd_hist.columns):
        raise ValueError("rsi and macd_hist must have the same columns (same symbols, same order)")
    hist = macd_hist
    if close is not None:
        hist = macd_hist / close.reindex(index=macd_hist.index, columns=macd_hist.columns)
    return PairDivergence(pair_difference(rsi, i, j), pair_difference(hist, i, j))
