"""What a vendor file does not carry, completed after the `files` source has read it and before
the gate sees it (issue 19); rows that carry it are left as delivered.

- `spx_options`: `rate` from the day's T-bill (`rates.tbill_3m`, wherever the rates table comes
  from: drop folder or fallback) as a continuous rate, `dividend_yield` from put-call parity on
  the chain's own quotes (`core/parity.py`).
- `vix_options`: `rate` as above, `future_price` = the parity forward of each expiry.
- `vix_futures` rows without a quote (CFE's history has settlements, no bid / ask): bid, ask and
  sizes from the replay's quote model around the real settle (`synthetic.vix_futures_quotes`),
  its width set by the day's stress (from the VIX close of `index_levels`); volume and open
  interest stay the file's.
- `equity_bars` from an equity file: sizes always, and bid / ask where the file has none, from the
  synthetic names' quote model (`synthetic.equity_quotes`, no cent grid: a file may hold adjusted
  prices) at the day's stress.

Quotes so completed are model numbers on real prices: the rows keep their real:<source> label (the
prices are real), and the README says which columns of which layout are model.

A day whose rate cannot be found stays NaN, and the gate refuses it naming the column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from alvh_pipeline.core import parity, provenance

Fetch = Callable[[str, Sequence], pd.DataFrame]


def _rates(frame: pd.DataFrame, fetch: Fetch) -> np.ndarray:
    days = pd.DatetimeIndex(frame["date"].dt.normalize().unique())
    rates = fetch("rates", list(days))
    tbill = pd.Series(rates["tbill_3m"].to_numpy(float), index=pd.DatetimeIndex(rates["date"]).normalize())
    tbill = tbill[~tbill.index.duplicated()]
    return parity.continuous_rate(tbill.reindex(frame["date"].dt.normalize()).to_numpy())


def _stress(days: pd.DatetimeIndex, fetch: Fetch) -> pd.Series:
    """Each day's stress level (market_sim.stress_level of the variance the day's VIX close implies,
    as the replay sets it); 0 (calm) where no VIX row is found."""
    from alvh_pipeline.core import market_sim as ms
    from alvh_pipeline.sources.replay import variance_from_vix

    cfg = ms.SimConfig()
    idx = fetch("index_levels", list(days))
    vix = idx[idx["index"] == "VIX"].set_index(pd.DatetimeIndex(idx.loc[idx["index"] == "VIX", "date"]).normalize())
    vix = vix["close"][~vix.index.duplicated()].reindex(days)
    stress = pd.Series(ms.stress_level(variance_from_vix(vix.to_numpy(float), cfg), cfg), index=days)
    return stress.where(vix.notna(), 0.0)


def _quote_futures(frame: pd.DataFrame, need: np.ndarray, fetch: Fetch, seed: int) -> pd.DataFrame:
    from alvh_pipeline.core import market_sim as ms
    from alvh_pipeline.sources import synthetic

    out = frame.copy()
    rows = frame[need]
    days = pd.DatetimeIndex(rows["date"].dt.normalize().unique())
    stress = _stress(days, fetch)
    for day, g in rows.groupby(rows["date"].dt.normalize(), sort=True):  # the model's stream is per day
        q = synthetic.vix_futures_quotes(day, g["settle"].to_numpy(float), g[["contract", "expiry", "month_index"]],
                                         float(stress[day]), ms.day_rng(seed, "vix_futures", day),
                                         published=True)
        for c in ("bid", "ask", "bid_size", "ask_size"):
            out.loc[g.index, c] = q[c].to_numpy()
    return out


def _quote_bars(frame: pd.DataFrame, need: np.ndarray, fetch: Fetch, seed: int) -> pd.DataFrame:
    from alvh_pipeline.core import market_sim as ms
    from alvh_pipeline.sources import synthetic

    out = frame.copy()
    rows = frame[need]
    days = pd.DatetimeIndex(rows["date"].dt.normalize().unique())
    stress = _stress(days, fetch)
    for day, g in rows.groupby(rows["date"].dt.normalize(), sort=True):
        q = synthetic.equity_quotes(g["close"].to_numpy(float), (g["sector"] == "ETF").to_numpy(), float(stress[day]),
                                    ms.day_rng(seed, "equity_bars", day), cents=False)
        delivered = g["bid"].notna() & g["ask"].notna()
        for c in ("bid", "ask"):
            out.loc[g.index, c] = np.where(delivered, g[c].to_numpy(float), q[c])
        for c in ("bid_size", "ask_size"):
            out.loc[g.index, c] = q[c]
    return out


def complete(table: str, frame: pd.DataFrame, fetch: Fetch, seed: int) -> pd.DataFrame:
    """`frame` with what its vendor rows lack filled in (see the module docstring); `seed`: the
    source's, for the quote models' per-day streams (the replay's streams, for the same seed)."""
    if not len(frame):
        return frame
    if table == "vix_futures":
        need = frame["bid"].isna().to_numpy()
        return _quote_futures(frame, need, fetch, seed) if need.any() else frame
    if table == "equity_bars":
        need = (frame["provenance"].astype(str) == provenance.real("equity_file")).to_numpy()
        return _quote_bars(frame, need, fetch, seed) if need.any() else frame
    if table not in ("spx_options", "vix_options") or not frame["rate"].isna().any():
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
