"""core/parity.py against closed forms: Black-Scholes chains with a known rate and dividend give
back that dividend yield (and, on Black-76 VIX chains, the future) from their quotes alone."""

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import parity
from alvh_pipeline.core.pricing import black, black_scholes


def _chain(spot=1300.0, r=0.03, q=0.021, days=(3, 17, 45, 100), half_spread=0.05) -> pd.DataFrame:
    rows = []
    for d in days:
        t = d / 365.0
        strikes = np.arange(1100, 1505, 5.0)
        for kind in ("C", "P"):
            price = black_scholes(spot, strikes, t, 0.2, r, q, np.array([kind] * len(strikes)))
            rows.append(pd.DataFrame({"date": pd.Timestamp("2008-03-03"),
                                      "expiry": pd.Timestamp("2008-03-03") + pd.Timedelta(days=d), "strike": strikes,
                                      "option_type": kind, "bid": np.maximum(price - half_spread, 0.0),
                                      "ask": price + half_spread, "rate": r, "underlying": spot}))
    return pd.concat(rows, ignore_index=True)


def test_the_dividend_yield_comes_back_from_the_quotes():
    chain = _chain()
    q = parity.dividend_yields(chain)
    long_dated = (chain["expiry"] - chain["date"]).dt.days >= parity.MIN_DAYS_FOR_OWN_YIELD
    assert q[long_dated].to_numpy() == pytest.approx(0.021, abs=1e-9)  # symmetric spread: mid = model price
    assert q[~long_dated].to_numpy() == pytest.approx(0.021, abs=1e-9)  # the day's median stands in


def test_an_expiry_without_a_two_sided_pair_takes_the_days_median():
    chain = _chain()
    short = chain["expiry"] == chain["expiry"].max()
    chain.loc[short & (chain["option_type"] == "P"), "bid"] = 0.0  # no two-sided put at the far expiry
    q = parity.dividend_yields(chain)
    assert q[short].to_numpy() == pytest.approx(0.021, abs=1e-9)


def test_the_vix_future_comes_back_from_black76_quotes():
    f, r, t = 23.4, 0.02, 30 / 365.0
    strikes = np.arange(10, 60, 1.0)
    rows = [pd.DataFrame({"date": pd.Timestamp("2008-03-03"), "expiry": pd.Timestamp("2008-04-02"),
                          "strike": strikes, "option_type": k, "rate": r,
                          "bid": black(f, strikes, t, 0.9, np.exp(-r * t), np.array([k] * len(strikes))) - 0.05,
                          "ask": black(f, strikes, t, 0.9, np.exp(-r * t), np.array([k] * len(strikes))) + 0.05})
            for k in ("C", "P")]
    chain = pd.concat(rows, ignore_index=True)
    chain["bid"] = chain["bid"].clip(lower=0)
    assert parity.future_prices(chain).to_numpy() == pytest.approx(f, rel=1e-9)


def test_the_tbill_discount_rate_as_a_continuous_rate():
    d = 0.05
    price = 1 - d * 91 / 360
    assert parity.continuous_rate(np.array([d]))[0] == pytest.approx(-np.log(price) * 365 / 91)
