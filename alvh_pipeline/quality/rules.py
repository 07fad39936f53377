"""Row-level rules that need arithmetic across columns (or the previous day), computed vectorized
in pandas as boolean flag columns (True = row is fine). The GE suite then asserts each flag column
is all True (or True for at least `mostly` of the rows), so every rule reports through GE with its
count and sample rows. Pure pandas: no GE or Dagster import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alvh_pipeline.core.pricing import no_arbitrage_bounds

VIX_FUTURES_MAX_POINTS = 100.0  # a settle above this is the pre-2007 10x quote, not the index


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
    return (parts == _num(df, "total_issues")) & (_num(df, "advancers") >= 0) & (_num(df, "decliners") >= 0) & (
        _num(df, "unchanged") >= 0)


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

TABLE_RULES: dict[str, list[RowRule]] = {
    "equity_bars": [_DATE, _BIDASK, _OHLC],
    "index_levels": [_DATE, _OHLC],
    "vix_futures": [
        _DATE, _BIDASK,
        _rule("_expiry_after_date", ["expiry"], "contract expires after the trade date", expiry_after_date),
        _rule("_expiries_ordered", ["expiry", "month_index"], "M1 < M2 < ... expiries", expiries_ordered),
    ],
    "spx_options": [
        _DATE, _BIDASK,
        _rule("_expiry_after_date", ["expiry"], "option expires after the quote date", expiry_after_date),
        _rule("_option_type_valid", ["option_type"], "option_type is C or P", option_type_valid),
        _rule("_strike_on_grid", ["strike"], "strike on the 5-point SPX grid", spx_strike_on_grid),
        _rule("_within_no_arbitrage", ["bid", "ask", "strike", "underlying"],
              "quote inside model-free bounds (call in [D·max(F-K,0), D·F], put in [D·max(K-F,0), D·K])",
              spx_no_arbitrage),
    ],
    "vix_options": [
        _DATE, _BIDASK,
        _rule("_expiry_after_date", ["expiry"], "option expires after the quote date", expiry_after_date),
        _rule("_option_type_valid", ["option_type"], "option_type is C or P", option_type_valid),
        _rule("_strike_on_grid", ["strike"], "strike on the VIX grid (1 pt to 50, 5 pt above)", vix_strike_on_grid),
        _rule("_within_no_arbitrage", ["bid", "ask", "strike", "future_price"],
              "quote inside Black-76 model-free bounds on the future", vix_no_arbitrage),
    ],
    "breadth": [
        _DATE,
        _rule("_counts_consistent", ["advancers", "decliners", "unchanged", "total_issues"],
              "advancers + decliners + unchanged = total_issues, all >= 0", breadth_consistent),
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
