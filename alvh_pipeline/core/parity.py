"""What a real option chain does not carry, from its own quotes by put-call parity (issue 19).

Vendor chains (Cboe DataShop, ORATS, HistoricalOptionData) carry quotes but not the rate, the
dividend yield or (for VIX options) the future the contracts price on, which our contracts require.

- **rate**: the 13-week T-bill of the day (`rates.tbill_3m`, a discount-basis fraction) as a
  continuously compounded rate: r = -ln(1 - d * 91/360) / (91/365).
- **forward** per (date, expiry), Cboe's VIX-white-paper rule: at the strike where the call and put
  mids are closest (both two-sided, bid > 0), F = K + e^{rT} (C - P).
- **dividend yield** per (date, expiry) from the forward: q = r - ln(F / S) / T, where S is the
  chain's underlying. An expiry too close for a stable q (T < 7 days: a $0.05 mid error moves
  q by more than 0.5 %/yr at SPX 1,000) or without a usable pair takes the day's median q of the
  other expiries; a day without any is left NaN, which the gate refuses (not nullable).
- **VIX future price** per (date, expiry) = that forward (a VIX option is priced on the same-month
  VX future, which parity recovers from the option quotes without reading the futures table).

Pure numpy / pandas; T in years of 365 days, as the books and the synthetic chains use.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TBILL_DAYS = 91
MIN_DAYS_FOR_OWN_YIELD = 7


def continuous_rate(tbill_discount: np.ndarray | pd.Series) -> np.ndarray:
    """A 13-week T-bill discount rate as a continuously compounded annual rate (ACT/365)."""
    d = np.asarray(tbill_discount, dtype=float)
    return -np.log1p(-d * TBILL_DAYS / 360.0) / (TBILL_DAYS / 365.0)


def _years(chain: pd.DataFrame) -> np.ndarray:
    return ((pd.to_datetime(chain["expiry"]) - pd.to_datetime(chain["date"])).dt.days / 365.0).to_numpy()


def implied_forwards(chain: pd.DataFrame) -> pd.DataFrame:
    """Per (date, expiry): the parity forward F (NaN where no strike has both sides two-sided).
    `chain`: date, expiry, strike, option_type, bid, ask, rate. Columns: date, expiry, forward, tau."""
    quoted = chain[(chain["bid"] > 0) & (chain["ask"] >= chain["bid"])]
    mid = quoted.assign(mid=(quoted["bid"] + quoted["ask"]) / 2.0)
    keys = ["date", "expiry", "strike"]
    calls = mid[mid["option_type"] == "C"].set_index(keys)
    puts = mid.loc[mid["option_type"] == "P", keys + ["mid"]].set_index(keys)
    pairs = calls[["mid", "rate"]].join(puts, rsuffix="_put", how="inner").reset_index()
    days = chain[["date", "expiry"]].drop_duplicates().reset_index(drop=True)
    days["tau"] = _years(days)
    if not len(pairs):
        return days.assign(forward=np.nan)
    pairs["diff"] = pairs["mid"] - pairs["mid_put"]
    pairs["gap"] = pairs["diff"].abs()
    best = pairs.sort_values(["date", "expiry", "gap", "strike"], kind="stable").drop_duplicates(["date", "expiry"])
    tau = _years(best)
    best = best.assign(forward=best["strike"].to_numpy() + np.exp(best["rate"].to_numpy() * tau)
                       * best["diff"].to_numpy())
    return days.merge(best[["date", "expiry", "forward"]], on=["date", "expiry"], how="left")


def dividend_yields(chain: pd.DataFrame) -> pd.Series:
    """Each row's continuous dividend yield from its expiry's parity forward (module docstring).
    `chain`: date, expiry, strike, option_type, bid, ask, rate, underlying."""
    fwd = implied_forwards(chain)
    spot = chain.groupby(["date", "expiry"], sort=False)["underlying"].first()
    rate = chain.groupby(["date", "expiry"], sort=False)["rate"].first()
    fwd = fwd.join(spot, on=["date", "expiry"]).join(rate, on=["date", "expiry"])
    with np.errstate(divide="ignore", invalid="ignore"):
        own = fwd["rate"] - np.log(fwd["forward"] / fwd["underlying"]) / fwd["tau"]
    stable = (fwd["tau"] * 365.0 >= MIN_DAYS_FOR_OWN_YIELD) & np.isfinite(own)
    day_median = own.where(stable).groupby(fwd["date"]).transform("median")
    fwd["q"] = own.where(stable, day_median)
    q = chain[["date", "expiry"]].merge(fwd[["date", "expiry", "q"]], on=["date", "expiry"], how="left")["q"]
    return pd.Series(q.to_numpy(), index=chain.index, name="dividend_yield")


def future_prices(chain: pd.DataFrame) -> pd.Series:
    """Each row's parity forward: the VX future a VIX option prices on. `chain` as for
    `implied_forwards`."""
    fwd = implied_forwards(chain)
    f = chain[["date", "expiry"]].merge(fwd[["date", "expiry", "forward"]], on=["date", "expiry"], how="left")
    return pd.Series(f["forward"].to_numpy(), index=chain.index, name="future_price")
