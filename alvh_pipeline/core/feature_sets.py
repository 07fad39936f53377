"""The feature sets of DESIGN §4, as pure functions of validated tables.

Each `FeatureSet` names the validated tables it reads, how many sessions of look-back it needs
before the first feature day, and a `compute(frames, dates)` that returns long rows (with a
`date` column) for exactly the feature days `dates`, using only rows dated on or before each day.
The formulas live in the concept modules (cointegration, pairs, baskets, indicators,
fundamental_features, vol_surface, term_structure, liquidity, macro_regime); this module only
assembles them. No Dagster import.

Path-dependent quantities are defined on a fixed trailing window of each day, so a day's value
never depends on the range a run covered: RSI-14 and MACD 12/26/9 are computed on each day's own
last `INDICATOR_WINDOW` sessions (`windowed`), the A/D line and the short-term futures index over a
trailing 252-session window. (Rolling means / deviations agree across ranges to float rounding,
~1e-13.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alvh_pipeline.core import (
    baskets,
    indicators,
    liquidity,
    macro_regime,
    pairs,
    term_structure,
    vol_surface,
)
from alvh_pipeline.core import (
    fundamental_features as ff,
)
from alvh_pipeline.core.calendar import window_start
from alvh_pipeline.core.check_report import RuleFailure, finite_columns, missing_days, unique_keys, within_bounds
from alvh_pipeline.core.inputs import Input, lookback
from alvh_pipeline.core.rolling import window_product, window_sum

Frames = dict[str, pd.DataFrame]
DIVERGENCE_LAG = 5  # sessions over which a turn in the pair's RSI / MACD gap is measured
ORDER_CONTRACTS = 10  # contracts a typical small-account hedge order needs (quick-ratio denominator)
ROLLING_INDEX_WINDOW = 252
INDICATOR_WINDOW = 250  # sessions each day's RSI / MACD recursion starts from


WINDOWED_COLUMNS = 10000  # (day, name) windows per vectorized call of `windowed`: ~60 MB per intermediate frame


def windowed(fn: Callable[[pd.DataFrame], dict[str, pd.DataFrame]], wide: pd.DataFrame, dates: pd.DatetimeIndex,
             window: int = INDICATOR_WINDOW) -> dict[str, pd.DataFrame]:
    """`fn` (column-wise recursive indicators, returned by name) evaluated for each day on that
    day's own trailing `window` rows only: every (day, column) window becomes one column of a
    (window × days·names) frame, so one vectorized call computes them all. Days without a full
    window are NaN."""
    from numpy.lib.stride_tricks import sliding_window_view

    pos = wide.index.get_indexer(dates)
    ok = pos >= window - 1
    n, N = int(ok.sum()), wide.shape[1]
    if not n:  # no day has its window (a range shorter than the look-back): every value NaN, every name there
        names = fn(pd.DataFrame(np.full((window, 1), np.nan)))
        return {name: pd.DataFrame(np.nan, index=dates, columns=wide.columns) for name in names}
    windows = sliding_window_view(wide.to_numpy(float), window, axis=0)  # (rows, N, w): a view, nothing copied
    starts = pos[ok] - window + 1
    last: dict[str, list[np.ndarray]] = {}
    # days in chunks of at most WINDOWED_COLUMNS window-columns: fn's intermediate frames are
    # window x columns each (500 names x a year at once: ~4 GB); columns are independent, so the
    # chunks give the same bits as one call
    step = max(1, WINDOWED_COLUMNS // max(N, 1))
    for a in range(0, n, step):
        chunk = windows[starts[a:a + step]]  # (days, N, w): this chunk's windows only
        results = fn(pd.DataFrame(chunk.transpose(2, 0, 1).reshape(window, -1)))
        for name, frame in results.items():
            last.setdefault(name, []).append(frame.iloc[-1].to_numpy().reshape(len(chunk), N))
    out = {}
    for name, rows in last.items():
        values = np.full((len(dates), N), np.nan)
        values[ok] = np.concatenate(rows)
        out[name] = pd.DataFrame(values, index=dates, columns=wide.columns)
    return out


def _indicators(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    m = indicators.macd(frame, 12, 26, 9)
    return {"rsi14": indicators.rsi_wilder(frame, 14), "macd": m.macd_line, "macd_signal": m.signal_line,
            "macd_hist": m.histogram}


@dataclass(frozen=True)
class FeatureSet:
    name: str
    tables: tuple[str, ...]
    lookback: int  # sessions of history needed before the first feature day
    compute: Callable[[Frames, pd.DatetimeIndex], pd.DataFrame]
    keys: tuple[str, ...] = ("date",)
    finite: tuple[str, ...] = ()  # columns that must be finite once warmed up
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    description: str = ""
    summary: Callable[[pd.DataFrame, pd.DatetimeIndex], dict] | None = None  # extra metadata of a run

    @property
    def inputs(self) -> tuple[Input, ...]:
        return tuple(Input("validated", t, lookback(self.lookback)) for t in self.tables)


def _dates(frame: pd.DataFrame, col: str = "date") -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(frame[col]))


def _on(frame: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Rows of an index-by-date frame restricted to `dates`, with `date` as a column."""
    out = frame.reindex(dates)
    out.index.name = "date"
    return out.reset_index()


def _long(wide: pd.DataFrame, name: str, dates: pd.DatetimeIndex) -> pd.Series:
    return wide.reindex(dates).stack(future_stack=True).rename(name)


def stock_closes(frames: Frames) -> tuple[pd.DataFrame, pd.Series]:
    return pairs.close_panel(frames["equity_bars"])


def all_closes(frames: Frames) -> pd.DataFrame:
    eq = frames["equity_bars"]
    wide = eq.pivot(index="date", columns="symbol", values="close").sort_index()
    wide.index = pd.DatetimeIndex(wide.index)
    return wide


def index_close(frames: Frames, name: str) -> pd.Series:
    ix = frames["index_levels"]
    s = ix[ix["index"] == name].set_index("date")["close"].sort_index()
    s.index = pd.DatetimeIndex(s.index)
    return s


# ---- the feature sets -----------------------------------------------------------------------

def compute_pairs(frames: Frames, dates: pd.DatetimeIndex) -> pd.DataFrame:
    closes, sectors = stock_closes(frames)
    return pairs.pair_features(closes, sectors, dates)


def compute_baskets(frames: Frames, dates: pd.DatetimeIndex) -> pd.DataFrame:
    closes, sectors = stock_closes(frames)
    return baskets.johansen_baskets(closes, sectors, dates)


INDICATOR_LOOKBACK = INDICATOR_WINDOW + DIVERGENCE_LAG  # validated closes the indicator panels read
_PANEL_MEMO: dict[bytes, tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]] = {}
_CARRIED = "\x00carried"  # suffix of a single name's carried-forward closes inside the combined panel


def indicator_panels(frames: Frames, dates: pd.DatetimeIndex) -> tuple[dict[str, pd.DataFrame],
                                                                        dict[str, pd.DataFrame]]:
    """`windowed` RSI / MACD on `dates` and the DIVERGENCE_LAG sessions before them, of (every
    symbol's closes as delivered: technicals; the single names' closes with short gaps carried,
    `stock_closes`: pair_inputs). A day's value depends on its own column's window only (bit for
    bit, whichever other columns and days are computed with it), so both come from one call over
    the delivered closes plus the carried columns that differ from them, and the result is kept
    for the second feature set of the run (one entry, keyed by the bars and the days)."""
    import hashlib

    bars = frames["equity_bars"]
    key = hashlib.sha1(pd.util.hash_pandas_object(bars, index=False).to_numpy().tobytes()
                       + dates.asi8.tobytes()).digest()
    if key not in _PANEL_MEMO:
        raw, (carried, _) = all_closes(frames), stock_closes(frames)
        s = raw.index
        span = s[max(s.get_indexer(dates[:1])[0] - DIVERGENCE_LAG, 0):]
        span = span[span <= dates[-1]]
        if carried.index.equals(raw.index):
            differ = [c for c in carried.columns if not carried[c].equals(raw[c])]
            both = windowed(_indicators, pd.concat([raw, carried[differ].add_suffix(_CARRIED)], axis=1), span)
            as_raw = {k: v[raw.columns] for k, v in both.items()}
            as_carried = {k: v[[c + _CARRIED if c in differ else c for c in carried.columns]].set_axis(
                carried.columns, axis=1) for k, v in both.items()}
        else:  # ETF-only sessions: the two panels' windows differ, compute each on its own
            as_raw, as_carried = windowed(_indicators, raw, span), windowed(_indicators, carried, span)
        _PANEL_MEMO.clear()
        _PANEL_MEMO[key] = as_raw, as_carried
    return _PANEL_MEMO[key]


def compute_technicals(frames: Frames, dates: pd.DatetimeIndex) -> pd.DataFrame:
    closes = all_closes(frames)
    parts = {k: v.reindex(dates) for k, v in indicator_panels(frames, dates)[0].items()}
    parts["macd_hist_pct"] = parts["macd_hist"] / closes.reindex(dates)
    out = pd.concat([_long(v, k, dates) for k, v in parts.items()], axis=1)
    out.index.names = ["date", "symbol"]
    return out.reset_index().dropna(subset=["rsi14"], how="all")


def compute_fundamentals(frames: Frames, dates: pd.DatetimeIndex) -> pd.DataFrame:
    closes, _ = stock_closes(frames)
    spx = index_close(frames, "SPX").reindex(closes.index)
    beta = ff.rolling_capm_beta(np.log(closes).diff(), np.log(spx).diff(), window=60)
    rates = frames["rates"].set_index(_dates(frames["rates"]))["tbill_3m"]
    fund = frames["fundamentals"]
    fund = fund[_dates(fund).isin(closes.index)]
    panel = ff.valuation_panel(fund, closes, rf=rates, beta=beta)
    panel = panel[pd.DatetimeIndex(panel["date"]).isin(dates)]
    return panel[["date", "symbol", "close", "pe", "pcf", "dividend_yield", "beta", "required_return",
                  "ddm_implied_growth", "report_date"]].rename(columns={"beta": "capm_beta_60d"}).reset_index(drop=True)


def compute_pair_inputs(frames: Frames, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Per candidate pair: P/CF dispersion (log P/CF_y - log P/CF_x), its 252-day z-score and
    direction, the RSI-14 / MACD-histogram gaps (y minus x) and their 5-session changes."""
    closes, sectors = stock_closes(frames)
    fund = frames["fundamentals"]
    fund = fund[_dates(fund).isin(closes.index)]
    pcf = ff.valuation_panel(fund, closes).pivot(index="date", columns="symbol", values="pcf")
    pcf = pcf.reindex(index=closes.index, columns=closes.columns)
    i, j = pairs.candidate_pairs(closes.columns.to_numpy(), sectors.to_numpy())
    disp = ff.pcf_dispersion(pcf, i, j, window=pairs.WINDOW)
    s = closes.index
    need = s[max(s.get_indexer(dates[:1])[0] - DIVERGENCE_LAG, 0):][: len(dates) + DIVERGENCE_LAG]
    need = need[need <= dates[-1]]
    ind = {k: v.reindex(need) for k, v in indicator_panels(frames, dates)[1].items()}
    div = indicators.pair_divergence(ind["rsi14"], ind["macd_hist"], i, j, close=closes.reindex(need))
    parts = {"pcf_dispersion": disp.dispersion, "pcf_z": disp.zscore, "pcf_direction": disp.direction,
             "rsi_div": div.rsi, "macd_div": div.macd_hist,
             # divergence proper: is the momentum gap turning while the spread is stretched?
             "rsi_div_change_5d": div.rsi.diff(DIVERGENCE_LAG),
             "macd_div_change_5d": div.macd_hist.diff(DIVERGENCE_LAG)}
    return _long_pairs(parts, dates)


def _long_pairs(parts: dict[str, pd.DataFrame], dates: pd.DatetimeIndex) -> pd.DataFrame:
    """date x pair frames (columns (y, x)) as one long frame: a row per (date, pair) in date then
    column order, a column per part. What `stack` does, from the raveled arrays (stacking MultiIndex
    columns rebuilt the index per part: ~3 s a year of 100 names)."""
    cols = next(iter(parts.values())).columns
    values = {k: v.reindex(index=dates, columns=cols).to_numpy().ravel() for k, v in parts.items()}
    out = pd.DataFrame({"date": np.repeat(dates.to_numpy(), len(cols)),
                        "symbol_y": np.tile(cols.get_level_values(0).to_numpy(), len(dates)),
                        "symbol_x": np.tile(cols.get_level_values(1).to_numpy(), len(dates)), **values})
    return out


def compute_vol_surface(frames: Frames, dates: pd.DatetimeIndex) -> pd.DataFrame:
    spx = frames["spx_options"]
    spx = spx[_dates(spx).isin(dates)]
    vix = frames["vix_options"]
    vix = vix[_dates(vix).isin(dates)]
    surf = vol_surface.spx_surface(spx)
    vopt = vol_surface.vix_option_atm_iv(vix)[["iv_atm"]].rename(columns={"iv_atm": "vix_option_iv_atm"})
    return _on(surf.join(vopt, how="outer"), dates)


def compute_term_structure(frames: Frames, dates: pd.DatetimeIndex) -> pd.DataFrame:
    fut = frames["vix_futures"]
    ts = term_structure.term_structure_features(fut, index_close(frames, "VIX"))
    returns = term_structure.short_term_returns(fut)
    ts["vxx_return_1d"] = returns
    # the level rebased to 100 one year earlier: the year's daily returns compounded, each window on
    # its own (a ratio of the cumulated level carried the rounding of every day since the read began)
    ts["vxx_level_252d"] = 100.0 * window_product(1.0 + returns, ROLLING_INDEX_WINDOW)
    return _on(ts, dates)


def compute_liquidity(frames: Frames, dates: pd.DatetimeIndex) -> pd.DataFrame:
    fut = frames["vix_futures"]
    dq = liquidity.depth_quick_ratio(fut, ORDER_CONTRACTS, months=(1, 2))
    part = liquidity.volume_participation(frames["equity_bars"])
    evap = liquidity.liquidity_evaporation(fut)
    out = pd.concat([dq, part.add_prefix("participation_").rename(
        columns={"participation_participation_ok": "participation_ok"}), evap.add_prefix("evap_")], axis=1)
    return _on(out, dates)


def compute_macro_regime(frames: Frames, dates: pd.DatetimeIndex) -> pd.DataFrame:
    to_next = macro_regime.days_to_next(frames["macro_events"], dates)
    breadth = frames["breadth"]
    ad = macro_regime.advance_decline_line(breadth)
    ad.index = pd.DatetimeIndex(ad.index)
    net = ad.diff()
    ad_252 = window_sum(net, ROLLING_INDEX_WINDOW, ROLLING_INDEX_WINDOW)
    rates = macro_regime.rates_changes(frames["rates"])
    curve = macro_regime.vix_curve_inputs(frames["index_levels"], frames["vix_futures"])
    regime = macro_regime.regime_label(curve["vix"], curve["vx1"], curve["vx2"], ad)
    out = pd.concat([to_next, ad_252.rename("ad_line_252d"), rates, curve,
                     regime.astype(object).rename("regime")], axis=1)
    return _on(out, dates)


FEATURE_SETS: dict[str, FeatureSet] = {
    f.name: f
    for f in [
        FeatureSet("pairs", ("equity_bars",), pairs.WINDOW - 1, compute_pairs, ("date", "symbol_y", "symbol_x"),
                   finite=("hedge_ratio", "zscore", "adf_stat", "pvalue", "spread_std"),
                   bounds={"pvalue": (0.0, 1.0)},
                   description="Engle-Granger screen of same-sector pairs on 252 sessions, BH-selected",
                   summary=lambda out, dates: {"selected_pairs_last_day": int(
                       out.loc[_dates(out) == dates[-1], "selected"].sum()) if len(out) else 0}),
        FeatureSet("baskets", ("equity_bars",), baskets.WINDOW - 1, compute_baskets, ("date", "sector"),
                   finite=("trace_stat_r0", "maxeig_stat_r0"),
                   description="Johansen trace / max-eigen statistics per sector basket"),
        FeatureSet("technicals", ("equity_bars",), INDICATOR_LOOKBACK, compute_technicals, ("date", "symbol"),
                   finite=("rsi14", "macd", "macd_signal", "macd_hist"), bounds={"rsi14": (0.0, 100.0)},
                   description="RSI-14 (Wilder), MACD 12/26/9 per symbol"),
        FeatureSet("fundamentals", ("equity_bars", "fundamentals", "index_levels", "rates"), 80,
                   compute_fundamentals, ("date", "symbol"), finite=("capm_beta_60d",),
                   description="Point-in-time P/E, P/CF, DDM implied growth, 60-day CAPM beta"),
        FeatureSet("pair_inputs", ("equity_bars", "fundamentals"), max(pairs.WINDOW, INDICATOR_LOOKBACK),
                   compute_pair_inputs,
                   ("date", "symbol_y", "symbol_x"), finite=("rsi_div", "macd_div", "rsi_div_change_5d"),
                   description="Per-pair P/CF dispersion z-score and RSI / MACD divergences"),
        FeatureSet("vol_surface", ("spx_options", "vix_options"), 0, compute_vol_surface, ("date",),
                   finite=("iv_25p", "iv_atm", "iv_25c", "skew_curvature"),
                   bounds={"iv_atm": (0.01, 3.0)},
                   description="SPX 30-day 25Δ put / ATM / 25Δ call IV, skew slope and curvature"),
        FeatureSet("term_structure", ("vix_futures", "index_levels"), ROLLING_INDEX_WINDOW, compute_term_structure,
                   ("date",), finite=("vx1", "vx2", "cm30", "cm60", "cm90", "cm150", "vxx_return_1d"),
                   description="Constant-maturity VIX futures, slope, roll yield, backwardation, short-term index"),
        FeatureSet("liquidity", ("vix_futures", "equity_bars"), 61, compute_liquidity, ("date",),
                   finite=("depth_quick_ratio",),
                   description="Depth quick ratio, QQQ/IWM participation, liquidity-evaporation warning"),
        FeatureSet("macro_regime", ("macro_events", "breadth", "rates", "index_levels", "vix_futures"),
                   ROLLING_INDEX_WINDOW + 21, compute_macro_regime, ("date",),
                   finite=("days_to_FOMC", "days_to_CPI", "days_to_PPI", "vix"),
                   description="Days to FOMC/CPI/PPI, A/D line, REER / rate-differential change, regime"),
    ]
}


MAX_LOOKBACK = max(fs.lookback for fs in FEATURE_SETS.values())  # validated history any feature day reads


def history_start(start) -> pd.Timestamp:
    """First validated day the feature sets of a run starting at `start` read."""
    return window_start(start, MAX_LOOKBACK)


def feature_problems(fs: FeatureSet, frame: pd.DataFrame, dates: pd.DatetimeIndex) -> list[RuleFailure]:
    """The blocking feature check's rules: rows for every day, finite values after warm-up,
    bounds, unique keys. Empty list = pass."""
    hint = f" (look-back of {fs.lookback} sessions of {', '.join(fs.tables)} not in the lake?)"
    return (missing_days(f"features/{fs.name}", frame, dates, hint) + finite_columns(frame, fs.finite)
            + within_bounds(frame, fs.bounds) + unique_keys(frame, fs.keys))
