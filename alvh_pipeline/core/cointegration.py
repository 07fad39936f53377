"""All-pairs Engle-Granger cointegration screen, vectorised across pairs.

For a log-price panel ``P`` of shape (T, N) and every ordered pair (i, j), i < j, the screen
regresses ``y = P[:, i]`` on ``[1, x = P[:, j]]`` and runs the Engle-Granger ADF test on the
residual spread exactly as ``statsmodels.tsa.stattools.coint(y, x, trend="c", maxlag=k,
autolag=None)`` does:

* cointegrating regression over all T rows: ``e_t = y_t - alpha - beta x_t``;
* ``adfuller(e, maxlag=k, autolag=None, regression="n")``: with ``d_t = e_t - e_{t-1}`` it
  regresses ``d_t`` on ``[e_{t-1}, d_{t-1}, ..., d_{t-k}]`` (no constant) over
  ``t = k+1, ..., T-1`` (0-based), i.e. ``n = T-1-k`` observations: the first ``k`` differences
  are consumed as lags and dropped.  The statistic is the OLS t-value of the ``e_{t-1}``
  coefficient ``phi`` with ``s^2 = SSR / (n - k - 1)``;
* statsmodels returns ``-inf`` (p-value 0) when the cointegrating regression has
  ``R^2 >= 1 - 100*sqrt(eps)``; the screen does the same;
* p-value: MacKinnon (1994, 2010 tables) surface, ``mackinnonp(stat, regression="c", N=2)``,
  evaluated on arrays with statsmodels' own coefficient tables.

No per-pair residual series is ever built.  With ``C`` the panel demeaned over the full
window, the spread is ``e = C w`` with ``w = e_i - beta e_j``; every regressor of the ADF
regression is a column block ``Z^m`` (lagged levels ``C_{t-1}``, lagged differences
``D_{t-l}``, and the dependent ``D_t``) applied to ``w``, so each entry of the pair's ADF Gram
matrix is the quadratic form ``w' (Z^m' Z^n) w = M_ii - beta (M_ij + M_ji) + beta^2 M_jj``.
The cross-product matrices ``Z^m' Z^n`` come from one BLAS product per row block of names; the
(k+2)x(k+2) Gram matrices of all pairs (regressors ordered ``lags, level, dependent``) are then
Cholesky-factorised elementwise across pairs, which yields

    phi  = L[y, e] / L[e, e],      t = L[y, e] * sqrt(n - k - 1) / L[y, y]

(``L[y, y]^2`` is the SSR, ``1 / L[e, e]^2`` is ``(X'X)^{-1}`` of the level coefficient).

Half-life: ``-ln 2 / ln(1 + phi)`` with ``phi`` the coefficient of ``e_{t-1}`` in the *same*
ADF regression (k lagged differences included, so ``1 + phi`` is the sum of the spread's AR
coefficients; for k = 0 it is the plain AR(1) coefficient).  ``inf`` when ``phi >= 0`` (no mean
reversion), ``NaN`` when ``phi <= -1`` (over-shooting / oscillating) or undefined.

Z-score: ``(e_T - mean(e)) / std(e, ddof)`` over the window (``mean(e) = 0`` by construction of
the OLS with constant); ``ddof = 0`` by default, like ``np.std``.

Both directions (``engle_granger_both_directions``, ``pick_direction``): the ADF statistic depends
on which name is the regression's y, so each unordered pair is tested both ways.  The reverse
regression (y = name j on x = name i) needs the same quadratic forms with the roles of the
diagonal moments swapped (the cross terms ``Z^m_i . Z^q_j + Z^q_i . Z^m_j`` are symmetric in i, j),
so it reuses the cross products and only repeats the elementwise Cholesky.

Selection rule, one hypothesis per unordered pair: the direction with the more negative
statistic (= the smaller p-value; ties and NaN go to y = name i) is kept, and its p-value is
reported as ``p* = min(1, 2 * min(p_ij, p_ji))``.  Why this keeps Benjamini-Hochberg honest:
"no cointegration" is a property of the unordered pair (if no combination of y and x is
stationary, neither regression finds one), so the two directional tests test the same null and
choosing the better one after seeing both is a search over two tests.  ``min(p_ij, p_ji)`` alone
is not a valid p-value (under the null ``P(min <= u)`` can reach ``2u``); by the union bound
``P(2 min <= u) <= P(p_ij <= u/2) + P(p_ji <= u/2) = u`` whatever the dependence between the two
directions, so ``p*`` is valid (conservative: the directions are strongly positively dependent).
BH then sees one valid p-value per unordered pair, i.e. the same ``m`` as a one-direction screen;
entering both directions would double ``m`` with near-duplicate hypotheses and count one false
pair twice.  The kept regression is re-expressed on the pair's own orientation (name i as y):
``x = a + b y + e``  <=>  ``y = -a/b + (1/b) x - e/b``, so ``beta = 1/b``, ``alpha = -a/b``,
``spread_std = sd/|b|``, ``zscore = -sign(b) z`` (the spread is ``-e/b``, a rescaling: same ADF
statistic, same ``phi`` and half-life); ``y_on_x`` records which regression was kept.

Pure numpy/scipy; statsmodels is used only for MacKinnon's coefficient tables.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.special import ndtr
from statsmodels.tsa import adfvalues as _adfv  # MacKinnon's tables only

__all__ = [
    "PairScreen",
    "benjamini_hochberg",
    "engle_granger_all_pairs",
    "engle_granger_both_directions",
    "engle_granger_two_way",
    "half_life",
    "mackinnon_pvalue",
    "pair_spread",
    "pick_direction",
]

# statsmodels.tsa.stattools.coint: res_co.rsquared < 1 - 100 * SQRTEPS, else stat = -inf
_SQRTEPS = np.sqrt(np.finfo(np.double).eps)
_R2_COLLINEAR = 1.0 - 100.0 * _SQRTEPS

# default number of pair-cells processed per block (rows of names x columns of names)
_BLOCK_CELLS = 1 << 17


@dataclass(frozen=True)
class PairScreen:
    """Screen results, arrays aligned over pairs (``y = name i`` regressed on ``x = name j``).

    For the full screen the pairs are in ``np.triu_indices(N, 1)`` order.
    """

    i: np.ndarray
    j: np.ndarray
    beta: np.ndarray  # hedge ratio: y = alpha + beta * x + e
    alpha: np.ndarray  # intercept
    adf_stat: np.ndarray  # Engle-Granger ADF t-statistic (== coint(...)[0])
    pvalue: np.ndarray  # MacKinnon p-value, N=2, constant (== coint(...)[1])
    phi: np.ndarray  # coefficient of e_{t-1} in the ADF regression
    half_life: np.ndarray  # -ln 2 / ln(1 + phi), in observations (days)
    zscore: np.ndarray  # (e_T - mean e) / std(e) over the window
    spread_std: np.ndarray  # std(e, ddof) over the window
    lags: int = 1
    nobs: int = 0  # T, observations in the cointegrating regression
    ddof: int = 0
    # two-way screens only (``pick_direction``): True where the kept regression is y = name i on
    # x = name j, False where it is j on i (re-expressed on i as y); None for one-way screens
    y_on_x: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.i.shape[0])

    def take(self, index) -> PairScreen:
        """Subset of pairs by boolean mask or integer index (e.g. a BH mask)."""
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v[index] if isinstance(v, np.ndarray) else v
        return PairScreen(**kw)

    def to_frame(self, names=None):
        """pandas DataFrame of the pair arrays; ``names`` maps column index -> ticker."""
        import pandas as pd

        cols = {f.name: getattr(self, f.name) for f in fields(self)}
        cols = {k: v for k, v in cols.items() if isinstance(v, np.ndarray)}
        df = pd.DataFrame(cols)
        if names is not None:
            names = np.asarray(names)
            df.insert(2, "y", names[self.i])
            df.insert(3, "x", names[self.j])
        return df


# ----------------------------------------------------------------------------------------------
# small pure helpers
# ----------------------------------------------------------------------------------------------


def half_life(phi) -> np.ndarray:
    """Half-life ``-ln 2 / ln(1 + phi)`` of ``d e_t = phi e_{t-1} (+ lags)``.

    ``inf`` for ``phi >= 0`` (no mean reversion), ``NaN`` for ``phi <= -1`` or NaN input.
    """
    phi = np.asarray(phi, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        hl = -np.log(2.0) / np.log1p(phi)
    hl = np.where(phi >= 0.0, np.inf, hl)
    return np.where(phi <= -1.0, np.nan, hl)


def pair_spread(log_prices, i, j, beta, alpha) -> np.ndarray:
    """Spread ``y - alpha - beta x`` with ``y = P[:, i]``, ``x = P[:, j]``.

    Scalars give a (T,) series; arrays of selected pairs give a (T, n_pairs) panel.  This is the
    only place residual series are materialised (meant for selected pairs only).
    """
    P = np.asarray(log_prices, dtype=np.float64)
    return P[:, i] - alpha - beta * P[:, j]


def mackinnon_pvalue(stat, regression: str = "c", N: int = 2) -> np.ndarray:
    """Array version of ``statsmodels.tsa.adfvalues.mackinnonp`` (same tables, same branches)."""
    av = _adfv
    stat = np.asarray(stat, dtype=np.float64)
    maxstat = av._tau_maxs[regression][N - 1]
    minstat = av._tau_mins[regression][N - 1]
    starstat = av._tau_stars[regression][N - 1]
    small = np.asarray(av._tau_smallps[regression][N - 1])[::-1]
    large = np.asarray(av._tau_largeps[regression][N - 1])[::-1]
    out = np.empty(stat.shape, dtype=np.float64)
    lo = stat <= starstat  # NaN -> False -> large-p branch -> NaN, as statsmodels
    hi = ~lo
    with np.errstate(invalid="ignore", over="ignore"):  # +-inf stats are overwritten below
        out[lo] = ndtr(np.polyval(small, stat[lo]))
        out[hi] = ndtr(np.polyval(large, stat[hi]))
    out[stat > maxstat] = 1.0
    out[stat < minstat] = 0.0
    return out


def benjamini_hochberg(pvalues, alpha: float = 0.05) -> np.ndarray:
    """Benjamini-Hochberg step-up FDR selection; boolean mask of the input's shape.

    Same decisions as ``multipletests(p, alpha, method="fdr_bh")[0]``: NaN p-values count in
    the number of tests and are never rejected.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0:
        return np.zeros(p.shape, dtype=bool)
    ps = np.sort(p, axis=None)  # NaN sorted last
    below = ps <= (np.arange(1, m + 1) / float(m)) * alpha
    hits = np.flatnonzero(below)
    if hits.size == 0:
        return np.zeros(p.shape, dtype=bool)
    return p <= ps[hits[-1]]


# ----------------------------------------------------------------------------------------------
# the screen
# ----------------------------------------------------------------------------------------------


def _design(P: np.ndarray, k: int):
    """Column blocks of the ADF regression, full-window demeaned levels and their means.

    Returns ``Z`` of shape (n, k+2, N) with blocks ``[D_{t-1}, ..., D_{t-k}, C_{t-1}, D_t]`` over
    ``t = k+1..T-1``, ``H`` the rows of ``C`` outside ``C_{t-1}`` (so ``C'C = L'L + H'H``),
    the last row of ``C`` and the column means.
    """
    T, N = P.shape
    mu = P.mean(axis=0)
    C = P - mu
    D = np.diff(P, axis=0)  # D[s] = P[s+1] - P[s]  (d_t = D[t-1])
    n = T - 1 - k
    p = k + 2
    Z = np.empty((n, p, N), dtype=np.float64)
    for lag in range(1, k + 1):
        Z[:, lag - 1, :] = D[k - lag : T - 1 - lag]
    Z[:, k, :] = C[k : T - 1]
    Z[:, k + 1, :] = D[k : T - 1]
    H = np.concatenate([C[:k], C[T - 1 :]], axis=0)
    return Z, H, C[T - 1].copy(), mu


def _pair_stats(dg_i, dg_j, sym, sxy, sxx, syy, cT_i, cT_j, n: int, k: int, ddof: int, T: int):
    """Elementwise over pairs (any broadcastable shapes).

    dg_i[m][q], dg_j[m][q]: diagonal moments ``Z^m_i . Z^q_i`` / ``Z^m_j . Z^q_j`` (m <= q);
    sym[m][q]: ``Z^m_i . Z^q_j + Z^q_i . Z^m_j``; sxy/sxx/syy: full-window centred moments.
    Returns beta, adf_stat, phi, spread_std, zscore.
    """
    p = k + 2
    beta = sxy / sxx
    b2 = beta * beta
    # Gram entries of [lags..., e_{t-1}, d_t] for w = (1, -beta)
    A = [[None] * p for _ in range(p)]
    for m in range(p):
        for q in range(m, p):
            a = sym[m][q] * beta
            np.subtract(dg_i[m][q], a, out=a)
            a += b2 * dg_j[m][q]
            A[q][m] = a
    # Cholesky, lower triangle, elementwise across pairs
    Lf = [[None] * p for _ in range(p)]
    for c in range(p):
        s = A[c][c]
        for q in range(c):
            s -= Lf[c][q] * Lf[c][q]
        np.sqrt(s, out=s)
        Lf[c][c] = s
        for r in range(c + 1, p):
            v = A[r][c]
            for q in range(c):
                v -= Lf[r][q] * Lf[c][q]
            v /= s
            Lf[r][c] = v
    l_ye = Lf[p - 1][p - 2]
    stat = l_ye * np.sqrt(n - k - 1) / Lf[p - 1][p - 1]
    phi = l_ye / Lf[p - 2][p - 2]

    ssr = syy - beta * sxy  # cointegrating-regression SSR (mean of e is 0)
    r2 = (beta * sxy) / syy
    stat = np.where(r2 >= _R2_COLLINEAR, -np.inf, stat)
    np.maximum(ssr, 0.0, out=ssr)
    sd = np.sqrt(ssr / (T - ddof))
    z = (cT_i - beta * cT_j) / sd
    return beta, stat, phi, sd, z


def _check(P: np.ndarray, k: int):
    if P.ndim != 2:
        raise ValueError("log_prices must be a 2-D (T, N) array")
    T, N = P.shape
    if N < 2:
        raise ValueError("need at least two names")
    if k < 0:
        raise ValueError("lags must be >= 0")
    if k > T // 2 - 1:  # adfuller(regression="n"): maxlag <= nobs // 2 - ntrend - 1
        raise ValueError(f"lags={k} too large for T={T} (must be <= T//2 - 1)")
    if not np.isfinite(P).all():
        raise ValueError("log_prices must be finite (no NaN gaps); align/fill before screening")


def engle_granger_all_pairs(
    log_prices,
    lags: int = 1,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
    block: int | None = None,
    ddof: int = 0,
) -> PairScreen:
    """Engle-Granger screen of all pairs i < j (or of the given ``pairs``) of a (T, N) panel,
    in one direction: y = name i regressed on x = name j.

    Parameters
    ----------
    log_prices : (T, N) array of log prices, finite, one column per name.
    lags : fixed ADF augmentation lag k (``coint(..., maxlag=k, autolag=None)``).
    pairs : optional ``(i, j)`` integer arrays; y = name i, x = name j (any order, i != j).
        Without it every pair i < j is screened in ``np.triu_indices(N, 1)`` order.
    block : names per row block of the dense screen (memory/cache knob); default sized so a
        block holds ~131k pair cells.
    ddof : degrees of freedom for the spread standard deviation of the z-score.
    """
    return _screen(log_prices, lags, pairs, block, ddof, both=False)[0]


def engle_granger_both_directions(
    log_prices,
    lags: int = 1,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
    block: int | None = None,
    ddof: int = 0,
) -> tuple[PairScreen, PairScreen]:
    """``(forward, reverse)`` screens of the same pairs: forward regresses name i on name j
    (exactly ``engle_granger_all_pairs``), reverse name j on name i (its ``i``/``j`` are swapped,
    so ``reverse.i == forward.j``).  Arguments as ``engle_granger_all_pairs``; the cross products
    are computed once for both."""
    fwd, rev = _screen(log_prices, lags, pairs, block, ddof, both=True)
    assert rev is not None
    return fwd, rev


def pick_direction(forward: PairScreen, reverse: PairScreen) -> PairScreen:
    """One row per unordered pair, on ``forward``'s orientation (y = name i): the direction with
    the more negative ADF statistic, p-value ``min(1, 2 p_kept)`` (selection rule and its
    justification in the module docstring), ``y_on_x`` False where the reverse regression was kept."""
    if not (np.array_equal(forward.i, reverse.j) and np.array_equal(forward.j, reverse.i)):
        raise ValueError("reverse must screen the same pairs as forward with i and j swapped")
    # keep the reverse only where it is strictly better and re-expressible (b != 0, finite):
    # NaN compares False, so a NaN reverse statistic keeps the forward one
    use_rev = ((reverse.adf_stat < forward.adf_stat) | (np.isnan(forward.adf_stat) & ~np.isnan(reverse.adf_stat)))
    use_rev &= np.isfinite(reverse.beta) & (reverse.beta != 0.0)
    b = np.where(use_rev, reverse.beta, 1.0)  # 1.0 only keeps unused lanes finite
    p_kept = np.where(use_rev, reverse.pvalue, forward.pvalue)
    return PairScreen(
        i=forward.i,
        j=forward.j,
        beta=np.where(use_rev, 1.0 / b, forward.beta),
        alpha=np.where(use_rev, -reverse.alpha / b, forward.alpha),
        adf_stat=np.where(use_rev, reverse.adf_stat, forward.adf_stat),
        # Bonferroni over the two directions; p_kept >= min(p_ij, p_ji), so still valid
        pvalue=np.minimum(1.0, 2.0 * p_kept),
        phi=np.where(use_rev, reverse.phi, forward.phi),
        half_life=np.where(use_rev, reverse.half_life, forward.half_life),
        zscore=np.where(use_rev, -np.sign(b) * reverse.zscore, forward.zscore),
        spread_std=np.where(use_rev, reverse.spread_std / np.abs(b), forward.spread_std),
        lags=forward.lags,
        nobs=forward.nobs,
        ddof=forward.ddof,
        y_on_x=~use_rev,
    )


def engle_granger_two_way(
    log_prices,
    lags: int = 1,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
    block: int | None = None,
    ddof: int = 0,
) -> PairScreen:
    """Both directions of every pair, one row per pair (``pick_direction``): what the daily pair
    screen feeds to Benjamini-Hochberg."""
    return pick_direction(*engle_granger_both_directions(log_prices, lags, pairs, block, ddof))


_STATS = ("beta", "alpha", "adf_stat", "phi", "spread_std", "zscore")


def _assemble(i, j, res, k, T, ddof) -> PairScreen:
    return PairScreen(
        i=i,
        j=j,
        beta=res["beta"],
        alpha=res["alpha"],
        adf_stat=res["adf_stat"],
        pvalue=mackinnon_pvalue(res["adf_stat"], "c", 2),
        phi=res["phi"],
        half_life=half_life(res["phi"]),
        zscore=res["zscore"],
        spread_std=res["spread_std"],
        lags=k,
        nobs=T,
        ddof=ddof,
    )


def _screen(log_prices, lags, pairs, block, ddof, both: bool) -> tuple[PairScreen, PairScreen | None]:
    P = np.asarray(log_prices, dtype=np.float64)
    k = int(lags)
    _check(P, k)
    T, N = P.shape
    n = T - 1 - k
    p = k + 2
    Z, H, cT, mu = _design(P, k)
    lv = k  # index of the lagged-level block
    # diagonal moments Z^m_i . Z^q_i, (p, p, N)
    dg = np.einsum("tmi,tqi->mqi", Z, Z, optimize=True)
    sxx_all = dg[lv, lv] + np.einsum("ti,ti->i", H, H)

    if pairs is not None:
        return _screen_pairs(P, Z, H, cT, mu, dg, sxx_all, pairs, k, n, p, ddof, T, both)

    npairs = N * (N - 1) // 2
    dirs = (0, 1) if both else (0,)
    out = [{name: np.empty(npairs, dtype=np.float64) for name in _STATS} for _ in dirs]
    if block is None:
        block = max(8, min(N - 1, _BLOCK_CELLS // N))
    block = int(max(1, block))

    pos = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        for r0 in range(0, N - 1, block):
            r1 = min(r0 + block, N - 1)
            B = r1 - r0
            c0 = r0 + 1
            W = N - c0
            Zb = Z[:, :, r0:r1].reshape(n, p * B)
            Zw = Z[:, :, c0:].reshape(n, p * W)
            G = (Zb.T @ Zw).reshape(p, B, p, W)
            sym = [[None] * p for _ in range(p)]
            dgi = [[None] * p for _ in range(p)]
            dgj = [[None] * p for _ in range(p)]
            for m in range(p):
                for q in range(m, p):
                    if m == q:
                        sym[m][q] = 2.0 * G[m, :, m, :]
                    else:
                        sym[m][q] = G[m, :, q, :] + G[q, :, m, :]
                    dgi[m][q] = dg[m, q, r0:r1, None]
                    dgj[m][q] = dg[m, q, None, c0:]
            sxy = G[lv, :, lv, :] + H[:, r0:r1].T @ H[:, c0:]
            var_r, var_c = sxx_all[r0:r1, None], sxx_all[None, c0:]
            cT_r, cT_c = cT[r0:r1, None], cT[None, c0:]
            mu_r, mu_c = mu[r0:r1, None], mu[None, c0:]
            # valid cells: j > i  <=>  column index >= row index inside the block
            mask = np.arange(W)[None, :] >= np.arange(B)[:, None]
            cnt = int(B * W - B * (B - 1) // 2)
            sl = slice(pos, pos + cnt)
            for d in dirs:
                # d = 0: y = row name i, x = column name j; d = 1: the roles swapped (sym is
                # symmetric in i, j, so the same cross products serve both)
                if d == 0:
                    stats = _pair_stats(dgi, dgj, sym, sxy, var_c, var_r, cT_r, cT_c, n, k, ddof, T)
                    alpha = mu_r - stats[0] * mu_c
                else:
                    stats = _pair_stats(dgj, dgi, sym, sxy, var_r, var_c, cT_c, cT_r, n, k, ddof, T)
                    alpha = mu_c - stats[0] * mu_r
                beta, stat, phi, sd, z = stats
                o = out[d]
                o["beta"][sl] = beta[mask]
                o["alpha"][sl] = alpha[mask]
                o["adf_stat"][sl] = stat[mask]
                o["phi"][sl] = phi[mask]
                o["spread_std"][sl] = sd[mask]
                o["zscore"][sl] = z[mask]
            pos += cnt
    assert pos == npairs
    ii, jj = np.triu_indices(N, 1)
    fwd = _assemble(ii, jj, out[0], k, T, ddof)
    return fwd, (_assemble(jj, ii, out[1], k, T, ddof) if both else None)


def _screen_pairs(P, Z, H, cT, mu, dg, sxx_all, pairs, k, n, p, ddof, T, both, chunk=4096):
    ii = np.asarray(pairs[0], dtype=np.intp).ravel()
    jj = np.asarray(pairs[1], dtype=np.intp).ravel()
    if ii.shape != jj.shape:
        raise ValueError("pairs must be two index arrays of equal length")
    N = P.shape[1]
    if ii.size and (min(ii.min(), jj.min()) < -N or max(ii.max(), jj.max()) >= N):
        raise IndexError("pair index out of range")
    ii %= N
    jj %= N
    names = ("beta", "adf_stat", "phi", "spread_std", "zscore")
    dirs = (0, 1) if both else (0,)
    res = [{name: np.empty(ii.size, dtype=np.float64) for name in names} for _ in dirs]
    lv = k
    with np.errstate(divide="ignore", invalid="ignore"):
        for s0 in range(0, ii.size, chunk):
            a = ii[s0 : s0 + chunk]
            b = jj[s0 : s0 + chunk]
            Zi = Z[:, :, a]
            Zj = Z[:, :, b]
            X = np.einsum("tmc,tqc->mqc", Zi, Zj, optimize=True)  # Z^m_i . Z^q_j
            sym = [[None] * p for _ in range(p)]
            dgi = [[None] * p for _ in range(p)]
            dgj = [[None] * p for _ in range(p)]
            for m in range(p):
                for q in range(m, p):
                    sym[m][q] = X[m, q] + X[q, m]
                    dgi[m][q] = dg[m, q, a]
                    dgj[m][q] = dg[m, q, b]
            sxy = X[lv, lv] + np.einsum("tc,tc->c", H[:, a], H[:, b])
            for d in dirs:  # d = 1: y = name j on x = name i, same cross products
                if d == 0:
                    out = _pair_stats(dgi, dgj, sym, sxy, sxx_all[b], sxx_all[a], cT[a], cT[b], n, k, ddof, T)
                else:
                    out = _pair_stats(dgj, dgi, sym, sxy, sxx_all[a], sxx_all[b], cT[b], cT[a], n, k, ddof, T)
                for name, v in zip(names, out):
                    res[d][name][s0 : s0 + chunk] = v
    res[0]["alpha"] = mu[ii] - res[0]["beta"] * mu[jj]
    fwd = _assemble(ii, jj, res[0], k, T, ddof)
    if not both:
        return fwd, None
    res[1]["alpha"] = mu[jj] - res[1]["beta"] * mu[ii]
    return fwd, _assemble(jj, ii, res[1], k, T, ddof)
