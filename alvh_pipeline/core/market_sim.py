"""The synthetic market's latent state: a regime-switching stochastic-variance SPX, the VIX and
its futures curve from the variance model, and an equity universe from a sector factor model
with planted cointegrated pairs.

Determinism without regenerating history per partition: every random stream is drawn per
calendar year from `np.random.default_rng([seed, stream, year])`, so the state on a day depends
only on the seed and the years up to it, never on which partitions were asked for or in what
order. The whole 1999-.. state (~7,300 days × N names) is built once per process (~0.1 s for 100
names, see bench/ingest.py) and cached; per-day tables are then cut from it, with their own
per-day random streams (see `day_rng`).

Variance model (annualised variance v_t, daily step dt = 1/252):
    x_t = ln v_t,   x_t = x_{t-1} + κ (m_{r_t} - x_{t-1}) + ξ ε_t,   corr(ε_t, z_t) = ρ < 0
    SPX log return r_t = (μ - v_t/2) dt + √(v_t dt) z_t + J_t   (jumps J only in crisis)
VIX (30-day implied vol) and VX futures use the expected average variance under a mean-reverting
forward variance E_t[v_s] = θ + (v_t - θ) e^{-k (s - t)} (θ = long-run variance):
    F(τ) = 100 √( vrp(τ) · avg_{s∈[τ, τ+30d]} E_t[v_s] ),   VIX = F(0)
so the curve is in contango when v_t < θ (calm), backwardated when v_t > θ (stress), and every
future converges to the VIX at expiry (τ → 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from alvh_pipeline.core.calendar import all_sessions

REGIMES = ("calm", "elevated", "crisis")
SECTORS = (
    "Technology", "Financials", "Health Care", "Energy", "Industrials",
    "Consumer Discretionary", "Consumer Staples", "Utilities", "Materials", "Communication",
)
DT = 1.0 / 252.0
THIRTY_DAYS = 30.0 / 365.0


@dataclass(frozen=True)
class SimConfig:
    seed: int = 7
    n_equities: int = 100
    n_planted_pairs: int = 10
    spx_start: float = 1229.0
    # regime vol levels (annualised) and daily persistence of each regime
    regime_vol: tuple[float, float, float] = (0.12, 0.20, 0.45)
    regime_stay: tuple[float, float, float] = (0.995, 0.985, 0.975)
    kappa: float = 0.06  # daily pull of ln v toward the regime level
    xi: float = 0.10  # daily vol of ln v
    rho: float = -0.7  # leverage: return shock vs variance shock
    long_run_vol: float = 0.19  # θ = long_run_vol²
    fwd_var_speed: float = 4.0  # k, per year
    mu: float = 0.10


@dataclass(frozen=True)
class PlantedPair:
    leader: str
    follower: str
    hedge_ratio: float
    half_life_days: float


@dataclass
class MarketState:
    config: SimConfig
    dates: pd.DatetimeIndex
    regime: np.ndarray  # int 0/1/2 per day
    variance: np.ndarray  # v_t annualised
    spx: np.ndarray
    spx_ret: np.ndarray
    comp: np.ndarray
    symbols: np.ndarray
    sectors: np.ndarray
    equity_close: np.ndarray  # (T, N)
    equity_beta: np.ndarray
    planted_pairs: list[PlantedPair]
    tbill: np.ndarray
    reer: np.ndarray
    rate_diff: np.ndarray
    etf_close: dict[str, np.ndarray] = field(default_factory=dict)

    def index_of(self, dates) -> np.ndarray:
        idx = self.dates.get_indexer(pd.DatetimeIndex(dates))
        if (idx < 0).any():
            bad = pd.DatetimeIndex(dates)[idx < 0]
            raise KeyError(f"not NYSE sessions in the simulated calendar: {list(bad.date[:5])}")
        return idx


def yearly_normals(seed: int, stream: int, years: np.ndarray, size_per_day: int = 1) -> np.ndarray:
    """Standard normals for each day, drawn per calendar year so earlier years never change."""
    out = np.empty((len(years), size_per_day))
    for y in np.unique(years):  # one draw per year, ~28 iterations
        sel = years == y
        rng = np.random.default_rng([seed, stream, int(y)])
        out[sel] = rng.standard_normal((int(sel.sum()), size_per_day))
    return out if size_per_day != 1 else out[:, 0]


def yearly_uniforms(seed: int, stream: int, years: np.ndarray) -> np.ndarray:
    out = np.empty(len(years))
    for y in np.unique(years):
        sel = years == y
        out[sel] = np.random.default_rng([seed, stream, int(y)]).random(int(sel.sum()))
    return out


def day_rng(seed: int, table: str, date) -> np.random.Generator:
    """Random stream for one table on one day: independent of every other day and table."""
    d = pd.Timestamp(date)
    tag = int.from_bytes(table.encode()[:8].ljust(8, b"\0"), "little")
    return np.random.default_rng([seed, tag, d.year, d.month, d.day])


def simulate_regimes(cfg: SimConfig, years: np.ndarray) -> np.ndarray:
    """Three-state Markov chain; transitions go to a neighbouring state (calm <-> elevated <->
    crisis), crises exit to elevated. Sequential by nature; ~7,300 scalar steps once per process."""
    u = yearly_uniforms(cfg.seed, 1, years)
    stay = np.asarray(cfg.regime_stay)
    reg = np.empty(len(years), dtype=np.int64)
    state = 0
    up_prob = (0.5, 0.25, 0.0)  # leaving calm -> elevated; elevated -> crisis w.p. 1/4
    for t, ut in enumerate(u.tolist()):
        if ut > stay[state]:
            move = (ut - stay[state]) / (1.0 - stay[state])
            if state == 0:
                state = 1
            elif state == 1:
                state = 2 if move < up_prob[1] else 0
            else:
                state = 1
        reg[t] = state
    return reg


def ar1_filter(x: np.ndarray, phi: float | np.ndarray, z0: float = 0.0) -> np.ndarray:
    """y_0 = z0 + x_0, y_t = phi y_{t-1} + x_t along the first axis (`phi` a scalar or one per
    column): `scipy.signal.lfilter([1.0], [1.0, -phi], x, axis=0, zi=[z0])[0]` bit for bit (its
    direct form: each output is its delay state, round(phi y_{t-1}), plus x_t; tested against
    it). Here because scipy.signal costs ~0.5 s of every process's import for these few lines."""
    x = np.asarray(x, dtype=float)
    y = np.empty_like(x)
    if not len(x):
        return y
    if x.ndim == 1 and np.ndim(phi) == 0:  # Python floats: the same IEEE arithmetic, faster than numpy scalars
        p, prev, out = float(phi), float(z0) + float(x[0]), [0.0] * len(x)
        out[0] = prev
        for t, xt in enumerate(x[1:].tolist(), start=1):
            prev = p * prev + xt
            out[t] = prev
        y[:] = out
        return y
    y[0] = z0 + x[0]
    for t in range(1, len(x)):  # rows: each step vectorised over the columns
        y[t] = phi * y[t - 1] + x[t]
    return y


def simulate_variance(cfg: SimConfig, regime: np.ndarray, eps: np.ndarray) -> np.ndarray:
    target = np.log(np.asarray(cfg.regime_vol) ** 2)[regime]
    drive = cfg.kappa * target + cfg.xi * eps
    x0 = target[0]
    x = ar1_filter(drive, 1.0 - cfg.kappa, (1 - cfg.kappa) * x0)
    return np.exp(x)


def _ar1(shocks: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Column-wise AR(1) s_t = phi s_{t-1} + shock_t (`ar1_filter`, one coefficient per column)."""
    return ar1_filter(shocks, np.asarray(phi, dtype=float))


def _planted_names(rng: np.random.Generator, sector_of: np.ndarray, n_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """Pick n disjoint (leader, follower) pairs, each within one sector, cycling over sectors."""
    pools = [list(rng.permutation(np.flatnonzero(sector_of == s))) for s in range(sector_of.max() + 1)]
    leaders, followers = [], []
    for k in range(n_pairs):  # a handful of pairs
        pool = pools[k % len(pools)]
        if len(pool) < 2:
            break
        leaders.append(pool.pop())
        followers.append(pool.pop())
    return np.array(leaders, dtype=int), np.array(followers, dtype=int)


def build_state(cfg: SimConfig) -> MarketState:
    dates = all_sessions()
    years = dates.year.to_numpy()
    N = cfg.n_equities
    regime = simulate_regimes(cfg, years)
    z = yearly_normals(cfg.seed, 2, years)
    w = yearly_normals(cfg.seed, 3, years)
    eps = cfg.rho * z + np.sqrt(1 - cfg.rho**2) * w
    v = simulate_variance(cfg, regime, eps)

    jumps_u = yearly_uniforms(cfg.seed, 4, years)
    jump_size = yearly_normals(cfg.seed, 5, years)
    jumps = np.where((regime == 2) & (jumps_u < 0.04), -0.035 + 0.02 * jump_size, 0.0)
    spx_ret = (cfg.mu - 0.5 * v) * DT + np.sqrt(v * DT) * z + jumps
    spx = cfg.spx_start * np.exp(np.cumsum(spx_ret))

    comp_ret = 1.25 * spx_ret + 0.006 * yearly_normals(cfg.seed, 6, years)
    comp = 2200.0 * np.exp(np.cumsum(comp_ret))

    rng = np.random.default_rng([cfg.seed, 100])
    symbols = np.array([f"S{i:03d}" for i in range(N)])
    sectors = np.array(SECTORS)[np.arange(N) % len(SECTORS)]
    beta = rng.uniform(0.6, 1.5, N)
    idio_vol = rng.uniform(0.15, 0.35, N) * np.sqrt(DT)
    sector_shocks = yearly_normals(cfg.seed, 7, years, len(SECTORS)) * 0.10 * np.sqrt(DT)
    idio = yearly_normals(cfg.seed, 8, years, N) * idio_vol
    sec_idx = np.arange(N) % len(SECTORS)
    stress = np.sqrt(v / cfg.long_run_vol**2)[:, None]
    eq_ret = beta * (spx_ret[:, None] - cfg.mu * DT) + sector_shocks[:, sec_idx] + idio * stress + 0.08 * DT
    log_px = np.log(rng.uniform(20, 200, N)) + np.cumsum(eq_ret, axis=0)

    # Planted cointegrated pairs: follower = c + h·leader + s_t, s_t a stationary AR(1)
    # with the recorded half-life. Both names of a pair share a sector (pairs traders screen
    # within industries); leaders and followers are disjoint names.
    leaders, followers = _planted_names(rng, sec_idx, min(cfg.n_planted_pairs, N // 2))
    n_pairs = len(leaders)
    hedge = rng.uniform(0.7, 1.3, n_pairs)
    # Fast reversion (1.5-4 days) so a 252-day Engle-Granger test has the power to find every
    # planted pair even after a multiple-testing correction over thousands of candidates.
    half_life = rng.uniform(1.5, 4.0, n_pairs)
    phi = 0.5 ** (1.0 / half_life)
    # Spread sd well under the names' own daily moves: a large stationary part would give every
    # pair containing a follower a strongly negative MA root, which over-rejects a lag-1 ADF
    # (Schwert 1989) and floods the screen with false pairs.
    spread_sd = rng.uniform(0.008, 0.015, n_pairs)
    shocks = yearly_normals(cfg.seed, 9, years, n_pairs) * spread_sd * np.sqrt(1 - phi**2)
    spread = _ar1(shocks, phi)
    log_px[:, followers] = (
        np.log(rng.uniform(20, 200, n_pairs))
        + hedge * (log_px[:, leaders] - log_px[0, leaders])
        + spread
    )
    planted = [
        PlantedPair(symbols[a], symbols[b], float(h), float(hl))
        for a, b, h, hl in zip(leaders, followers, hedge, half_life)
    ]

    # Rates: OU T-bill that is cut in crises, REER and rate differential as slow OU walks.
    tb_shock = yearly_normals(cfg.seed, 10, years) * 0.0006
    tb_target = np.where(regime == 2, 0.005, 0.03)
    tbill = np.clip(ar1_filter(0.005 * tb_target + tb_shock, 0.995, 0.995 * 0.045), 0.0, 0.08)
    reer = 100 * np.exp(ar1_filter(0.003 * yearly_normals(cfg.seed, 11, years), 0.999))
    rate_diff = ar1_filter(0.0004 * yearly_normals(cfg.seed, 12, years), 0.998)

    etf = {
        "SPY": spx / 10.0,
        "QQQ": comp / 40.0,
        "IWM": 45.0 * np.exp(np.cumsum(1.1 * spx_ret + 0.004 * yearly_normals(cfg.seed, 13, years))),
    }
    return MarketState(
        config=cfg, dates=dates, regime=regime, variance=v, spx=spx, spx_ret=spx_ret, comp=comp,
        symbols=symbols, sectors=sectors, equity_close=np.exp(log_px), equity_beta=beta,
        planted_pairs=planted, tbill=tbill, reer=reer, rate_diff=rate_diff, etf_close=etf,
    )


@lru_cache(maxsize=4)
def market_state(cfg: SimConfig) -> MarketState:
    return build_state(cfg)


# ---- variance-model term structure (pure functions of v_t) -------------------------------

def vrp(tau_years: np.ndarray) -> np.ndarray:
    """Variance risk premium multiplier: implied > expected realised variance, rising with term."""
    return 1.10 + 0.25 * (1.0 - np.exp(-np.asarray(tau_years) / 0.3))


def expected_avg_variance(v: np.ndarray, start: np.ndarray, length: float, cfg: SimConfig) -> np.ndarray:
    """avg over s in [start, start+length] of E_t[v_s] = θ + (v - θ) e^{-k s}."""
    theta, k = cfg.long_run_vol**2, cfg.fwd_var_speed
    start = np.asarray(start, dtype=float)
    decay = np.exp(-k * start) * (1.0 - np.exp(-k * length)) / (k * length)
    return theta + (np.asarray(v) - theta) * decay


def vix_future_fair(v: np.ndarray, tau_years: np.ndarray, cfg: SimConfig) -> np.ndarray:
    """Model VX future for a contract expiring in tau years; tau = 0 gives the VIX."""
    tau = np.maximum(np.asarray(tau_years, dtype=float), 0.0)
    return 100.0 * np.sqrt(vrp(tau) * expected_avg_variance(v, tau, THIRTY_DAYS, cfg))


def spx_atm_vol(v: np.ndarray, tau_years: np.ndarray, cfg: SimConfig, atm_to_vix: float = 0.90) -> np.ndarray:
    """At-the-money implied vol of an SPX option maturing in tau years: `atm_to_vix` times the
    model's τ-year analogue of the VIX, sqrt(vrp(τ) avg E[v] over [0, τ]), normalised so that at
    30 days it is exactly `atm_to_vix` × VIX (the calibrated ratio lives in `core.chain_model`)."""
    tau = np.maximum(np.asarray(tau_years, dtype=float), 1.0 / 365.0)
    norm = vrp(0.0) / vrp(THIRTY_DAYS)
    return atm_to_vix * np.sqrt(norm * vrp(tau) * expected_avg_variance(v, 0.0, tau, cfg))


def stress_level(v: np.ndarray, cfg: SimConfig) -> np.ndarray:
    """Dimensionless stress: 0 at or below the long-run vol, ~1 at twice it."""
    return np.clip(np.sqrt(np.asarray(v)) / cfg.long_run_vol - 1.0, 0.0, 3.0)
