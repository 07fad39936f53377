"""The run's inputs and its starting state: each day's `MarketDay` from multi-day frames (each
read with its look-back: each stock's trailing volatility, each VX month's beta to spot VIX, the
universe's beta trend, the published CFE final settlements of the futures the market holds as
real, where the day's numbers come from), and a mode's state restored from the lake's rows."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from alvh_pipeline.core import allocation as alloc
from alvh_pipeline.core import alvh, provenance
from alvh_pipeline.core.books.model import BookConfig, MarketDay, ModeState, fresh_state
from alvh_pipeline.core.books.orders import orders_from_json
from alvh_pipeline.core.books.tables import LEG_COLUMNS, LEG_SORT

# ---- the run --------------------------------------------------------------------------------

VOL_WINDOW = 60  # sessions of returns behind each stock's volatility
BETA_WINDOW = 60  # sessions behind each VX month's beta to spot VIX
BETA_TREND_LAG = 21  # "rising" CAPM beta: today's universe mean above its value a month ago
HISTORY_SESSIONS = max(VOL_WINDOW, BETA_WINDOW, BETA_TREND_LAG) + 5  # validated / feature look-back the books read


def _provenance(parts: dict[str, set[str] | None]) -> str:
    """Where the day's numbers come from, per input: e.g. 'index=real futures=real options=model'
    (`parts`: the provenance labels of each input's rows of the day; None or empty: not shown)."""
    return " ".join(f"{name}={'+'.join(sorted(labels))}" for name, labels in parts.items() if labels)


class _ByDate:
    """A multi-day frame's rows per date (dates as timestamps, rows in their order within a day,
    index reset): one stable sort and a slice per day, rather than a frame per day up front."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.empty = frame.iloc[0:0]
        self.bounds: dict[pd.Timestamp, tuple[int, int]] = {}
        self.rows = frame
        if not len(frame):
            return
        dates = pd.to_datetime(frame["date"])
        values = dates.to_numpy()
        order = np.argsort(values, kind="stable")
        self.rows = frame.assign(date=dates)
        if not np.array_equal(order, np.arange(len(order))):
            self.rows = self.rows.take(order)
        values = values[order]
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
        ends = np.r_[starts[1:], len(values)]
        self.bounds = {pd.Timestamp(values[a]): (a, b) for a, b in zip(starts, ends) if not np.isnat(values[a])}
        self.provenance = (self.rows["provenance"].astype(str).to_numpy(object) if "provenance" in frame
                           else None)

    def get(self, date: pd.Timestamp) -> pd.DataFrame:
        """The day's rows (the frame's first 0 rows when it has none)."""
        if date not in self.bounds:
            return self.empty
        a, b = self.bounds[date]
        return self.rows.iloc[a:b].reset_index(drop=True)

    def labels(self, date: pd.Timestamp) -> set[str] | None:
        """The day's provenance labels (None without rows or a provenance column)."""
        if date not in self.bounds or self.provenance is None:
            return None
        a, b = self.bounds[date]
        return set(self.provenance[a:b].tolist())


def _with_datetime_expiry(chain: pd.DataFrame) -> pd.DataFrame:
    """The chain with `expiry` as datetime64[ns] (the lake gives dates as objects): converted once
    per chunk, from its few distinct values, rather than every row of every day's chain."""
    if not len(chain) or "expiry" not in chain or chain["expiry"].dtype != object:
        return chain
    codes, uniques = pd.factorize(chain["expiry"])
    values = pd.to_datetime(pd.Index(uniques)).to_numpy("datetime64[ns]")
    return chain.assign(expiry=np.where(codes >= 0, values[np.maximum(codes, 0)], np.datetime64("NaT", "ns")))


def market_days(frames: dict[str, pd.DataFrame], dates: pd.DatetimeIndex) -> list[MarketDay]:
    """Per-day inputs from multi-day frames (each may start before `dates[0]` for look-backs).
    frames: spx_options, vix_options, vix_futures, index_levels, equity_bars, rates (validated),
    regime, statarb (signals), fundamentals (features)."""
    frames = {**frames, **{name: _with_datetime_expiry(frames[name]) for name in ("spx_options", "vix_options")}}
    by = {name: _ByDate(frames[name]) for name in ("spx_options", "vix_options", "vix_futures", "index_levels",
                                                    "regime", "statarb", "equity_bars")}
    idx = frames["index_levels"].assign(date=lambda x: pd.to_datetime(x["date"]))
    levels = {k: g.set_index("date")[["open", "close"]] for k, g in idx.groupby("index")}
    vix_close = levels["VIX"]["close"].sort_index()
    betas = alvh.vx_beta_to_spot(frames["vix_futures"], vix_close, window=BETA_WINDOW)
    beta_by_day = _ByDate(betas[pd.to_datetime(betas["date"]).isin(dates)])
    eq = frames["equity_bars"].assign(date=lambda x: pd.to_datetime(x["date"]))
    closes = eq.pivot(index="date", columns="symbol", values="close").sort_index()
    vols = trailing_std(np.log(closes).diff(), VOL_WINDOW, min_periods=20)
    fund = frames["fundamentals"].assign(date=lambda x: pd.to_datetime(x["date"]))
    mean_beta = fund.groupby("date")["capm_beta_60d"].mean().sort_index()
    rising = mean_beta > mean_beta.shift(BETA_TREND_LAG)
    rates = frames["rates"].assign(date=lambda x: pd.to_datetime(x["date"])).set_index("date")["tbill_3m"]
    finals = _real_final_settlements(frames)
    sessions = closes.index
    positions = sessions.get_indexer(dates)
    out = []
    for date, pos in zip(dates, positions):  # the per-day views only; nothing here reads past `date`
        prev = sessions[pos - 1] if pos > 0 else date - pd.Timedelta(days=1)
        regime = by["regime"].get(date)
        beta = beta_by_day.get(date)
        options = [by[name].labels(date) for name in ("spx_options", "vix_options")]
        out.append(MarketDay(
            date=date, spx=by["spx_options"].get(date), vix=by["vix_options"].get(date),
            futures=by["vix_futures"].get(date),
            spx_open=float(levels["SPX"].at[date, "open"]), spx_close=float(levels["SPX"].at[date, "close"]),
            vix_open=float(levels["VIX"].at[date, "open"]), vix_close=float(levels["VIX"].at[date, "close"]),
            rate=float(rates.get(date, 0.0)),
            regime=regime.iloc[0] if len(regime) else pd.Series(dtype=object),
            statarb=by["statarb"].get(date), equities=by["equity_bars"].get(date),
            equity_vols=vols.loc[date] if date in vols.index else pd.Series(dtype=float),
            vx_beta=beta.set_index("month_index")["beta"] if len(beta) else pd.Series(dtype=float),
            beta_rising=bool(rising.get(date, False)),
            provenance=_provenance({"index": by["index_levels"].labels(date),
                                    "futures": by["vix_futures"].labels(date),
                                    "options": set().union(*(o for o in options if o is not None)),
                                    "equities": by["equity_bars"].labels(date)}),
            days_since_previous=int((date - prev).days), vx_final_settlement=finals,
        ))
    return out


def _real_final_settlements(frames: dict[str, pd.DataFrame]) -> dict[pd.Timestamp, float]:
    """`frames["vx_final_settlements"]` (expiry, settle: published CFE values, when a caller has
    them) for the expiries whose futures rows in `frames["vix_futures"]` are real: a model market
    settles on its own VIX, not on history's."""
    finals = frames.get("vx_final_settlements")
    fut = frames["vix_futures"]
    if finals is None or not len(finals) or "provenance" not in fut:
        return {}
    real = set(pd.to_datetime(fut.loc[provenance.is_real(fut["provenance"]), "expiry"]))
    return {e: float(v) for e, v in zip(pd.to_datetime(finals["expiry"]), finals["settle"].to_numpy(float))
            if e in real}


def trailing_std(returns: pd.DataFrame, window: int, min_periods: int) -> pd.DataFrame:
    """Sample std (ddof 1) of each column over the trailing `window` rows, each window computed on
    its own rather than by a running update, so a date's value does not depend on how much earlier
    history the frame holds (a run split in two gives the same books as one run, bit for bit)."""
    arr = np.vstack([np.full((window - 1, returns.shape[1]), np.nan), returns.to_numpy(float)])
    view = np.lib.stride_tricks.sliding_window_view(arr, window, axis=0)
    count = np.isfinite(view).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows are masked below
        std = np.nanstd(view, axis=-1, ddof=1)
    return pd.DataFrame(np.where(count >= min_periods, std, np.nan), index=returns.index, columns=returns.columns)


# what a day's state needs from the account row
STATE_COLUMNS = ("program_notional", "l2_target_dollars", "allocation_basis", "pending_orders")


def state_from_lake(mode: str, legs: pd.DataFrame, account: pd.DataFrame, cfg: BookConfig) -> ModeState:
    """The state at the close of the last day in `account` (its trailing rows give the sleeve
    returns the allocation reads); `legs` = that day's open legs of every book."""
    if not len(account):
        return fresh_state(mode, cfg.account_equity)
    missing = [c for c in STATE_COLUMNS if c not in account]
    if missing:
        raise ValueError(f"books/account lacks {missing}: these books were written by an earlier version of the "
                         f"rules (DESIGN §5 before issue 18); delete the lake's books/ folder (and attribution/) "
                         f"and materialize the books again from their first day")
    a = account.assign(date=pd.to_datetime(account["date"])).sort_values("date")
    last = a.iloc[-1]
    history = a.set_index("date")[[f"return_{s}" for s in alloc.SLEEVES]]
    history.columns = list(alloc.SLEEVES)
    legs = legs.copy()
    for c in ("date", "expiry", "entry_date"):
        legs[c] = pd.to_datetime(legs[c])
    last_expiry = pd.Timestamp(last["last_condor_expiry"]) if pd.notna(last["last_condor_expiry"]) else None
    legs = legs[LEG_COLUMNS].sort_values(list(LEG_SORT), kind="stable").reset_index(drop=True)
    return ModeState(
        mode, float(last["cash"]), legs,
        {s: float(last[f"sleeve_cash_{s}"]) for s in alloc.SLEEVES},
        {s: float(last[f"sleeve_value_{s}"]) for s in alloc.SLEEVES},
        history.iloc[-(cfg.allocation_window + 5):].astype(float),
        {s: float(last[f"weight_{s}"]) for s in alloc.SLEEVES},
        float(last["margin_call_size"]), last_expiry, str(last["hedge_budget_month"] or ""),
        float(last["hedge_budget_left"]), float(last["program_notional"]), float(last["l2_target_dollars"]),
        orders_from_json(last["pending_orders"]))
