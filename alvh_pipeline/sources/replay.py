"""The `replay` source: real history where it exists, generated conditioned on it elsewhere,
with `provenance` = "real" (or "real:<source>"), "derived", "model" or "synthetic" on every row.

Real: SPX and NASDAQ Composite OHLC 1999-01-04..2018-12-31 and VIX close 2014-01-03..2019-01-03
(`arch.data`), CFE VX settlements 2004-03-26..2014-08-14 and the 13-week T-bill 2005..2014
(shipped in the package), and the equity bars 2004-01-02..2017-11-10: open / high / low / close /
volume of 120 US large caps and SPY / QQQ / IWM from a public-domain daily-price dataset (shipped:
`real_data.load_real_equities`), labelled "real:survivors_2017" because the names are 2017's
survivors (ranked by 2015-2017 liquidity: no Lehman, Wachovia or Bear Stearns), so stat-arb on them
is biased upward; prices are adjusted for splits and dividends back from 2017-11-10 (returns, not
traded levels; the dividend adjustment is not point-in-time). Derived: the VIX close on CFE days
before the real VIX starts, the zero-maturity extrapolation of the real VX curve
(`real_data.vix_from_futures`; within 1.3 points on average of the expiry-day final settlements,
0.65 of the real VIX where both exist). Model: the VIX before the CFE data (30-day implied vol of
the variance model driven by the EWMA variance of real SPX returns), VX futures outside the CFE
span, every option chain (priced off the real spot / real futures with implied vols set by the VIX
path), quotes and depth (the real equity bars' bid / ask / sizes too: `synthetic.equity_quotes` on
the real close, no cent grid on adjusted prices), breadth (from real SPX moves), fundamentals (the
real names' computed from their real closes the synthetic way), macro calendar, REER and rate
differential, an ETF bar the real file lacks (SPY and IWM before 2005-02-25, SPY / IWM on
2011-02-17: `_real_equity_day`) and a single name's session it lacks (its last close carried, 15
bars: `real_equities`), the same names after the file ends (2017-11-13..2018-12-31: their last
close moved by beta x the real SPX move plus residual noise, `continued_bars`). Synthetic: the
equity basket before 2004-01-02 (the synthetic universe re-based on real SPX returns, planted pairs
kept; the only equity rows for which planted-pair recall means anything).

The one VIX path (real, else derived, else model) sets the state's spot variance
(`variance_from_vix`), so everything generated from the variance (SPX option vols, VIX option and
futures stress, model VX futures, quote widths, the VIX rows) follows the same path.

A range crossing 2004-01-02 changes the equity universe wholesale (100 synthetic names -> 120 real
ones). Every row's provenance changes with it (equity bars synthetic -> real, fundamentals
synthetic -> model), which the gate's universe rule takes as a declared reconstitution (it compares
a universe with the previous delivery's only where they share a source): the switch day passes,
and a real delivery missing names is still refused. At the file's end (2017-11-13) the names stay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from alvh_pipeline.core import calendar as cal
from alvh_pipeline.core import market_sim as ms
from alvh_pipeline.core import provenance
from alvh_pipeline.sources import real_data, synthetic

MODEL_TABLES = {"spx_options", "vix_options", "breadth", "macro_events", "fundamentals"}
REAL_EQUITIES = provenance.real("survivors_2017")
ETF_SECTOR = "ETF"
PRICE_COLUMNS = ("open", "high", "low", "close", "bid", "ask")


def variance_from_vix(vix: np.ndarray, cfg: ms.SimConfig) -> np.ndarray:
    """Spot variance v_t whose model VIX (`market_sim.vix_future_fair(v, 0)`) equals `vix`."""
    theta, k, length = cfg.long_run_vol**2, cfg.fwd_var_speed, ms.THIRTY_DAYS
    decay = (1.0 - np.exp(-k * length)) / (k * length)
    target = (np.asarray(vix) / 100.0) ** 2 / ms.vrp(0.0)
    return np.maximum(theta + (target - theta) / decay, 1e-4)


def model_vix(spx_close: np.ndarray) -> np.ndarray:
    """The VIX model used where neither the real VIX nor the VX curve exists: 30-day implied vol
    of the EWMA (10-day half-life) variance of SPX log returns times the variance premium,
    floored at 8 % realised vol."""
    spx_ret = np.log(pd.Series(np.asarray(spx_close, dtype=float))).diff().fillna(0.0).to_numpy()
    ewma_var = pd.Series(spx_ret**2 * 252).ewm(halflife=10, min_periods=1).mean().to_numpy()
    return 100 * np.sqrt(ms.vrp(0.0) * np.maximum(ewma_var, 0.0064))


@lru_cache(maxsize=2)
def replay_state(cfg: ms.SimConfig) -> tuple[ms.MarketState, pd.Series, pd.DataFrame]:
    """A MarketState whose SPX, COMP, variance, rates and equities follow the real paths.
    Returns (state, vix_provenance by date, real index OHLC)."""
    idx = real_data.load_arch_indices()
    spx = idx[idx["index"] == "SPX"].set_index("date")
    comp = idx[idx["index"] == "COMP"].set_index("date")
    dates = pd.DatetimeIndex(spx.index).intersection(cal.all_sessions())
    spx, comp = spx.reindex(dates), comp.reindex(dates).ffill()

    spx_ret = np.log(spx["close"]).diff().fillna(0.0).to_numpy()
    real_vix = idx[idx["index"] == "VIX"].set_index("date")["close"].reindex(dates)
    derived_vix = real_data.load_vix_derived().reindex(dates)
    # real where published, else derived from the real VX curve, else the model
    vix = real_vix.fillna(derived_vix).fillna(pd.Series(model_vix(spx["close"].to_numpy()), index=dates))
    vix_prov = pd.Series(np.select([real_vix.notna(), derived_vix.notna()], ["real", "derived"], "model"),
                         index=dates)
    v = variance_from_vix(vix.to_numpy(), cfg)

    base = ms.market_state(cfg)
    pos = base.index_of(dates)
    # Re-base the synthetic equities on real SPX returns: replace each name's market component,
    # and give followers of planted pairs their leader's adjustment times the hedge ratio so the
    # planted cointegration survives.
    real_cum = np.cumsum(spx_ret)
    syn_cum = np.cumsum(base.spx_ret[pos]) - base.spx_ret[pos][0]
    adj = np.outer(real_cum - syn_cum, base.equity_beta)
    sym_pos = {s: i for i, s in enumerate(base.symbols)}
    for p in base.planted_pairs:  # ~10 pairs
        adj[:, sym_pos[p.follower]] = p.hedge_ratio * adj[:, sym_pos[p.leader]]
    eq = base.equity_close[pos] * np.exp(adj)

    tbill = real_data.load_tbill().reindex(dates).ffill()
    tbill = tbill.fillna(pd.Series(base.tbill[pos], index=dates)).to_numpy()
    state = dataclasses.replace(
        base, dates=dates, regime=base.regime[pos], variance=v, spx=spx["close"].to_numpy(),
        spx_ret=spx_ret, comp=comp["close"].to_numpy(), equity_close=eq, tbill=tbill,
        reer=base.reer[pos], rate_diff=base.rate_diff[pos],
        etf_close={"SPY": spx["close"].to_numpy() / 10.0, "QQQ": comp["close"].to_numpy() / 40.0,
                   "IWM": base.etf_close["IWM"][pos] * np.exp(1.1 * (real_cum - syn_cum))},
    )
    real_ohlc = pd.concat([spx.assign(index="SPX"), comp.assign(index="COMP")]).reset_index(names="date")
    return state, vix_prov, real_ohlc


@dataclasses.dataclass(frozen=True)
class RealEquities:
    """The packaged real bars, cut for per-day slicing: `rows` sorted by date then symbol, day k's
    rows at `rows[bounds[k]:bounds[k + 1]]` (a day is two integers, not a filter of 430k rows)."""

    dates: pd.DatetimeIndex  # the file's sessions
    bounds: np.ndarray  # (len(dates) + 1,) row offsets
    rows: pd.DataFrame  # the file (date, symbol, sector, open, high, low, close, volume) + carried bars
    carried: np.ndarray  # per row of `rows`: a single name's session the file lacks (model, not real)
    names: np.ndarray  # single names (not ETFs), sorted: the fundamentals' universe, fixed order
    closes: np.ndarray  # (len(dates), len(names)) closes, a missing session carrying the last close
    etf_scale: pd.DataFrame  # date x ETF: the ETF's last real close / the model's close that day


@lru_cache(maxsize=2)
def real_equities(cfg: ms.SimConfig) -> RealEquities:
    """`real_data.load_real_equities` arranged for the replay (once per process and config).

    A session the file lacks for a single name (15 in all: DIS, F, GE, TXN on 2004-03-30 / 31, CL,
    COF, COP, CTL, CVS, CVX on 2010-11-19, SCHW on 2011-02-17; every name spans the whole file) is
    a carried bar: open = high = low = close = the name's last real close, volume 0, labelled
    "model". Absent, a position held in the name would be worth nothing that day (the books value
    legs with `nansum`) and the P&L would swing by its whole value and back."""
    file = real_data.load_real_equities()
    single = file[file["sector"] != ETF_SECTOR]
    dates = pd.DatetimeIndex(np.unique(file["date"].to_numpy()))
    raw = single.pivot(index="date", columns="symbol", values="close").reindex(dates)
    wide = raw.ffill()
    gap_day, gap_name = np.nonzero(raw.isna().to_numpy() & wide.notna().to_numpy())
    sector_of = single.drop_duplicates("symbol").set_index("symbol")["sector"]
    last = wide.to_numpy(float)[gap_day, gap_name]
    names = wide.columns.to_numpy()
    carried = pd.DataFrame({"date": dates[gap_day], "symbol": names[gap_name],
                            "sector": sector_of.reindex(names[gap_name]).to_numpy(),
                            "open": last, "high": last, "low": last, "close": last,
                            "volume": np.zeros(len(last), np.int64)})
    state, _, _ = replay_state(cfg)
    after = state.dates[state.dates > dates[-1]]
    later = continued_bars(state, dates, wide, single, after)
    rows = pd.concat([file.assign(_carried=False), carried.assign(_carried=True), later.assign(_carried=True)],
                     ignore_index=True)
    rows = rows.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)
    wide = pd.concat([wide, later.pivot(index="date", columns="symbol", values="close")[names]])
    dates = dates.append(after)
    bounds = np.searchsorted(rows["date"].to_numpy(), np.r_[dates.to_numpy(), np.datetime64("2262-01-01")])
    # a model ETF bar on a day the file lacks continues the ETF's last real close with the model's
    # move since then (ffill of real / model): no level jump, and nothing after the day is read
    pos = state.index_of(dates)
    etf = file[file["sector"] == ETF_SECTOR].pivot(index="date", columns="symbol", values="close").reindex(dates)
    model = pd.DataFrame({k: v[pos] for k, v in state.etf_close.items()}, index=dates)[list(etf.columns)]
    return RealEquities(dates=dates, bounds=bounds, rows=rows.drop(columns="_carried"),
                        carried=rows["_carried"].to_numpy(bool), names=names, closes=wide.to_numpy(float),
                        etf_scale=(etf / model).ffill())


CONTINUATION_FIT = 252  # the file's last sessions each name's beta and residual vol are fitted on


def continued_bars(state: ms.MarketState, dates: pd.DatetimeIndex, wide: pd.DataFrame, single: pd.DataFrame,
                   after: pd.DatetimeIndex) -> pd.DataFrame:
    """Model bars of the file's single names on the replay's sessions after the file ends
    (2017-11-13..2018-12-31): each name's last real close moved by its beta times the real SPX
    log return since then plus its own residual noise (beta and residual vol fitted on the file's
    last CONTINUATION_FIT sessions; a N(0, 1) draw per name and session from that session's
    stream), open at the previous close, high / low around open and close, volume the name's
    median of its last 60 real sessions. The universe stays the same across the file's end (a
    switch to the synthetic basket would leave the features a year without the names' history
    and the books holding names that vanish); labelled "model"."""
    if not len(after):
        return single.iloc[:0][["date", "symbol", "sector", "open", "high", "low", "close", "volume"]]
    spx = np.log(state.spx[state.index_of(dates[-CONTINUATION_FIT - 1:])])
    logs = np.log(wide.iloc[-CONTINUATION_FIT - 1:].to_numpy(float))
    r, m = np.diff(logs, axis=0), np.diff(spx)
    beta = ((r - r.mean(0)) * (m - m.mean())[:, None]).mean(0) / m.var()
    sigma = (r - np.outer(m, beta)).std(0)
    draws = np.stack([ms.day_rng(state.config.seed, "equity_continuation", d).standard_normal(len(beta))
                      for d in after])
    market = np.log(state.spx[state.index_of(after)]) - spx[-1]
    close = np.exp(logs[-1] + np.outer(market, beta) + np.cumsum(draws, 0) * sigma
                                  - 0.5 * sigma**2 * np.arange(1, len(after) + 1)[:, None])
    close = np.round(close, 6)
    open_ = np.vstack([np.round(np.exp(logs[-1]), 6), close[:-1]])
    volume = single.pivot(index="date", columns="symbol", values="volume")[wide.columns].iloc[-60:].median()
    n, k = close.shape
    sector = single.drop_duplicates("symbol").set_index("symbol")["sector"].reindex(wide.columns).to_numpy()
    return pd.DataFrame({
        "date": np.repeat(after.to_numpy(), k), "symbol": np.tile(wide.columns.to_numpy(), n),
        "sector": np.tile(sector, n), "open": open_.ravel(), "high": np.maximum(open_, close).ravel(),
        "low": np.minimum(open_, close).ravel(), "close": close.ravel(),
        "volume": np.tile(volume.fillna(0).to_numpy(np.int64), n)})


def _real_equity_day(state: ms.MarketState, real: RealEquities, d: pd.Timestamp, i: int) -> pd.DataFrame:
    """Day `d`'s real bars (provenance real:survivors_2017) with model closing quotes, plus a model
    bar for each of SPY / QQQ / IWM the file lacks that day (the completeness gate requires all
    three every day): the replay's model ETF bar (SPY = SPX / 10, QQQ = COMP / 40, the model IWM),
    scaled to continue the ETF's last real close, or as is before the ETF's first real row (SPY and
    IWM before 2005-02-25: their level then steps to the real, adjusted one). A single name the
    file lacks that day is its carried last close, labelled "model" (`real_equities`). Zero
    volumes (every stock on 2010-04-26, a dataset artifact) are kept as published: no rule reads a
    single name's volume, and the gate accepts volume 0."""
    k = real.dates.get_loc(d)
    a, b = real.bounds[k], real.bounds[k + 1]
    day = real.rows.iloc[a:b]
    sector = day["sector"].to_numpy()
    is_etf = sector == ETF_SECTOR
    stress = float(ms.stress_level(state.variance[i], state.config))
    quotes = synthetic.equity_quotes(day["close"].to_numpy(float), is_etf, stress,
                                     ms.day_rng(state.config.seed, "equity_bars", d), cents=False)
    out = pd.DataFrame({
        "date": d, "symbol": day["symbol"].to_numpy(), "sector": sector,
        **{c: day[c].to_numpy(float) for c in ("open", "high", "low")}, "close": quotes["close"],
        "volume": day["volume"].to_numpy(np.int64), "bid": quotes["bid"], "ask": quotes["ask"],
        "bid_size": quotes["bid_size"], "ask_size": quotes["ask_size"],
        "provenance": np.where(real.carried[a:b], "model", REAL_EQUITIES),
    })
    missing = [e for e in state.etf_close if e not in set(day["symbol"][is_etf])]
    if not missing:
        return out
    model = synthetic.generate_from_state(state, "equity_bars", [d])
    model = model[model["symbol"].isin(missing)].assign(provenance="model").reset_index(drop=True)
    scale = real.etf_scale.loc[d].reindex(missing).to_numpy(float)
    scale = np.where(np.isfinite(scale), scale, 1.0)  # before the ETF's first real row: the model as is
    if (scale != 1.0).any():
        for col in PRICE_COLUMNS:
            model[col] = np.round(model[col].to_numpy(float) * scale, 2)
    return pd.concat([out, model], ignore_index=True).sort_values("symbol", kind="stable").reset_index(drop=True)


def _equity_bars(state: ms.MarketState, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Real bars over the file's span, the synthetic basket (labelled "synthetic") outside it."""
    real = real_equities(state.config)
    inside = dates.isin(real.dates)
    parts = [synthetic.generate_from_state(state, "equity_bars", dates[~inside]).assign(provenance="synthetic")
             ] if (~inside).any() else []
    parts += [_real_equity_day(state, real, d, i) for d, i in zip(dates[inside], state.index_of(dates[inside]))]
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def _fundamentals(state: ms.MarketState, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Model fundamentals (`synthetic.fundamentals_asof`) of the day's equity names: over the real
    span the real names of the day's bars, valued from their real closes (the full name list in a
    fixed order, so a name's values never depend on which others trade); the synthetic names
    outside it."""
    real = real_equities(state.config)
    inside = dates.isin(real.dates)
    parts = [synthetic.generate_from_state(state, "fundamentals", dates[~inside])] if (~inside).any() else []

    def close_at(ds: pd.DatetimeIndex) -> np.ndarray:
        # last real close on or before each date; the first session stands in before the file
        pos = np.searchsorted(real.dates.values, ds.values, side="right") - 1
        return real.closes[np.clip(pos, 0, None)]

    for d in dates[inside]:  # at most 3 quarters a day, each vectorized over the names
        k = real.dates.get_loc(d)
        day = real.rows.iloc[real.bounds[k]:real.bounds[k + 1]]
        rows = synthetic.fundamentals_asof(state.config.seed, real.names, close_at, d, "model")
        parts.append(rows[rows["symbol"].isin(day["symbol"][day["sector"] != ETF_SECTOR])])
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def _index_levels(state, vix_prov, real_ohlc, dates) -> pd.DataFrame:
    real = real_ohlc[real_ohlc["date"].isin(dates)][["date", "index", "open", "high", "low", "close"]]
    real = real.assign(provenance="real")
    vix = synthetic.generate_from_state(state, "index_levels", dates)
    vix = vix[vix["index"] == "VIX"].copy()
    vix["provenance"] = vix_prov.reindex(pd.DatetimeIndex(vix["date"])).to_numpy()
    # arch ships the VIX close only, and the VX curve pins a close only: real and derived rows
    # carry it as open = high = low = close (no model intraday range under a non-model label)
    pinned = vix["provenance"].isin(["real", "derived"]).to_numpy()
    for col in ("open", "high", "low"):
        vix.loc[pinned, col] = vix.loc[pinned, "close"]
    out = pd.concat([real, vix], ignore_index=True)
    out["order"] = out["index"].map({"SPX": 0, "COMP": 1, "VIX": 2})
    return out.sort_values(["date", "order"]).drop(columns="order").reset_index(drop=True)


def _vix_futures(state: ms.MarketState, dates: pd.DatetimeIndex) -> pd.DataFrame:
    cfe = real_data.load_cfe_settlements()
    model = dates[~dates.isin(cfe["date"])]  # vectorized: a set of every CFE row's Timestamp cost 0.25 s a call
    parts = []
    if len(model):
        parts.append(synthetic.generate_from_state(state, "vix_futures", model).assign(provenance="model"))
    real = cfe[cfe["date"].isin(dates)].sort_values(["date", "expiry"])
    for d, g in real.groupby("date", sort=True):  # a day's quote noise needs its own stream
        g = g.head(8)  # the contract lists M1..M8; CFE sometimes shows a 9th and 10th month
        listed = pd.DataFrame({"contract": g["contract"].to_numpy(), "expiry": g["expiry"].to_numpy(),
                               "month_index": np.arange(1, len(g) + 1)})
        stress = float(ms.stress_level(state.variance[state.index_of([d])[0]], state.config))
        parts.append(synthetic.vix_futures_quotes(d, g["settle"].to_numpy(), listed, stress,
                                                  ms.day_rng(state.config.seed, "vix_futures", d), "real",
                                                  published=True))
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["date", "month_index"]).reset_index(drop=True)


@lru_cache(maxsize=16)
def _vix_futures_of(cfg: ms.SimConfig, days_ns: tuple[int, ...]) -> pd.DataFrame:
    """`_vix_futures` of these days, once: the VIX chains are written on the same futures, and an
    ingest run asks for both tables over the same chunks of days (read only)."""
    state, _, _ = replay_state(cfg)
    return _vix_futures(state, pd.DatetimeIndex(np.asarray(days_ns, dtype="datetime64[ns]")))


# the tables the replay takes from the market model as they are, labelled "model" (rates: see `generate`)
MODEL_TABLES = ("spx_options", "breadth", "macro_events")


def _replay_days(state: ms.MarketState, dates: Sequence) -> pd.DatetimeIndex:
    dates = pd.DatetimeIndex(pd.to_datetime(list(dates))).normalize().as_unit("ns")
    outside = dates[~dates.isin(state.dates)]
    if len(outside):
        raise ValueError(
            f"replay source: {len(outside)} day(s) outside the real SPX span "
            f"{state.dates[0].date()}..{state.dates[-1].date()} or not sessions, e.g. {outside[0].date()}")
    return dates


def generate(table: str, dates: Sequence, config: ms.SimConfig | None = None) -> pd.DataFrame:
    cfg = config or ms.SimConfig()
    state, vix_prov, real_ohlc = replay_state(cfg)
    dates = _replay_days(state, dates)
    if table == "index_levels":
        return _index_levels(state, vix_prov, real_ohlc, dates)
    if table == "vix_futures":
        return _vix_futures_of(cfg, tuple(dates.asi8)).copy()
    if table == "vix_options":
        fut = _vix_futures_of(cfg, tuple(dates.asi8))
        parts = [synthetic.vix_chain(d, g, float(state.tbill[state.index_of([d])[0]]),
                                     float(ms.stress_level(state.variance[state.index_of([d])[0]], cfg)),
                                     ms.day_rng(cfg.seed, "vix_options", d), "model")
                 for d, g in fut.groupby("date", sort=True)]
        return pd.concat(parts, ignore_index=True)
    if table in ("equity_bars", "fundamentals") and not len(dates):
        return synthetic.generate_from_state(state, table, dates)
    if table == "equity_bars":
        return _equity_bars(state, dates)
    if table == "fundamentals":
        return _fundamentals(state, dates)  # the real names' model; the synthetic basket's, synthetic
    out = synthetic.generate_from_state(state, table, dates)
    if table == "rates":
        real_tb = real_data.load_tbill()
        out["provenance"] = np.where(pd.DatetimeIndex(out["date"]).isin(real_tb.index), "real", "model")
        return out
    return out.assign(provenance="model")


def generate_days(table: str, dates: Sequence, config: ms.SimConfig | None = None) -> list[pd.DataFrame]:
    """One frame per day, each equal to `generate(table, [day], config)`: the range generated in
    one call, cut at its day boundaries. Every day's rows come from the day's own random stream
    (`ms.day_rng`) and the real rows of that day, so the range's frame holds exactly the days'
    frames; per call, the look-ups of the real tables cost more than a day's rows (test:
    tests/sources/test_replay.py)."""
    if table in MODEL_TABLES:  # built day by day already: no range frame to cut
        state = replay_state(config or ms.SimConfig())[0]
        return [day.assign(provenance="model")
                for day in synthetic.days_from_state(state, table, _replay_days(state, dates))]
    days = pd.DatetimeIndex(pd.to_datetime(list(dates))).normalize().as_unit("ns")
    whole = generate(table, days, config)
    day = pd.DatetimeIndex(pd.to_datetime(whole["date"])).normalize().as_unit("ns").to_numpy()
    order = np.argsort(day, kind="stable")  # within a day, the rows keep the order generate gave them
    by_day = day[order]
    first, last = np.searchsorted(by_day, days.to_numpy(), "left"), np.searchsorted(by_day, days.to_numpy(), "right")
    return [whole.iloc[order[a:b]].reset_index(drop=True) for a, b in zip(first, last)]


def benchmark_inputs(dates: Sequence, params=None,
                     config: ms.SimConfig | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What `core.benchmarks.replicate` reads, straight from the replay (no lake): the days (real
    SPX open / close, the T-bill) and, per day, the model SPX chain of the one monthly expiry a
    benchmark holds at that close (`benchmarks.held_expiry`), priced with `params` (default: the
    calibrated chain model). Strikes, model vols and bid/ask equal those of
    `generate("spx_options", ...)` for that expiry; the quote sizes are not drawn from the day's
    stream. Used by the calibration and the
    benchmark bench, where a full chain per day would cost 10x more."""
    from alvh_pipeline.core import benchmarks as bm  # late: the source does not need it otherwise
    from alvh_pipeline.core import chain_model as cm

    cfg = config or ms.SimConfig()
    params = params or cm.CALIBRATED
    state, _, real_ohlc = replay_state(cfg)
    dates = pd.DatetimeIndex(pd.to_datetime(list(dates))).normalize().as_unit("ns")
    pos = state.index_of(dates)
    spx = real_ohlc[real_ohlc["index"] == "SPX"].set_index("date")
    days = pd.DataFrame({"date": dates, "spx_open": spx["open"].reindex(dates).to_numpy(float),
                         "spx_close": state.spx[pos], "rate": state.tbill[pos]})
    held = bm.held_expiry(dates)
    tau = (held - dates).days.to_numpy() / 365.0
    stress = ms.stress_level(state.variance[pos], cfg)
    rows = synthetic.spx_chain_rows(tau, state.spx[pos], state.variance[pos], state.tbill[pos], stress, cfg, params)
    p = rows["pair"]
    bid, ask, _, _ = synthetic.option_quotes(rows["price"], stress[p], tau[p] * 12, 0.05, 0.10,
                                             np.random.default_rng(0), 150, params)  # sizes unused
    chain = pd.DataFrame({"date": dates[p], "expiry": held[p], "strike": rows["strike"],
                          "option_type": rows["option_type"], "bid": bid, "ask": ask, "underlying": state.spx[pos][p],
                          "rate": state.tbill[pos][p], "dividend_yield": synthetic.SPX_DIV_YIELD,
                          "model_iv": rows["model_iv"], "provenance": "model"})
    return days, chain
