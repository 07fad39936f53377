"""What a vendor file does not carry, completed after the `files` source has read it and before
the gate sees it (issue 19); rows that carry it are left as delivered.

- `spx_options`: `rate` from the day's T-bill (`rates.tbill_3m`, wherever the rates table comes
  from: drop folder or fallback) as a continuous rate, `dividend_yield` from put-call parity on
  the chain's own quotes (`core/parity.py`).
- `vix_options`: `rate` as above, `future_price` = the parity forward of each expiry.

A day whose rate cannot be found stays NaN, and the gate refuses it naming the column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from alvh_pipeline.core import parity

Fetch = Callable[[str, Sequence], pd.DataFrame]


def _rates(frame: pd.DataFrame, fetch: Fetch) -> np.ndarray:
    days = pd.DatetimeIndex(frame["date"].dt.normalize().unique())
    rates = fetch("rates", list(days))
    tbill = pd.Series(rates["tbill_3m"].to_numpy(float), index=pd.DatetimeIndex(rates["date"]).normalize())
    tbill = tbill[~tbill.index.duplicated()]
    return parity.continuous_rate(tbill.reindex(frame["date"].dt.normalize()).to_numpy())


def complete(table: str, frame: pd.DataFrame, fetch: Fetch) -> pd.DataFrame:
    """`frame` with what its vendor rows lack filled in (see the module docstring)."""
    if table not in ("spx_options", "vix_options") or not len(frame) or not frame["rate"].isna().any():
        return frame
    need = frame["rate"].isna().to_numpy()
    rows = frame[need].copy()
    rows["rate"] = _rates(rows, fetch)
    if table == "spx_options":
        derived = "dividend_yield"
        rows[derived] = parity.dividend_yields(rows).to_numpy()
    else:
        derived = "future_price"
        rows[derived] = parity.future_prices(rows).to_numpy()
    out = frame.copy()
    for column in ("rate", derived):
        out.loc[need, column] = rows[column].to_numpy()
    return out
