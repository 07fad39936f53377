"""Row-level rules that need arithmetic across columns, earlier sessions or other tables of the
same day, computed vectorized in pandas as boolean flag columns (True = row is fine). The GE suite
then asserts each flag column is all True (or True for at least `mostly` of the rows), so every
rule reports through GE with its count and sample rows. Pure pandas: no GE or Dagster import.

Plausibility (issue 7): levels bounded per instrument, day-over-day jumps bounded relative to the
series' own trailing volatility, option prices capped by what the option can be worth, the VX
curve on the contract calendar, and cross-table consistency (SPX vs its option chain's put-call
parity, VIX vs the VX futures and the VIX chain's futures) when the other table's rows of the same
day are given (`RuleContext.peers`); without them a cross-table rule passes (it cannot judge).
NaN / non-numeric values pass every plausibility rule: the not-null and dtype expectations report them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alvh_pipeline.core import calendar as cal
from alvh_pipeline.core.pricing import no_arbitrage_bounds

VIX_FUTURES_MAX_POINTS = 100.0  # a settle above this is the pre-2007 10x quote, not the index

# ---- plausibility thresholds (the why of each number is in the docstring of the rule using it) --------------
# Index levels, inclusive: VIX closed between 9.14 (2017) and 82.69 (2020), intraday 89.53 (2008); SPX and
# COMP peaked near 7,000 and 20,000: the caps are ~7x / ~10x that, far from any real level.
INDEX_RANGES: dict[str, tuple[float, float]] = {"SPX": (0.0, 50_000.0), "COMP": (0.0, 200_000.0),
                                                "VIX": (5.0, 150.0)}
OPTION_ASK_CAP = 1.5  # ask <= 1.5 x what the option can be worth (underlying for calls, strike for puts)
SPX_STRIKE_CAP = 10.0  # SPX strike <= 10 x the underlying


@dataclass(frozen=True)
class JumpLimit:
    """|log move| <= max(k x trailing robust daily vol, floor); `fallback` when the series has fewer
    than VOL_MIN_RETURNS earlier returns (e.g. only yesterday is known)."""

    k: float
    floor: float
    fallback: float


VOL_WINDOW = 20  # trailing returns in the robust vol
VOL_MIN_RETURNS = 10
MAD_TO_SD = 1.4826  # median |r| x 1.4826 = sd for normal returns: one bad day in the window does not move it
JUMP_K = 10.0
INDEX_JUMP = {"SPX": JumpLimit(JUMP_K, 0.25, 0.5), "COMP": JumpLimit(JUMP_K, 0.25, 0.5),
              "VIX": JumpLimit(JUMP_K, 1.0, 1.0)}
SINGLE_NAME_JUMP = JumpLimit(JUMP_K, 1.0, 1.0)
VX_JUMP = JumpLimit(JUMP_K, 1.0, 1.0)

SPX_PARITY_TOL = 0.03  # |log(SPX close / parity spot)|, + SPX_PARITY_TOL_PER_YEAR x tau on a single expiry
SPX_PARITY_TOL_PER_YEAR = 0.03  # a dividend-yield error of 3 %/year moves a long expiry's parity spot by that
SPX_PARITY_MONEYNESS = 0.03  # near-ATM: |log(K / underlying)| <= this (parity holds at any strike; these quote best)
VIX_FUTURE_TOL = 1.0  # |log(VIX / front VX)|: the basis reached 0.6 (2020-03-16), replay's model VIX 0.77
VIX_OPTION_FUTURE_TOL = 0.05  # |log(VIX chain future_price / VX settle of that expiry)|

# Since this day CFE has listed consecutive monthly VX contracts (the real data: 986 earlier days
# list a quarterly cycle, none after); M8 is sometimes not listed yet (2009-2011: 7 months).
VX_CONSECUTIVE_SINCE = pd.Timestamp("2008-04-21")
GENERATED = ("synthetic", "model")  # provenances generated from the calendar: bound to it on every date
VX_MIN_MONTHS = 7
VX_LISTED_MONTHS = 8
VX_OLD_RULE_LAST_YEAR = 2004  # contracts of 2004 could settle under CFE's original rule (VXN04, VXV04 did)


@dataclass(frozen=True)
class RowRule:
    name: str  # flag column, e.g. "_bid_le_ask"
    columns: tuple[str, ...]  # the columns it is about (for messages)
    description: str
    compute: Callable[[pd.DataFrame, RuleContext], pd.Series]
    mostly: float = 1.0


@dataclass(frozen=True)
class RuleContext:
    partition_dates: pd.DatetimeIndex  # the partitions being validated
    previous: pd.DataFrame | None  # rows of the session(s) before each row's date, same table
    stale_threshold: float
    row_partitions: np.ndarray | None = None  # the partition (file) each row came from, "YYYY-MM-DD"
    peers: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # other raw tables, same partitions


def _peer(ctx: RuleContext, table: str) -> pd.DataFrame | None:
    frame = (ctx.peers or {}).get(table)
    return frame if frame is not None and len(frame) and "date" in frame else None


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(df[col], errors="coerce")


def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, errors="coerce").dt.normalize()


def date_in_partition(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    """Each row's date equals the partition of the file it came from (not merely some partition
    of the batch: a 03-05 row inside the 03-04 file is wrong even when 03-05 is validated too)."""
    if ctx.row_partitions is None:
        return _dates(df["date"]).isin(ctx.partition_dates)
    return pd.Series(_dates(df["date"]).to_numpy() == pd.to_datetime(ctx.row_partitions).to_numpy(), index=df.index)


def finite_numbers(columns: tuple[str, ...]) -> Callable[[pd.DataFrame, RuleContext], pd.Series]:
    """Every numeric value finite (NaN is the not-null expectations' business; ±inf is this one's)."""

    def rule(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
        ok = np.ones(len(df), dtype=bool)
        for c in columns:
            v = _num(df, c).to_numpy(float)
            ok &= ~np.isinf(v)
        return pd.Series(ok, index=df.index)

    return rule


def bid_le_ask(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    return _num(df, "bid") <= _num(df, "ask")


def low_le_high(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    lo, hi = _num(df, "low"), _num(df, "high")
    o, c = _num(df, "open"), _num(df, "close")
    return (lo <= hi) & (lo <= o) & (o <= hi) & (lo <= c) & (c <= hi)


def expiry_after_date(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    return _dates(df["expiry"]) > _dates(df["date"])


def expiries_ordered(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    """Within a day, a higher month_index must expire later (M1 < M2 < ...)."""
    frame = pd.DataFrame({"d": _dates(df["date"]), "m": _num(df, "month_index"), "e": _dates(df["expiry"])})
    frame = frame.sort_values(["d", "m"])
    ok = frame.groupby("d")["e"].diff().dt.days.fillna(1) > 0
    return ok.reindex(df.index)


def spx_strike_on_grid(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    k = _num(df, "strike")
    return np.isclose(np.mod(k, 5.0), 0.0) | np.isclose(np.mod(k, 5.0), 5.0)


def vix_strike_on_grid(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    k = _num(df, "strike")
    whole = np.isclose(k, np.round(k))
    return (k > 0) & np.where(k <= 50, whole, np.isclose(np.mod(k, 5.0), 0.0))


def _arb_ok(df: pd.DataFrame, forward: pd.Series, discount: pd.Series) -> pd.Series:
    """The quoted interval [bid, ask] must intersect the model-free bounds (1 cent slack)."""
    lower, upper = no_arbitrage_bounds(forward.to_numpy(float), _num(df, "strike").to_numpy(float),
                                       discount.to_numpy(float), df["option_type"].astype(str).to_numpy())
    return pd.Series((_num(df, "bid").to_numpy() <= upper + 0.01) & (_num(df, "ask").to_numpy() >= lower - 0.01),
                     index=df.index)


def _tau(df: pd.DataFrame) -> pd.Series:
    return (_dates(df["expiry"]) - _dates(df["date"])).dt.days / 365.0


def spx_no_arbitrage(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    t, r, q = _tau(df), _num(df, "rate"), _num(df, "dividend_yield")
    fwd = _num(df, "underlying") * np.exp((r - q) * t)
    return _arb_ok(df, fwd, np.exp(-r * t))


def vix_no_arbitrage(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    t, r = _tau(df), _num(df, "rate")
    return _arb_ok(df, _num(df, "future_price"), np.exp(-r * t))


def option_type_valid(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    return df["option_type"].isin(["C", "P"])


def breadth_consistent(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    parts = _num(df, "advancers") + _num(df, "decliners") + _num(df, "unchanged")
    total = _num(df, "total_issues")
    return (parts == total) & (_num(df, "advancers") >= 0) & (_num(df, "decliners") >= 0) & (
        _num(df, "unchanged") >= 0) & ~(_num(df, "new_highs") > total) & ~(_num(df, "new_lows") > total)


def report_not_after_date(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    return (_dates(df["report_date"]) <= _dates(df["date"])) & (
        _dates(df["fiscal_period_end"]) < _dates(df["report_date"]))


def surprise_only_when_released(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    released = _dates(df["event_date"]) <= _dates(df["date"])
    return released | df["surprise"].isna()


def not_stale(quote_cols: tuple[str, ...], keys: tuple[str, ...]) -> Callable[[pd.DataFrame, RuleContext], pd.Series]:
    """False where a row's quote columns equal the same key's values on the previous session."""

    def rule(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
        if ctx.previous is None or ctx.previous.empty:
            return pd.Series(True, index=df.index)
        other = [k for k in keys if k != "date"]
        prev = ctx.previous[[*other, *quote_cols, "_next_date"]].rename(
            columns={c: f"{c}_prev" for c in quote_cols})
        # one earlier row per key: a duplicated key (the unique-key expectation reports it) must not
        # fan the merge out to more rows than `df`
        prev = prev.drop_duplicates([*other, "_next_date"], keep="first")
        cur = df[[*other, *quote_cols]].assign(_next_date=_dates(df["date"]), _row=np.arange(len(df)))
        merged = cur.merge(prev, on=[*other, "_next_date"], how="left").sort_values("_row")
        same = np.ones(len(merged), dtype=bool)
        for c in quote_cols:
            same &= (merged[c].to_numpy() == merged[f"{c}_prev"].to_numpy())
        return pd.Series(~same, index=df.index)

    return rule


# ---- plausibility (issue 7 A) -----------------------------------------------------------------------------

def _log_ratio(a, b) -> np.ndarray:
    """|log(a / b)|, NaN where either side is missing or not positive."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(np.log(np.where((a > 0) & (b > 0), a / b, np.nan)))


def index_level_in_range(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    """Every OHLC value of an index inside its INDEX_RANGES (VIX in [5, 150]; SPX / COMP positive and
    below a cap ~7-10x their record): a VIX of several thousand or an SPX of 1e300 is not a market."""
    name = df["index"].astype(str)
    lo = name.map({k: v[0] for k, v in INDEX_RANGES.items()}).astype(float).to_numpy()
    hi = name.map({k: v[1] for k, v in INDEX_RANGES.items()}).astype(float).to_numpy()
    vals = np.column_stack([_num(df, c).to_numpy(float) for c in ("open", "high", "low", "close")])
    with np.errstate(invalid="ignore"):
        too_low = (vals < lo[:, None]) | ((lo[:, None] == 0) & (vals <= 0))
        too_high = vals > hi[:, None]
    return pd.Series(~(too_low | too_high).any(axis=1), index=df.index)  # unknown index: NaN bounds, passes


def option_price_capped(underlying: str) -> Callable[[pd.DataFrame, RuleContext], pd.Series]:
    """ask <= OPTION_ASK_CAP x the most the option can be worth (the underlying for a call, the strike
    for a put); for SPX also strike <= SPX_STRIKE_CAP x underlying. The bid is already capped by the
    no-arbitrage rule; the 1.5 leaves room for wide stressed quotes (replay's 2008 VIX puts ask up to
    1.06 x K) and still refuses a chain quoted x10 / x100."""

    def rule(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
        call = (df["option_type"].astype(str) == "C").to_numpy()
        k, u, ask = (_num(df, c).to_numpy(float) for c in ("strike", underlying, "ask"))
        with np.errstate(invalid="ignore"):
            bad = ask > OPTION_ASK_CAP * np.where(call, u, k)
            if underlying == "underlying":
                bad |= k > SPX_STRIKE_CAP * u
        return pd.Series(~bad, index=df.index)

    return rule


def _wide_log_levels(df: pd.DataFrame, ctx: RuleContext, key: str, value: str) -> pd.DataFrame:
    """log(value) by date x key over the earlier sessions given and the batch (ctx.previous holds
    both); one row per (key, date): a duplicated key is the unique-key expectation's business."""
    src = ctx.previous if ctx.previous is not None and len(ctx.previous) else df
    s = pd.DataFrame({"k": src[key].astype(str).to_numpy(), "d": _dates(src["date"]).to_numpy(),
                      "v": _num(src, value).to_numpy(float)})
    s = s[s["d"].notna()].drop_duplicates(["k", "d"], keep="first")
    with np.errstate(divide="ignore", invalid="ignore"):
        s["v"] = np.log(s["v"].where((s["v"] > 0) & np.isfinite(s["v"])))
    return s.pivot(index="d", columns="k", values="v").sort_index()


def no_implausible_jump(key: str, value: str, limit: Callable[[pd.Index], list[JumpLimit]]
                        ) -> Callable[[pd.DataFrame, RuleContext], pd.Series]:
    """A level may not move further than max(k x trailing robust vol, floor) in log terms from BOTH
    of the series' last two levels (fallback limit while fewer than VOL_MIN_RETURNS returns are known).
    Measuring from the nearer of the last two levels means one bad day in the history (a x100 day
    already quarantined) does not condemn the good day after it; a permanent unit change therefore
    fails on its first day only. The robust vol is 1.4826 x the median |log return| of the series'
    VOL_WINDOW returns before the day, so the day itself and a single bad day do not inflate it."""

    def rule(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
        wide = _wide_log_levels(df, ctx, key, value)
        x = wide.to_numpy(float)
        p1, p2 = np.full_like(x, np.nan), np.full_like(x, np.nan)
        p1[1:], p2[2:] = x[:-1], x[:-2]
        dev = np.fmin(np.abs(x - p1), np.abs(x - p2))
        vol = MAD_TO_SD * pd.DataFrame(np.abs(x - p1)).rolling(VOL_WINDOW, min_periods=VOL_MIN_RETURNS) \
            .median().shift(1).to_numpy()
        lims = limit(wide.columns)
        k = np.array([j.k for j in lims], dtype=float)
        floor = np.array([j.floor for j in lims], dtype=float)
        fallback = np.array([j.fallback for j in lims], dtype=float)
        allowed = np.where(np.isnan(vol), fallback, np.maximum(k * vol, floor))
        with np.errstate(invalid="ignore"):
            bad = dev > allowed  # NaN (no earlier level) is not a jump
        rows = wide.index.get_indexer(_dates(df["date"]))
        cols = wide.columns.get_indexer(df[key].astype(str))
        ok = np.ones(len(df), dtype=bool)
        sel = (rows >= 0) & (cols >= 0)
        ok[sel] = ~bad[rows[sel], cols[sel]]
        return pd.Series(ok, index=df.index)

    return rule


def _index_jump_limits(names: pd.Index) -> list[JumpLimit]:
    return [INDEX_JUMP.get(n, SINGLE_NAME_JUMP) for n in names]


def spx_parity_spot(chain: pd.DataFrame) -> pd.DataFrame:
    """Per (date, expiry) of an SPX chain: the SPX level put-call parity implies, from the (up to 3)
    two-sided strike pairs nearest the money: F = K + (C - P) / D, S = F e^{-(r-q) tau} (mids, the
    chain's own rate and dividend yield). Columns d, e, tau, spot. Pairs are found by sorting, not
    by a merge (a year of chains is ~800k rows)."""
    k, u = _num(chain, "strike").to_numpy(float), _num(chain, "underlying").to_numpy(float)
    bid, ask = _num(chain, "bid").to_numpy(float), _num(chain, "ask").to_numpy(float)
    with np.errstate(invalid="ignore"):
        near = np.flatnonzero((bid > 0) & (ask >= bid) & (_log_ratio(k, u) <= SPX_PARITY_MONEYNESS))
    sub = chain.iloc[near]
    d, e = _dates(sub["date"]), _dates(sub["expiry"])
    key = _day_pair_key(d, e)
    call = (sub["option_type"] == "C").to_numpy()
    usable = (d.notna() & e.notna() & (e > d)).to_numpy() & (call | (sub["option_type"] == "P").to_numpy())
    order = np.flatnonzero(usable)[np.lexsort((~call[usable], k[near][usable], key[usable]))]
    # a call immediately followed by the put of the same (date, expiry, strike) is a pair
    a, b = order[:-1], order[1:]
    pair = (key[a] == key[b]) & (k[near][a] == k[near][b]) & call[a] & ~call[b]
    a, b = a[pair], b[pair]
    mid = (bid[near] + ask[near]) / 2
    r, q = _num(sub, "rate").to_numpy(float), _num(sub, "dividend_yield").to_numpy(float)
    tau = (e.to_numpy()[a] - d.to_numpy()[a]).astype("timedelta64[D]").astype(float) / 365.0
    fwd = k[near][a] + (mid[a] - mid[b]) * np.exp(r[a] * tau)
    m = pd.DataFrame({"key": key[a], "d": d.to_numpy()[a], "e": e.to_numpy()[a], "tau": tau,
                      "spot": fwd * np.exp(-(r[a] - q[a]) * tau), "gap": np.abs(mid[a] - mid[b])})
    m = m.sort_values(["key", "gap"], kind="stable")
    m = m[m.groupby("key", sort=False).cumcount().to_numpy() < 3]
    return m.groupby("key", as_index=False, sort=False).agg(d=("d", "first"), e=("e", "first"),
                                                           tau=("tau", "first"), spot=("spot", "median"))


def _day_pair_key(d: pd.Series, e: pd.Series) -> np.ndarray:
    """One int64 per (date, expiry) pair (NaT -> -1 parts), for fast lookups without a merge."""
    dd = d.to_numpy(dtype="datetime64[D]").astype(np.int64)
    ee = e.to_numpy(dtype="datetime64[D]").astype(np.int64)
    return dd * 1_000_000 + (ee - dd)


def _lookup_pairs(d: pd.Series, e: pd.Series, table: pd.DataFrame, column: str) -> np.ndarray:
    """table[column] of each row's (date, expiry) pair; `table` has columns d, e, column; NaN if absent."""
    pos = pd.Index(_day_pair_key(table["d"], table["e"])).get_indexer(_day_pair_key(d, e))
    vals = table[column].to_numpy(float)
    return np.where(pos >= 0, vals[np.maximum(pos, 0)] if len(vals) else np.nan, np.nan)


def _by_date(frame: pd.DataFrame, values: np.ndarray) -> pd.Series:
    return pd.Series(values, index=_dates(frame["date"]).to_numpy()).groupby(level=0).first()


def spx_matches_option_parity(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    """SPX close within SPX_PARITY_TOL (3 %, log) of the level implied by put-call parity on the same
    day's SPX chain (median over expiries). Catches an SPX of the wrong day, scale or instrument
    (SPY, XSP); needs the peer spx_options, else passes."""
    chain = _peer(ctx, "spx_options")
    if chain is None:
        return pd.Series(True, index=df.index)
    spot = spx_parity_spot(chain).groupby("d")["spot"].median()
    ref = _dates(df["date"]).map(spot).to_numpy(float)
    is_spx = (df["index"].astype(str) == "SPX").to_numpy()
    with np.errstate(invalid="ignore"):
        bad = is_spx & (_log_ratio(_num(df, "close"), ref) > SPX_PARITY_TOL)
    return pd.Series(~bad, index=df.index)


def _front_vx_settle(fut: pd.DataFrame) -> pd.Series:
    f = fut[_num(fut, "month_index").to_numpy() == 1]
    return _by_date(f, _num(f, "settle").to_numpy(float))


def _front_option_future(opt: pd.DataFrame) -> pd.Series:
    o = pd.DataFrame({"d": _dates(opt["date"]), "e": _dates(opt["expiry"]), "f": _num(opt, "future_price")})
    o = o[o["e"] > o["d"]]
    front = o[o["e"] == o.groupby("d")["e"].transform("min")]
    return front.groupby("d")["f"].median()


def vix_matches_futures(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    """VIX close within a factor e (|log| <= 1.0) of the front VX settle (peer vix_futures) and of the
    front future_price of the VIX chain (peer vix_options). The basis is real (0.6 in log on
    2020-03-16; replay's pre-2014 model VIX is 0.77 off the real CFE curve), so this refuses scale
    errors (x10, /10, a VIX of several thousand), not a wrong-by-a-few-points VIX."""
    is_vix = (df["index"].astype(str) == "VIX").to_numpy()
    d, close = _dates(df["date"]), _num(df, "close")
    ok = np.ones(len(df), dtype=bool)
    refs = []
    if (fut := _peer(ctx, "vix_futures")) is not None:
        refs.append(_front_vx_settle(fut))
    if (opt := _peer(ctx, "vix_options")) is not None:
        refs.append(_front_option_future(opt))
    for ref in refs:
        with np.errstate(invalid="ignore"):
            ok &= ~(is_vix & (_log_ratio(close, d.map(ref).to_numpy(float)) > VIX_FUTURE_TOL))
    return pd.Series(ok, index=df.index)


def spx_chain_matches_close(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    """The chain is about the SPX of that day: `underlying` within 3 % of the SPX close (peer
    index_levels) and each expiry's put-call-parity level within 3 % + 3 %/year x tau of it (of the
    chain's own `underlying` when index_levels is not given)."""
    d, e, u = _dates(df["date"]), _dates(df["expiry"]), _num(df, "underlying")
    ref = pd.Series(np.nan, index=df.index)
    if (levels := _peer(ctx, "index_levels")) is not None:
        spx = levels[levels["index"].astype(str) == "SPX"]
        ref = pd.Series(d.map(_by_date(spx, _num(spx, "close").to_numpy(float))).to_numpy(float), index=df.index)
    spots = spx_parity_spot(df)
    spot, tau = _lookup_pairs(d, e, spots, "spot"), _lookup_pairs(d, e, spots, "tau")
    with np.errstate(invalid="ignore"):
        bad = _log_ratio(u, ref) > SPX_PARITY_TOL
        bad |= _log_ratio(spot, ref.fillna(u)) > SPX_PARITY_TOL + SPX_PARITY_TOL_PER_YEAR * tau
    return pd.Series(~bad, index=df.index)


def vix_option_future_matches_vx(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    """future_price within 5 % (log) of the settle of the VX future of the same expiry (peer
    vix_futures); an expiry without a VX monthly (a weekly) is not judged."""
    fut = _peer(ctx, "vix_futures")
    if fut is None:
        return pd.Series(True, index=df.index)
    settle = pd.DataFrame({"d": _dates(fut["date"]), "e": _dates(fut["expiry"]), "s": _num(fut, "settle")})
    settle = settle.dropna(subset=["d", "e"]).drop_duplicates(["d", "e"])
    ref = _lookup_pairs(_dates(df["date"]), _dates(df["expiry"]), settle, "s")
    with np.errstate(invalid="ignore"):
        bad = _log_ratio(_num(df, "future_price"), ref) > VIX_OPTION_FUTURE_TOL
    return pd.Series(~bad, index=df.index)


def vx_matches_vix_options(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    """The mirror of `vix_option_future_matches_vx`: settle within 5 % (log) of the future_price
    the same day's VIX chain (peer vix_options) quotes for that expiry. When the two tables
    disagree, one day cannot tell which is wrong (a curve row carrying another month's settle, or
    a chain on the wrong future), so both are refused, each naming the other."""
    opt = _peer(ctx, "vix_options")
    if opt is None:
        return pd.Series(True, index=df.index)
    fp = pd.DataFrame({"d": _dates(opt["date"]), "e": _dates(opt["expiry"]), "s": _num(opt, "future_price")})
    fp = fp.dropna().groupby(["d", "e"], as_index=False)["s"].median()
    ref = _lookup_pairs(_dates(df["date"]), _dates(df["expiry"]), fp, "s")
    with np.errstate(invalid="ignore"):
        bad = _log_ratio(_num(df, "settle"), ref) > VIX_OPTION_FUTURE_TOL
    return pd.Series(~bad, index=df.index)


def _day_signatures(frame: pd.DataFrame, columns: list[str], day: pd.Series) -> pd.DataFrame:
    """Per day: (rows, order-free sum of the rows' hashes over `columns`): equal signatures are
    equal multisets of rows (up to a 2^-64 hash collision)."""
    h = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy(np.uint64)
    sig = pd.DataFrame({"day": day.to_numpy(), "h": h}).dropna(subset=["day"])
    return sig.groupby("day")["h"].agg(["size", "sum"])


def day_not_repeated(columns: tuple[str, ...],
                     keys: tuple[str, ...]) -> Callable[[pd.DataFrame, RuleContext], pd.Series]:
    """False for every row of a day whose rows (keys but the date, and `columns`) are exactly the
    previous session's: a whole day re-delivered from the day before (a stale chain re-dated). The
    row-level stale rule covers quotes per key; an option chain's far strikes legitimately keep
    their quotes, so a chain is judged as a whole day, never row by row."""
    cols = [k for k in keys if k != "date"] + list(columns)

    def rule(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
        if ctx.previous is None or ctx.previous.empty or not set(cols) <= set(ctx.previous.columns):
            return pd.Series(True, index=df.index)
        day = _dates(df["date"])
        today = _day_signatures(df, cols, day)
        earlier = _day_signatures(ctx.previous, cols, pd.to_datetime(ctx.previous["_next_date"]))
        both = today.join(earlier, rsuffix="_prev", how="inner")
        repeated = both.index[(both["size"] == both["size_prev"]) & (both["sum"] == both["sum_prev"])]
        return pd.Series(~day.isin(repeated).to_numpy(), index=df.index)

    return rule


LEVEL_RATIO_MAX = 20.0  # a day's median volume vs the table's history: market-wide volume moves x2-3, a unit x100


def level_matches_history(columns: tuple[str, ...],
                          summed: bool = False) -> Callable[[pd.DataFrame, RuleContext], pd.Series]:
    """False for every row of a day where a column's median (its positive values) is more than
    LEVEL_RATIO_MAX times above or below its median over the table's history before the batch
    (`RuleContext.previous`, the sessions before the first partition); `summed`: of the columns'
    sum (breadth's up + down volume: either alone swings x30 with the market's direction). A unit
    change across a whole delivery (volumes in lots of 100) moves every day together, so no
    day-over-day rule sees it; the table's own history does. Without history nothing is judged."""

    def measures(frame: pd.DataFrame) -> dict[str, pd.Series]:
        if summed:
            return {"+".join(columns): sum((_num(frame, c) for c in columns), pd.Series(0.0, index=frame.index))}
        return {c: _num(frame, c) for c in columns}

    def rule(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
        ok = pd.Series(True, index=df.index)
        if ctx.previous is None or ctx.previous.empty or not set(columns) <= set(ctx.previous.columns):
            return ok
        before = ctx.previous[_dates(ctx.previous["date"]) < ctx.partition_dates.min()]
        day = _dates(df["date"])
        history = measures(before)
        for name, v in measures(df).items():
            past = history[name]
            ref = float(past[past > 0].median())
            if not np.isfinite(ref):
                continue
            med = v.where(v > 0).groupby(day).median()
            with np.errstate(divide="ignore", invalid="ignore"):
                off = np.abs(np.log(med / ref)) > np.log(LEVEL_RATIO_MAX)
            ok &= ~day.isin(med.index[off.to_numpy()]).to_numpy()
        return ok

    return rule


# ---- the VX contract calendar --------------------------------------------------------------------------------

_MONTH_OF_CODE = {c: i for i, c in enumerate(cal.MONTH_CODES)}


def vx_contract_month(contract: pd.Series, dates: pd.Series) -> np.ndarray:
    """Month ordinal (year * 12 + month - 1) of VX codes like VXK08 (the century nearest the trade
    date); NaN when the code is not a VX month code."""
    parts = contract.astype(str).str.extract(r"^VX([FGHJKMNQUVXZ])(\d{2})$")
    month = parts[0].map(_MONTH_OF_CODE).astype(float).to_numpy()
    yy = pd.to_numeric(parts[1], errors="coerce").to_numpy(float)
    year = yy + 100 * np.round((_dates(dates).dt.year.to_numpy(float) - yy) / 100)
    return year * 12 + month


def _vx_expiry_of(months: np.ndarray, old_rule: bool = False) -> np.ndarray:
    """Calendar final settlement of month ordinals (datetime64, NaT where unknown or outside the
    exchange calendar). `old_rule`: CFE's original rule (the Wednesday before the contract month's
    third Friday), only for contract years <= VX_OLD_RULE_LAST_YEAR."""
    months = np.asarray(months, dtype=float)
    out = np.full(len(months), np.datetime64("NaT"), dtype="datetime64[ns]")
    ok = np.isfinite(months)
    if old_rule:
        ok &= months // 12 <= VX_OLD_RULE_LAST_YEAR
    uniq = np.unique(months[ok]).astype(np.int64)
    if not len(uniq):
        return out
    nxt = uniq + 1
    sessions = cal.all_sessions()
    friday_next = cal.third_friday(nxt // 12, nxt % 12 + 1)
    inside = np.asarray((friday_next - pd.Timedelta(days=31) > sessions[0])
                        & (friday_next <= sessions[-1] + pd.Timedelta(days=4)))
    uniq = uniq[inside]
    if not len(uniq):
        return out
    if old_rule:
        exp = cal.previous_session(cal.third_friday(uniq // 12, uniq % 12 + 1) - pd.Timedelta(days=2))
    else:
        exp = cal.vix_expiry(uniq // 12, uniq % 12 + 1)
    lookup = pd.Series(pd.DatetimeIndex(exp).as_unit("ns").to_numpy(), index=uniq)
    sel = np.flatnonzero(ok)
    out[sel] = lookup.reindex(months[sel].astype(np.int64)).to_numpy()
    return out


def vx_front_month(dates: Sequence | np.ndarray | pd.DatetimeIndex) -> np.ndarray:
    """Month ordinal of the front VX contract (first calendar expiry after the date), NaN if unknown."""
    d = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates))).as_unit("ns")
    base = (d.year * 12 + d.month - 1).to_numpy(float)
    cands = base[:, None] + np.arange(3)
    exp = _vx_expiry_of(cands.ravel()).reshape(cands.shape)
    after = exp > d.to_numpy()[:, None]
    first = np.argmax(after, axis=1)
    front = cands[np.arange(len(d)), first]
    return np.where(after.any(axis=1), front, np.nan)


def vx_listed(dates: Sequence | np.ndarray | pd.DatetimeIndex, n: int = VX_LISTED_MONTHS) -> pd.DataFrame:
    """The calendar's n front VX contracts of each date: columns d, month_index, contract."""
    d = pd.DatetimeIndex(pd.to_datetime(np.unique(np.asarray(dates, dtype="datetime64[ns]"))))
    front = vx_front_month(d)
    keep = np.isfinite(front)
    months = (front[keep][:, None] + np.arange(n)).astype(np.int64).ravel()
    return pd.DataFrame({"d": np.repeat(d[keep].to_numpy(), n), "month_index": np.tile(np.arange(1, n + 1), keep.sum()),
                         "contract": cal.contract_code(months // 12, months % 12 + 1)})


def expiry_on_calendar(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    """The contract code is a VX month code and its expiry is that month's calendar final settlement
    (`calendar.vix_expiry`; 2004 contracts may follow CFE's original rule, as VXN04 / VXV04 did)."""
    months = vx_contract_month(df["contract"], df["date"])
    e = _dates(df["expiry"]).to_numpy()
    new, old = _vx_expiry_of(months), _vx_expiry_of(months, old_rule=True)
    unknown = np.isfinite(months) & np.isnat(new)  # beyond the exchange calendar: cannot judge
    return pd.Series(unknown | (e == new) | (e == old) | np.isnat(e), index=df.index)


def curve_on_calendar(df: pd.DataFrame, ctx: RuleContext) -> pd.Series:
    """Each day's month_index runs 1..N without gap or repeat, and M_i is the calendar's i-th listed
    contract since VX_CONSECUTIVE_SINCE (before it CFE listed a quarterly cycle: real gaps), and on
    every date for generated rows (provenance synthetic / model follow the calendar)."""
    d, mi = _dates(df["date"]), _num(df, "month_index")
    frame = pd.DataFrame({"d": d, "mi": mi}).sort_values(["d", "mi"], kind="stable")
    pos = (frame.groupby("d", dropna=False).cumcount() + 1).reindex(df.index)
    ok = (pos == mi) | mi.isna() | d.isna()
    generated = df["provenance"].isin(GENERATED) if "provenance" in df else False
    since = ((d >= VX_CONSECUTIVE_SINCE) | generated).to_numpy()
    if since.any():
        front = pd.Series(vx_front_month(d[since].to_numpy()), index=df.index[since])
        expected = front + mi[since] - 1
        got = pd.Series(vx_contract_month(df["contract"][since], df["date"][since]), index=df.index[since])
        ok.loc[since] &= (got == expected) | front.isna() | mi[since].isna()
    return ok.astype(bool)


def _rule(name, columns, description, compute, mostly=1.0) -> RowRule:
    return RowRule(name, tuple(columns), description, compute, mostly)


_DATE = _rule("_date_is_partition", ["date"], "row date equals its partition", date_in_partition)
_BIDASK = _rule("_bid_le_ask", ["bid", "ask"], "quote not crossed (bid <= ask)", bid_le_ask)
_OHLC = _rule("_ohlc_consistent", ["open", "high", "low", "close"], "low <= open, close <= high", low_le_high)

# Stale quotes are judged per partition as a share of rows: `mostly` is set from the threshold.
STALE_RULES = {
    "equity_bars": (("close", "bid", "ask", "volume"), ("date", "symbol")),
    "vix_futures": (("settle", "bid", "ask", "volume", "open_interest"), ("date", "contract")),
    "index_levels": (("open", "high", "low", "close"), ("date", "index")),
}
# Tables whose rules read `RuleContext.previous` (stale quotes, jumps): only they pay for building it.
PREVIOUS_TABLES = frozenset({*STALE_RULES, "equity_bars", "index_levels", "vix_futures", "spx_options", "vix_options",
                             "breadth"})

_REPEAT_WHY = "the day is not the previous session's rows re-delivered (every key and quote unchanged)"
_LEVEL_WHY = (f"the day's median volume within {LEVEL_RATIO_MAX:g}x of the table's history before the delivery "
              "(a unit change, e.g. lots of 100, moves every day together)")
OPTION_KEYS = ("date", "expiry", "strike", "option_type")
BREADTH_COUNTS = ("advancers", "decliners", "unchanged", "up_volume", "down_volume")
# the columns of the earlier sessions those rules read, where not every column (an option chain's
# whole-day signature needs its keys and quotes, not 20 sessions of full chains)
PREVIOUS_COLUMNS: dict[str, list[str]] = {
    "spx_options": [*OPTION_KEYS, "bid", "ask"], "vix_options": [*OPTION_KEYS, "bid", "ask"]}
_JUMP_WHY = "no implausible jump: |log move| from both of the last two levels <= max(10 x trailing robust vol, {})"
_EXPIRY_AFTER = "expires after the quote date"

TABLE_RULES: dict[str, list[RowRule]] = {
    "equity_bars": [
        _DATE, _BIDASK, _OHLC,
        _rule("_volume_matches_history", ["volume"], _LEVEL_WHY, level_matches_history(("volume",))),
        _rule("_no_implausible_jump", ["close"], _JUMP_WHY.format("1.0; 1.0 with too little history")
              + " per symbol (a x100 day is 4.6)",
              no_implausible_jump("symbol", "close", lambda c: [SINGLE_NAME_JUMP] * len(c))),
    ],
    "index_levels": [
        _DATE, _OHLC,
        _rule("_level_in_range", ["index", "open", "high", "low", "close"],
              "index level plausible: VIX in [5, 150], SPX in (0, 50000], COMP in (0, 200000]", index_level_in_range),
        _rule("_no_implausible_jump", ["index", "close"],
              _JUMP_WHY.format("0.25 SPX/COMP, 1.0 VIX; 0.5 / 1.0 with too little history"),
              no_implausible_jump("index", "close", _index_jump_limits)),
        _rule("_spx_matches_option_parity", ["index", "close"],
              "SPX close within 3 % of the level put-call parity implies on the same day's raw/spx_options",
              spx_matches_option_parity),
        _rule("_vix_matches_futures", ["index", "close"],
              "VIX close within a factor e of the front VX settle (raw/vix_futures) and the VIX chain's front "
              "future_price (raw/vix_options) of the same day", vix_matches_futures),
    ],
    "vix_futures": [
        _DATE, _BIDASK,
        _rule("_expiry_after_date", ["expiry"], "contract " + _EXPIRY_AFTER, expiry_after_date),
        _rule("_expiries_ordered", ["expiry", "month_index"], "M1 < M2 < ... expiries", expiries_ordered),
        _rule("_expiry_on_calendar", ["contract", "expiry"],
              "VX month code whose expiry is the contract calendar's (calendar.vix_expiry; 2004: CFE's first rule)",
              expiry_on_calendar),
        _rule("_curve_on_calendar", ["contract", "month_index"],
              "months 1..N consecutive, M_i the calendar's i-th listed VX contract (real data: since 2008-04-21)",
              curve_on_calendar),
        _rule("_no_implausible_jump", ["contract", "settle"],
              _JUMP_WHY.format("1.0; 1.0 with too little history") + " per contract",
              no_implausible_jump("contract", "settle", lambda c: [VX_JUMP] * len(c))),
        _rule("_matches_vix_options", ["settle", "expiry"],
              "settle within 5 % of the future_price raw/vix_options quotes for the same expiry (when the two "
              "disagree both are refused: one day cannot tell which is wrong)", vx_matches_vix_options),
        _rule("_volume_matches_history", ["volume", "open_interest"],
              _LEVEL_WHY, level_matches_history(("volume", "open_interest"))),
    ],
    "spx_options": [
        _DATE, _BIDASK,
        _rule("_expiry_after_date", ["expiry"], "option " + _EXPIRY_AFTER, expiry_after_date),
        _rule("_option_type_valid", ["option_type"], "option_type is C or P", option_type_valid),
        _rule("_strike_on_grid", ["strike"], "strike on the 5-point SPX grid", spx_strike_on_grid),
        _rule("_within_no_arbitrage", ["bid", "ask", "strike", "underlying"],
              "quote inside model-free bounds (call in [D·max(F-K,0), D·F], put in [D·max(K-F,0), D·K])",
              spx_no_arbitrage),
        _rule("_price_capped", ["ask", "strike", "underlying"],
              "ask <= 1.5 x underlying (call) / strike (put), strike <= 10 x underlying",
              option_price_capped("underlying")),
        _rule("_matches_spx_close", ["underlying", "bid", "ask"],
              "underlying and each expiry's put-call-parity level within 3 % (+3 %/year) of the SPX close of "
              "raw/index_levels (of the chain's own underlying when index_levels is absent)", spx_chain_matches_close),
        _rule("_day_not_repeated", ["bid", "ask"], _REPEAT_WHY, day_not_repeated(("bid", "ask"), OPTION_KEYS)),
    ],
    "vix_options": [
        _DATE, _BIDASK,
        _rule("_expiry_after_date", ["expiry"], "option " + _EXPIRY_AFTER, expiry_after_date),
        _rule("_option_type_valid", ["option_type"], "option_type is C or P", option_type_valid),
        _rule("_strike_on_grid", ["strike"], "strike on the VIX grid (1 pt to 50, 5 pt above)", vix_strike_on_grid),
        _rule("_within_no_arbitrage", ["bid", "ask", "strike", "future_price"],
              "quote inside Black-76 model-free bounds on the future", vix_no_arbitrage),
        _rule("_price_capped", ["ask", "strike", "future_price"],
              "ask <= 1.5 x future_price (call) / strike (put)", option_price_capped("future_price")),
        _rule("_future_matches_vx", ["future_price", "expiry"],
              "future_price within 5 % of the same-expiry VX settle of raw/vix_futures (when the two disagree both "
              "are refused: one day cannot tell which is wrong)", vix_option_future_matches_vx),
        _rule("_day_not_repeated", ["bid", "ask"], _REPEAT_WHY, day_not_repeated(("bid", "ask"), OPTION_KEYS)),
    ],
    "breadth": [
        _DATE,
        _rule("_counts_consistent", ["advancers", "decliners", "unchanged", "total_issues", "new_highs", "new_lows"],
              "advancers + decliners + unchanged = total_issues, all >= 0, new highs / lows <= total_issues",
              breadth_consistent),
        _rule("_day_not_repeated", BREADTH_COUNTS, _REPEAT_WHY, day_not_repeated(BREADTH_COUNTS, ("date", "exchange"))),
        _rule("_volume_matches_history", ["up_volume", "down_volume"], _LEVEL_WHY,
              level_matches_history(("up_volume", "down_volume"), summed=True)),
    ],
    "macro_events": [
        _DATE,
        _rule("_surprise_point_in_time", ["surprise"], "no surprise before the release date",
              surprise_only_when_released),
    ],
    "fundamentals": [
        _DATE,
        _rule("_point_in_time", ["report_date", "fiscal_period_end"],
              "report published on or before the as-of date, after its period end", report_not_after_date),
    ],
    "rates": [_DATE],
}


def stale_rule(table: str, threshold: float) -> RowRule | None:
    if table not in STALE_RULES:
        return None
    cols, keys = STALE_RULES[table]
    return RowRule("_not_stale", cols, f"quote changed since the previous session (at most {threshold:.0%} unchanged)",
                   not_stale(cols, keys), mostly=1.0 - threshold)


def finite_rule(table: str) -> RowRule:
    from alvh_pipeline.schemas import CONTRACTS

    cols = tuple(n for n, t, _ in CONTRACTS[table].columns if str(t) in ("double", "int64"))
    return RowRule("_finite", cols, "numbers are finite (no ±inf)", finite_numbers(cols))


def rules_for(table: str, stale_threshold: float) -> list[RowRule]:
    extra = stale_rule(table, stale_threshold)
    return TABLE_RULES[table] + [finite_rule(table)] + ([extra] if extra else [])


def add_rule_flags(df: pd.DataFrame, rules: list[RowRule],
                   ctx: RuleContext) -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    """Return df with one boolean flag column per computable rule, the names of rules that could
    not be computed because a column they need is missing (the schema expectations report it), and
    {rule: error} for rules that raised on this data: their flag is left all True and the caller
    reports the error as a failure, so a malformed delivery is refused, never a crashed gate."""
    out = df.copy()
    skipped, errors = [], {}
    for rule in rules:
        try:
            flag = np.asarray(rule.compute(df, ctx), dtype=bool)
            if flag.shape != (len(df),):
                raise ValueError(f"flag of {flag.shape[0] if flag.ndim else 0} rows for {len(df)} rows")
            out[rule.name] = flag
        except KeyError:
            skipped.append(rule.name)
        except Exception as exc:  # any rule crash becomes a reported failure
            out[rule.name] = True
            errors[rule.name] = f"{type(exc).__name__}: {exc}"[:300]
    return out, skipped, errors
