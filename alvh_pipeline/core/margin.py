"""Margin assumptions for the hedge book (DESIGN §9 "Margin"; books API `core/margin.py`).

VX futures margin is set by CFE / brokers per contract and changes over time. What this project
knows (DESIGN §9) is one dated observation: 2013, front months $5,500 initial / $5,000
maintenance per contract, spreads $2,860-4,015 per pair. Everything in ``VX_MARGIN`` is therefore
an ASSUMPTION built on that observation and labelled as such:

* 2012-01-01 onward: the 2013 levels, carried forward (later levels are not published here).
  Spreads take the upper end of the range, $4,015 per pair (conservative: the range's low end
  belongs to the cheaper month pairs). Spread maintenance is not given: it is assumed to keep the
  outright maintenance / initial ratio, 5,000 / 5,500.
* 2004-03-26 (VX launch) to 2011-12-31: pre-2012 levels are not published here. Extrapolated as
  the same dollar amounts (the pre-2007-03-26 contract, 10x the index on a $100 multiplier, had
  the same notional as today's $1,000 x index, so per-contract dollars carry over), with the level
  differences between calm and stressed years carried by the VIX-regime stress multiplier below.
* ``vx_stress_multiplier`` (assumption): clearing houses raise futures margin in volatile regimes;
  x1 below VIX 25, x1.5 for 25 <= VIX < 40, x2 at VIX >= 40 (2008, 2020), x2 when VIX is unknown
  (a margin check must not pass on missing data).

Options: long options (<= 9 months) are paid in full, so they need no margin beyond the premium
already paid (Cboe strategy-based rules); condor margin lives in `core.condor`. Minimum account
equity $2,000 (Cboe customer rule).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "MIN_ACCOUNT_EQUITY",
    "VX_LAUNCH",
    "VX_MARGIN",
    "long_option_margin",
    "split_spread_pairs",
    "vx_margin",
    "vx_stress_multiplier",
]

MIN_ACCOUNT_EQUITY = 2000.0
VX_LAUNCH = pd.Timestamp("2004-03-26")

_INITIAL_2013, _MAINT_2013, _SPREAD_2013_HIGH = 5500.0, 5000.0, 4015.0

VX_MARGIN = pd.DataFrame(
    {
        "effective_from": pd.to_datetime([VX_LAUNCH, "2012-01-01"]),
        "initial_per_contract": [_INITIAL_2013, _INITIAL_2013],
        "maintenance_per_contract": [_MAINT_2013, _MAINT_2013],
        "spread_per_pair": [_SPREAD_2013_HIGH, _SPREAD_2013_HIGH],
        "source": [
            "extrapolated: pre-2012 CFE levels not published here; 2013 dollar levels carried back "
            "(same notional per contract before 2007-03-26), regime differences via vx_stress_multiplier",
            "2013 CFE front-month level (DESIGN §9): $5,500 initial / $5,000 maintenance; spreads "
            "$2,860-4,015 per pair, upper end taken; carried forward (later levels not published here)",
        ],
        "label": ["assumption", "assumption"],
    }
)


def _row(date) -> pd.Series:
    day = pd.Timestamp(date).normalize()
    if day < VX_MARGIN["effective_from"].iloc[0]:
        raise ValueError(f"no VX futures margin before the contract's launch {VX_LAUNCH.date()}: {day.date()}")
    # the latest row in force on that day (effective_from inclusive)
    i = int(np.searchsorted(VX_MARGIN["effective_from"].to_numpy(), day.to_datetime64(), side="right")) - 1
    return VX_MARGIN.iloc[i]


def vx_margin(date, outright_contracts: float, spread_pairs: float, stress_multiplier: float) -> tuple[float, float]:
    """(initial, maintenance) USD for ``outright_contracts`` VX futures and ``spread_pairs`` calendar
    pairs (one long + one short contract) on ``date``, from the dated ``VX_MARGIN`` assumptions times
    ``stress_multiplier``. Spread maintenance = spread_per_pair x maintenance / initial (module doc).
    Quantities count by absolute value."""
    if not (np.isfinite(stress_multiplier) and stress_multiplier > 0):
        raise ValueError(f"stress_multiplier must be positive, got {stress_multiplier!r}")
    row = _row(date)
    outright, pairs = abs(float(outright_contracts)), abs(float(spread_pairs))
    ratio = row["maintenance_per_contract"] / row["initial_per_contract"]
    initial = outright * row["initial_per_contract"] + pairs * row["spread_per_pair"]
    maintenance = outright * row["maintenance_per_contract"] + pairs * row["spread_per_pair"] * ratio
    return float(initial * stress_multiplier), float(maintenance * stress_multiplier)


def vx_stress_multiplier(vix: float) -> float:
    """Assumption (module doc): 1 below VIX 25, 1.5 for 25 <= VIX < 40, 2 at VIX >= 40 or unknown."""
    v = float(vix)
    if not np.isfinite(v) or v >= 40:
        return 2.0
    return 1.5 if v >= 25 else 1.0


def split_spread_pairs(quantities: np.ndarray) -> tuple[float, float]:
    """(outright contracts, spread pairs) of one day's VX positions (signed contracts per month):
    every short contract facing a long one in another month forms a calendar pair, the rest is
    outright. E.g. +5 M2 / -5 M4 -> (0, 5); +5 M2 / -3 M4 -> (2, 3)."""
    q = np.asarray(quantities, dtype=float)
    longs, shorts = q[q > 0].sum(), -q[q < 0].sum()
    pairs = min(longs, shorts)
    return float(longs + shorts - 2 * pairs), float(pairs)


def long_option_margin(premium_paid_usd: float) -> float:
    """Long options (<= 9 months) are paid in full: 0 margin beyond the premium, which already left
    the cash (Cboe strategy-based rules, DESIGN §9)."""
    return 0.0
