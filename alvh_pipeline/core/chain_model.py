"""The model option chains' calibrated parameters and formulas (DESIGN §3, issue 17): the ATM level
of SPX options relative to the VIX, the SPX put/call skew, the vol of VIX options, and bid/ask
widths of SPX options, VIX options and VX futures. The synthetic and replay sources price every
chain with these; a newcomer finds each number of a model quote here.

Provenance of each parameter (``PARAMETER_PROVENANCE`` carries it per field):

* **fitted** (``atm_to_vix``, ``put_skew``, ``skew_saturation``, ``skew_stress``, ``smile_curvature``): least squares on
  the calendar-year returns of the Cboe CNDR, PUT and BXM indexes replicated on the replay's real
  SPX / VIX paths (`core.benchmarks`), fitted on **2004-2006 and 2010-2014 only**
  (`bench/calibrate_chains.py`); no 2007-2009 return is computed by the fit (only 2009-12-18..31
  enter, as the start of 2010's first cycle; out-of-sample test: `bench/benchmarks.py`).
* **published rule** (SPX / VIX option widths): the Cboe bid/ask differential limits for
  options (historic Cboe Rule 8.7(b)(iv): $0.25 below $2, $0.40 to $5, $0.50 to $10, $0.80 to
  $20, $1.00 above), quoted at a share of that limit that grows with stress up to the doubled
  limit exchanges allowed in fast markets.
* **methodology anchor** (VX futures widths): one tick (0.05) in the front two months in calm,
  0.10 beyond; beyond the front two months the spread reaches 0.25 vol points in stress
  (methodology: spreads "can exceed 0.25 volatility points during stress").
* **assumption** (VIX option vol of vol): 30-day ATM implied vol of VIX options of 80 % in calm,
  rising with stress to at most 120 %, the range Cboe's VVIX index spanned in 2007-2014 outside
  single-day spikes (no VIX option data in the project to fit it on).

Smile (SPX): on standardised moneyness x = ln(K/F) / (σ_ATM √τ),

    σ(K) = σ_ATM · clip(1 + b(s) · x / (1 + |x| / w) + c x², 0.5, 4),
    b(s) = put_skew / (1 + skew_stress · s),

s the dimensionless stress of `market_sim.stress_level`. The slope b is the skew at the money; it
saturates w standard deviations out (far wings grow like |ln K| in total variance, not like x²:
Lee's moment formula), and in relative terms flattens as the level of vol rises (calibrated: a
5.3-point 25Δ skew on a 12 % ATM in calm, 4.0 points on 50 % in stress).
ATM level: σ_ATM(τ) = atm_to_vix · VIX(τ) where VIX(τ) is the variance model's τ-year analogue of
the VIX (`market_sim.spx_atm_vol`): the VIX prices the whole put skew, so ATM vol sits below it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

__all__ = ["ChainParams", "CALIBRATED", "PARAMETER_PROVENANCE", "FITTED", "smile_multiplier", "spx_smile",
           "legal_width", "option_half_spread", "vx_futures_width", "vix_option_atm_vol", "with_values"]


@dataclass(frozen=True)
class ChainParams:
    # SPX level and skew (fitted, see module doc)
    atm_to_vix: float = 0.90          # 30-day ATM implied vol / VIX
    put_skew: float = -0.40           # b at zero stress, per standard deviation of moneyness
    skew_saturation: float = 2.0      # w: standard deviations over which the slope saturates
    skew_stress: float = 0.60         # how fast the relative skew flattens with stress
    smile_curvature: float = 0.01     # c
    # option widths: share of the legal bid/ask differential (published rule)
    width_share_calm: float = 0.6     # share of the legal width quoted in calm markets
    width_share_stress: float = 0.35  # added per unit of stress
    width_share_cap: float = 2.0      # the doubled limit of fast markets
    width_per_month: float = 0.10     # longer-dated options quote wider, per month to expiry
    # VX futures widths (methodology anchor)
    vx_front_months: int = 2
    vx_front_width_calm: float = 0.05  # one tick
    vx_front_width_cap: float = 0.20
    vx_back_width_calm: float = 0.10   # M3 and beyond, calm: two ticks
    vx_back_width_cap: float = 0.50
    vx_back_width_per_month: float = 0.0125
    vx_width_stress: float = 3.0       # widths x (1 + this x stress): 0.25 beyond M2 at stress 0.5
    # VIX options (assumption)
    vov_calm: float = 0.80
    vov_per_stress: float = 0.15
    vov_cap: float = 1.20
    vix_call_skew: float = 0.18
    vix_smile_curvature: float = 0.02


#: Fitted on 2004-06 and 2010-14 by `bench/calibrate_chains.py` (Powell from the defaults above,
#: 208 evaluations, 9.6 min; the best trial: in-sample SSE 74.6 pts² over 24 index-years, MAE CNDR
#: 1.36, PUT 1.37, BXM 1.20).
CALIBRATED = ChainParams(atm_to_vix=0.8155, put_skew=-0.5138, skew_saturation=1.1070, skew_stress=1.8483,
                         smile_curvature=0.0169)

PARAMETER_PROVENANCE: dict[str, str] = {
    **{f: "fitted to CNDR/PUT/BXM 2004-06, 2010-14" for f in ("atm_to_vix", "put_skew", "skew_saturation",
                                                               "skew_stress", "smile_curvature")},
    **{f: "Cboe bid/ask differential rule (published)" for f in ("width_share_calm", "width_share_stress",
                                                                "width_share_cap", "width_per_month")},
    **{f: "methodology: VX spreads beyond M2 > 0.25 in stress" for f in (
        "vx_front_months", "vx_front_width_calm", "vx_front_width_cap", "vx_back_width_calm", "vx_back_width_cap",
        "vx_back_width_per_month", "vx_width_stress")},
    **{f: "assumption: VVIX range 2007-14" for f in ("vov_calm", "vov_per_stress", "vov_cap", "vix_call_skew",
                                                     "vix_smile_curvature")},
}

FITTED = ("atm_to_vix", "put_skew", "skew_saturation", "skew_stress", "smile_curvature")


def with_values(params: ChainParams, values: dict[str, float]) -> ChainParams:
    """A copy with some fields replaced (the calibration's trial points)."""
    known = {f.name for f in fields(ChainParams)}
    unknown = set(values) - known
    if unknown:
        raise KeyError(f"not chain parameters: {sorted(unknown)}")
    return replace(params, **values)


def smile_multiplier(x: np.ndarray, stress, params: ChainParams = CALIBRATED) -> np.ndarray:
    """σ(K) / σ_ATM at standardised moneyness x = ln(K/F) / (σ_ATM √τ) (module doc)."""
    x = np.asarray(x, dtype=float)
    b = params.put_skew / (1.0 + params.skew_stress * np.asarray(stress, dtype=float))
    slope = b * x / (1.0 + np.abs(x) / params.skew_saturation)
    return np.clip(1.0 + slope + params.smile_curvature * x * x, 0.5, 4.0)


def spx_smile(atm: np.ndarray, log_moneyness: np.ndarray, tau: np.ndarray, stress,
              params: ChainParams = CALIBRATED) -> np.ndarray:
    """SPX implied vol at ln(K/F) = `log_moneyness` (module doc)."""
    atm = np.asarray(atm, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):  # τ = 0: the expiry day's quotes
        x = np.asarray(log_moneyness, dtype=float) / (atm * np.sqrt(np.asarray(tau, dtype=float)))
    return atm * smile_multiplier(np.nan_to_num(x, nan=0.0, posinf=1e6, neginf=-1e6), stress, params)


def legal_width(price: np.ndarray) -> np.ndarray:
    """Cboe's bid/ask differential limit for an option quoted around `price` (module doc)."""
    p = np.asarray(price, dtype=float)
    return np.select([p < 2.0, p <= 5.0, p <= 10.0, p <= 20.0], [0.25, 0.40, 0.50, 0.80], 1.00)


def option_half_spread(price: np.ndarray, stress, months_out: np.ndarray,
                       params: ChainParams = CALIBRATED) -> np.ndarray:
    """Half the quoted width of an option (SPX or VIX) worth `price`: a share of the legal width
    that grows with stress (to the doubled fast-market limit) and with months to expiry."""
    share = (params.width_share_calm + params.width_share_stress * np.asarray(stress, dtype=float))
    share = share * (1.0 + params.width_per_month * np.asarray(months_out, dtype=float))
    return 0.5 * legal_width(price) * np.minimum(share, params.width_share_cap)


def vx_futures_width(month_index: np.ndarray, stress: float, params: ChainParams = CALIBRATED) -> np.ndarray:
    """Quoted width of VX futures (vol points), before rounding: in calm one tick in the front two
    months and 0.10 beyond; times (1 + vx_width_stress x stress), capped (0.20 front, 0.50 back),
    so beyond M2 the width passes 0.25 at stress 0.5 (the methodology's stress figure); plus a
    little per month further out."""
    m = np.asarray(month_index, dtype=float)
    grow = 1.0 + params.vx_width_stress * float(stress)
    front = np.minimum(params.vx_front_width_calm * grow, params.vx_front_width_cap)
    back = np.minimum(params.vx_back_width_calm * grow, params.vx_back_width_cap)
    back = back + params.vx_back_width_per_month * np.maximum(m - params.vx_front_months - 1, 0)
    return np.where(m <= params.vx_front_months, front, back)


def vix_option_atm_vol(stress: float, tau: float, params: ChainParams = CALIBRATED) -> float:
    """ATM implied vol of a VIX option maturing in `tau` years: the 30-day level (80 % in calm,
    up to 120 % in stress) scaled by (30 days / τ)^0.25 (short options on VIX carry more vol)."""
    one_month = min(params.vov_calm * (1.0 + params.vov_per_stress * float(stress)), params.vov_cap)
    return one_month * (12.0 * tau) ** -0.25
