"""Run a table's GE suite over one or many partitions and turn the GE result into a report:
which expectations failed, on which column, how many rows, sample rows, which partitions, and the
offending rows with a `reason` for quarantine. No Dagster import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alvh_pipeline.core.check_report import RuleFailure, sample_records
from alvh_pipeline.quality.rules import (
    GENERATED,
    PREVIOUS_COLUMNS,
    PREVIOUS_TABLES,
    VX_CONSECUTIVE_SINCE,
    VX_MIN_MONTHS,
    RuleContext,
    add_rule_flags,
    rules_for,
    vx_listed,
)
from alvh_pipeline.quality.suites import suite_runner

HISTORY_SESSIONS = 20  # earlier sessions the gate should pass as `history` (jump vol, typical size)

# The other raw tables (and their columns) each table's cross-table rules read, same partitions.
PEER_TABLES: dict[str, dict[str, list[str]]] = {
    "index_levels": {
        "spx_options": ["date", "expiry", "strike", "option_type", "bid", "ask", "underlying", "rate",
                        "dividend_yield"],
        "vix_futures": ["date", "month_index", "settle"],
        "vix_options": ["date", "expiry", "future_price"],
    },
    "spx_options": {"index_levels": ["date", "index", "close"]},
    "vix_options": {"vix_futures": ["date", "expiry", "settle"]},
    "vix_futures": {"vix_options": ["date", "expiry", "future_price"]},  # the mirror: both refused when they disagree
    "equity_bars": {"fundamentals": ["date", "symbol"]},  # completeness: the universe
    "fundamentals": {"equity_bars": ["date", "symbol", "sector"]},
}


def history_columns(table: str) -> list[str] | None:
    """The columns of `history` the rules read: every column for the tables whose row rules compare
    with earlier rows (stale quotes, jumps), the key columns for the others (completeness only), so
    the gate need not read 20 sessions of option chains in full. None = all columns."""
    from alvh_pipeline.schemas import CONTRACTS

    if table in PREVIOUS_COLUMNS:
        return PREVIOUS_COLUMNS[table]
    return None if table in PREVIOUS_TABLES else list(CONTRACTS[table].keys)


def history_sessions(first_partition: str, n: int = HISTORY_SESSIONS) -> list[str]:
    """The n sessions before `first_partition` ("YYYY-MM-DD"), oldest first: the raw partitions the
    gate should read (those present) and pass, concatenated, as `history`."""
    from alvh_pipeline.core.calendar import all_sessions

    s = all_sessions()
    i = int(s.searchsorted(pd.Timestamp(first_partition)))
    return [d.strftime("%Y-%m-%d") for d in s[max(i - n, 0):i]]
TABLE_LEVEL = {
    "expect_table_row_count_to_be_between", "expect_table_columns_to_match_set", "expect_column_to_exist",
    "expect_column_values_to_be_of_type",
}


@dataclass
class ValidationReport:
    table: str
    partitions: list[str]
    n_rows: int
    n_expectations: int
    failures: list[RuleFailure]
    frame: pd.DataFrame  # the validated rows (raw columns only)
    row_partitions: np.ndarray  # partition of each row of `frame`

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failed_partitions(self) -> list[str]:
        return sorted({p for f in self.failures for p in f.partitions})

    def message(self) -> str:
        if self.passed:
            return f"raw/{self.table}: {self.n_expectations} expectations passed on {self.n_rows} rows"
        head = (f"raw/{self.table}: {len(self.failures)} of {self.n_expectations} expectations failed; "
                f"blocked partitions: {', '.join(self.failed_partitions[:10])}")
        return head + "\n" + "\n".join("  - " + f.line() for f in self.failures)

    def quarantine_rows(self) -> dict[str, pd.DataFrame]:
        """Offending rows per partition with a `reason` (whole partition for table-level failures)."""
        if self.frame.empty:
            return {}
        dates = self.row_partitions
        reasons = pd.Series("", index=np.arange(len(self.frame)), dtype=object)
        for f in self.failures:
            if f.row_index is None:
                sel = np.isin(dates, f.partitions)
            else:
                sel = np.zeros(len(self.frame), dtype=bool)
                sel[f.row_index] = True
                sel &= np.isin(dates, f.partitions)
            reasons[sel] = reasons[sel] + f"{f.rule}({f.column}): {f.why}; "
        out = {}
        bad = reasons.to_numpy() != ""
        for p in self.failed_partitions:
            sel = bad & (dates == p)
            if sel.any():
                rows = self.frame.iloc[np.flatnonzero(sel)].copy()
                rows["reason"] = reasons.to_numpy()[sel]
                out[p] = rows.reset_index(drop=True)
        return out


def _partition_of(frame: pd.DataFrame) -> np.ndarray:
    if "date" not in frame:
        return np.full(len(frame), "unknown", dtype=object)
    d = pd.to_datetime(frame["date"], errors="coerce")
    return np.asarray(d.dt.strftime("%Y-%m-%d").fillna("unknown"), dtype=object)


def _previous_rows(previous: pd.DataFrame | None, sessions: pd.DatetimeIndex) -> pd.DataFrame | None:
    """Tag each earlier row with the next session, so row (key, date) can be matched with
    (key, previous session)."""
    if previous is None or previous.empty or "date" not in previous:
        return None
    d = pd.to_datetime(previous["date"], errors="coerce").dt.normalize()
    pos = np.searchsorted(sessions.values, d.values, side="right")
    ok = pos < len(sessions)
    nxt = np.full(len(d), np.datetime64("NaT"), dtype="datetime64[ns]")
    nxt[ok] = sessions.values[pos[ok]]
    return previous.assign(_next_date=nxt)


def validate_frame(
    table: str,
    frame: pd.DataFrame,
    partitions: list[str],
    history: pd.DataFrame | None = None,
    stale_threshold: float = 0.2,
    row_partitions: np.ndarray | None = None,
    peers: Mapping[str, pd.DataFrame] | None = None,
) -> ValidationReport:
    """Validate the raw rows of `partitions` (one frame, any number of days).

    `history`: the same table's raw rows of the sessions before `partitions[0]`, any number of them
    (the gate should pass the last HISTORY_SESSIONS, see `history_sessions`): the stale-quote rule
    uses the session before each day, the jump rules the trailing volatility, completeness the
    typical size. `row_partitions`: the partition (file) each row came from; by default its `date`
    column. `peers`: {table: raw rows of that table for the same partitions} for the cross-table
    rules (PEER_TABLES lists which tables and columns each table's rules read); a rule whose peer is
    absent, or has no rows for a day, passes that day."""
    from alvh_pipeline.core.calendar import all_sessions

    frame = frame.reset_index(drop=True)
    pdates = pd.DatetimeIndex(pd.to_datetime(partitions))
    row_dates = _partition_of(frame) if row_partitions is None else np.asarray(row_partitions, dtype=object)
    previous = None
    if table in PREVIOUS_TABLES:
        earlier = pd.concat([history, frame], ignore_index=True) if history is not None else frame
        previous = _previous_rows(earlier, all_sessions())
    ctx = RuleContext(pdates, previous, stale_threshold,
                      None if row_partitions is None else row_dates, dict(peers or {}))
    rules = rules_for(table, stale_threshold)
    flagged, _, rule_errors = add_rule_flags(frame, rules, ctx)
    result = suite_runner(stale_threshold).validate(table, flagged)
    shares = {r.name for r in rules if r.mostly < 1.0}

    failures: list[RuleFailure] = _column_set_failures(result, frame, partitions)
    missing = {f.column for f in failures}
    for r in result.results:
        if r.success and r.exception_info.get("raised_exception") is not True:
            continue
        cfg = r.expectation_config
        kw = cfg.kwargs
        column = kw.get("column") or ",".join(kw.get("column_list", []) or []) or "*"
        if cfg.type == "expect_table_columns_to_match_set" or column in missing:
            continue  # reported column by column above
        if column in shares:
            continue  # share-of-rows rules are judged per partition below, never across a batch
        meta = cfg.meta or {}
        why = meta.get("why", cfg.type)
        if column.startswith("_"):
            column = meta.get("about", column)
        res = r.result or {}
        idx = res.get("unexpected_index_list")
        if cfg.type in TABLE_LEVEL or idx is None:
            observed = res.get("observed_value")
            failures.append(RuleFailure(cfg.type, column, why, len(frame), list(partitions), [],
                                        None, None if observed is None else str(observed)[:200]))
            continue
        pos = np.asarray([i for i in idx if isinstance(i, (int, np.integer))], dtype=np.int64)
        parts = sorted(set(row_dates[pos].tolist())) if len(pos) else list(partitions)
        failures.append(RuleFailure(cfg.type, column, why, int(res.get("unexpected_count", len(pos))),
                                    parts, sample_records(frame.iloc[pos]), pos))

    by_name = {r.name: r for r in rules}
    failures += [RuleFailure("rule_error", ",".join(by_name[n].columns), f"rule {n} could not be computed ({err})",
                             len(frame), list(partitions)) for n, err in rule_errors.items()]
    failures += _per_partition_failures(frame, flagged, partitions, rules, row_dates)
    keys_unique = not any(f.why == "duplicated key" for f in failures)
    failures += _completeness_failures(table, frame, row_dates, list(partitions), history, peers or {}, keys_unique)
    return ValidationReport(table, list(partitions), len(frame), len(result.results), failures, frame, row_dates)


def _column_set_failures(result, frame: pd.DataFrame, partitions: list[str]) -> list[RuleFailure]:
    """One failure per missing or unexpected contract column, from the column-set expectation."""
    out = []
    for r in result.results:
        if r.expectation_config.type != "expect_table_columns_to_match_set" or r.success:
            continue
        mismatched = ((r.result or {}).get("details") or {}).get("mismatched") or {}
        for col in mismatched.get("missing", []):
            if not col.startswith("_"):  # a rule flag is absent only because its input column is
                out.append(RuleFailure(r.expectation_config.type, col, "missing column", len(frame), list(partitions)))
        for col in mismatched.get("unexpected", []):
            out.append(RuleFailure(r.expectation_config.type, col, "column not in the contract (renamed?)", len(frame),
                                   list(partitions)))
    return out


# ---- completeness (issue 7 B): judged against what the table should hold, not only against yesterday --------

@dataclass(frozen=True)
class Completeness:
    """What every partition of a table must hold. Counts are distinct keys: a duplicated row is not a
    bigger delivery. "Typical" is the median count of the (up to HISTORY_SESSIONS) sessions before the
    partition that are known (history and earlier partitions of the batch)."""

    min_rows: int  # documented floor: fewer is a partial delivery whatever the history
    share_of_typical: float
    share_of_previous: float | None = None  # stable tables: also >= this x the session before
    required: tuple[str, tuple[str, ...]] | None = None  # (column, values every partition holds)
    min_expiries: tuple[int, float] | None = None  # (floor, share of typical) of distinct expiries
    universe: bool = False  # symbols vs the previous delivery and the same day's UNIVERSE_PEER


MIN_SHARE_OF_PREVIOUS = 0.75
# Floors: the smallest delivery seen in synthetic / replay 1999-2026 is 824 SPX option rows and 8 expiries,
# 138 VIX option rows and 3 expiries, 13 macro events; 43 equity rows for a 40-name synthetic universe.
# Chains and calendars vary with the market (strike ranges widen with vol, at least 0.54 x the trailing
# median in 1999-2026), hence a third of the typical size; rows of stable tables are the universe.
COMPLETENESS: dict[str, Completeness] = {
    "equity_bars": Completeness(20, MIN_SHARE_OF_PREVIOUS, MIN_SHARE_OF_PREVIOUS, ("symbol", ("SPY", "QQQ", "IWM")),
                                universe=True),
    "fundamentals": Completeness(20, MIN_SHARE_OF_PREVIOUS, MIN_SHARE_OF_PREVIOUS, universe=True),
    "index_levels": Completeness(3, MIN_SHARE_OF_PREVIOUS, MIN_SHARE_OF_PREVIOUS, ("index", ("SPX", "COMP", "VIX"))),
    # VX: the contract calendar (below) decides; counts alone would refuse CFE's real 2004-2008 listings
    # (3 to 8 months on a changing cycle) and replay's switch from model (8) to real (4) on 2004-03-26
    "vix_futures": Completeness(3, 0.0),
    "spx_options": Completeness(300, 1 / 3, min_expiries=(3, 0.5)),
    "vix_options": Completeness(50, 1 / 3, min_expiries=(2, 0.5)),
    "breadth": Completeness(1, MIN_SHARE_OF_PREVIOUS, MIN_SHARE_OF_PREVIOUS, ("exchange", ("NYSE",))),
    "macro_events": Completeness(6, 0.5, required=("event_type", ("FOMC", "CPI", "PPI"))),
    "rates": Completeness(1, MIN_SHARE_OF_PREVIOUS, MIN_SHARE_OF_PREVIOUS),
}
UNIVERSE_MAX_MISSING = 0.10  # share of a reference universe that may be absent (delistings, reconstitutions)
UNIVERSE_PEER = {"equity_bars": "fundamentals", "fundamentals": "equity_bars"}
ETF_SECTOR = "ETF"  # equity_bars rows that are not single names (no fundamentals)
_COUNT = "expect_table_row_count_to_be_between"
_CONTAINS = "expect_column_distinct_values_to_contain_set"


def _distinct_keys(table: str, frame: pd.DataFrame | None, row_dates: np.ndarray,
                   unique: bool = False) -> pd.Series:
    """Distinct contract keys per partition (rows when a key column is missing, or when the keys are
    known to be unique: the unique-key expectation passed)."""
    from alvh_pipeline.schemas import CONTRACTS

    if frame is None or not len(frame):
        return pd.Series(dtype="int64")
    keys = [k for k in CONTRACTS[table].keys if k != "date"]
    if unique or not all(k in frame for k in keys):
        return pd.Series(row_dates).value_counts()
    return frame[keys].assign(_p=row_dates).drop_duplicates().groupby("_p").size()


def _distinct_values(frame: pd.DataFrame | None, row_dates: np.ndarray, column: str) -> pd.DataFrame:
    """Distinct (p, value) pairs, value as text."""
    if frame is None or not len(frame) or column not in frame:
        return pd.DataFrame({"p": pd.Series(dtype=object), "v": pd.Series(dtype=object)})
    pc, pu = pd.factorize(np.asarray(row_dates, dtype=object))  # codes, then one int64 per (p, v): no
    vc, vu = pd.factorize(frame[column], use_na_sentinel=False)  # hashing of 800k object pairs
    key = np.unique(pc.astype(np.int64) * len(vu) + vc)
    return pd.DataFrame({"p": np.asarray(pu, dtype=object)[key // len(vu)],
                         "v": pd.Index(vu)[key % len(vu)].astype(str).to_numpy(dtype=object)})


def _same_source(pairs: pd.DataFrame, frame: pd.DataFrame, row_dates: np.ndarray, history: pd.DataFrame | None,
                 hist_days: np.ndarray) -> np.ndarray:
    """Per (p, q) pair of a partition and its previous delivery: do they share a provenance label?
    A universe is compared with the previous delivery's only when they do: a delivery whose every
    row comes from another source than the day before (the replay's synthetic basket giving way to
    its real names on 2004-01-02) is a declared reconstitution, not a
    vendor dropping names. Without a provenance column every pair is compared."""
    if "provenance" not in frame:
        return np.ones(len(pairs), bool)
    labels = pd.concat([_distinct_values(history, hist_days, "provenance"),
                        _distinct_values(frame, row_dates, "provenance")], ignore_index=True)
    sets = labels.groupby("p")["v"].agg(frozenset).to_dict()
    return np.array([bool(sets.get(p, frozenset()) & sets.get(q, frozenset()))
                     for p, q in zip(pairs["p"], pairs["q"])], dtype=bool)  # one per partition, not per row


def _before(known: pd.Series) -> pd.DataFrame:
    """For each day of `known` (day -> count > 0, any order): the count of the known day before it
    and the median of the HISTORY_SESSIONS known days before it."""
    known = known[known > 0].sort_index()
    return pd.DataFrame({"previous": known.shift(1),
                         "typical": known.rolling(HISTORY_SESSIONS, min_periods=1).median().shift(1),
                         "n_before": np.arange(len(known))}, index=known.index)


def _examples(values) -> str:
    values = sorted(values)
    return ", ".join(values[:5]) + (", …" if len(values) > 5 else "")


def _missing_from(reference: pd.DataFrame, present: pd.DataFrame) -> pd.DataFrame:
    """Rows (p, v) of `reference` absent from `present`."""
    merged = reference.merge(present, on=["p", "v"], how="left", indicator=True)
    return merged[merged["_merge"] == "left_only"][["p", "v"]]


def _completeness_failures(table: str, frame: pd.DataFrame, row_dates: np.ndarray, partitions: list[str],
                           history: pd.DataFrame | None, peers: Mapping[str, pd.DataFrame],
                           keys_unique: bool = False) -> list[RuleFailure]:
    """Partition-level completeness (whole partition blocked and quarantined): a floor of rows, rows
    vs the session before and vs the typical day, required keys (e.g. SPX, COMP and VIX), distinct
    expiries of the chains, the symbol universe vs the previous delivery and the same day's peer
    table, and the VX contract calendar."""
    spec = COMPLETENESS.get(table)
    if spec is None:
        return []
    hist_days = _partition_of(history) if history is not None and len(history) else np.array([], dtype=object)
    counts = _distinct_keys(table, frame, row_dates, keys_unique)
    todo = [p for p in partitions if counts.get(p, 0) > 0]  # an empty partition is reported on its own
    if not todo:
        return []
    out: list[RuleFailure] = []

    def fail(expectation: str, column: str, why: str, n: int, p: str) -> None:
        out.append(RuleFailure(expectation, column, why, int(n), [p]))

    ref = _before(pd.concat([_distinct_keys(table, history, hist_days), counts]).groupby(level=0).max()).reindex(todo)
    n = counts.reindex(todo).to_numpy(float)
    prev, typ, k = (ref[c].to_numpy(float) for c in ("previous", "typical", "n_before"))
    with np.errstate(invalid="ignore"):
        low_prev = (prev > 0) & (n < (spec.share_of_previous or 0.0) * prev)
        low_typ = ~low_prev & (typ > 0) & (n < spec.share_of_typical * typ)
    low_floor = ~low_prev & ~low_typ & (n < spec.min_rows)
    for i in np.flatnonzero(low_prev | low_typ | low_floor):  # failing partitions only
        if low_prev[i]:
            why = f"the session before had {int(prev[i])}"
        elif low_typ[i]:
            why = f"typical {typ[i]:g} (median of the {int(min(k[i], HISTORY_SESSIONS))} sessions before)"
        else:
            why = f"fewer than the {spec.min_rows} of any complete {table} delivery"
        fail(_COUNT, "*", f"incomplete partition: {int(n[i])} rows, {why}", n[i], todo[i])

    if spec.min_expiries and "expiry" in frame:
        floor, share = spec.min_expiries
        exp = _distinct_values(frame, row_dates, "expiry").groupby("p").size()
        hist_exp = _distinct_values(history, hist_days, "expiry").groupby("p").size()
        typ = _before(pd.concat([hist_exp, exp]).groupby(level=0).max())["typical"].reindex(todo).to_numpy(float)
        n = exp.reindex(todo).fillna(0).to_numpy(float)
        with np.errstate(invalid="ignore"):
            few = (n < floor) | ((typ > 0) & (n < share * typ))
        for i in np.flatnonzero(few):
            typical = f", typically {typ[i]:g}" if typ[i] > 0 else ""
            fail(_COUNT, "expiry", f"incomplete chain: {int(n[i])} expiries (at least {floor} and {share:.0%} of the "
                                   f"typical count{typical})", n[i], todo[i])

    present = None
    if spec.required:
        column, values = spec.required
        present = _distinct_values(frame, row_dates, column)
        need = pd.DataFrame([(p, v) for p in todo for v in values], columns=["p", "v"])
        for p, g in _missing_from(need, present).groupby("p"):
            fail(_CONTAINS, column, f"incomplete partition: {column} {_examples(g['v'])} missing (every delivery "
                                    f"holds {', '.join(values)})", len(g), p)

    if spec.universe and "symbol" in frame:
        present = _distinct_values(frame, row_dates, "symbol")
        known = pd.concat([_distinct_values(history, hist_days, "symbol"), present], ignore_index=True)
        days = np.array(sorted(set(known["p"])), dtype=object)
        # the previous delivery of each partition: the latest known day before it
        pos = np.searchsorted(days, np.array(todo, dtype=object)) - 1
        prev_of = pd.DataFrame({"p": np.array(todo, dtype=object)[pos >= 0], "q": days[pos[pos >= 0]]})
        prev_of = prev_of[_same_source(prev_of, frame, row_dates, history, hist_days)]
        refs = [("the previous delivery", prev_of.merge(known.rename(columns={"p": "q"}), on="q")[["p", "v", "q"]])]
        peer = (peers or {}).get(UNIVERSE_PEER[table])
        if peer is not None and len(peer) and {"date", "symbol"} <= set(peer.columns):
            if "sector" in peer:
                peer = peer[peer["sector"].astype(str) != ETF_SECTOR]
            names = _distinct_values(peer, _partition_of(peer), "symbol")
            names = names[names["p"].isin(todo)]
            refs.append((f"raw/{UNIVERSE_PEER[table]} of the same day", names.assign(q=names["p"])))
        for label, reference in refs:
            size = reference.groupby("p").size()
            gone = _missing_from(reference[["p", "v"]], present)
            for p, g in gone.groupby("p"):
                if len(g) > UNIVERSE_MAX_MISSING * size[p]:
                    q = reference.loc[reference["p"] == p, "q"].iloc[0]
                    where = f"{label} ({q})" if label == "the previous delivery" else label
                    fail(_CONTAINS, "symbol", f"incomplete universe: {len(g)} of the {size[p]} symbols of {where} "
                                              f"missing, e.g. {_examples(g['v'])}", len(g), p)

    if table == "vix_futures" and "contract" in frame:
        days = pd.DatetimeIndex(pd.to_datetime(todo))
        real = set(row_dates[~frame["provenance"].isin(GENERATED).to_numpy()]) if "provenance" in frame else set()
        since = [p for p, d in zip(todo, days) if d >= VX_CONSECUTIVE_SINCE or p not in real]
        if since:
            listed = vx_listed(pd.to_datetime(since), VX_MIN_MONTHS)
            listed = pd.DataFrame({"p": listed["d"].dt.strftime("%Y-%m-%d"), "v": listed["contract"].astype(str)})
            gone = _missing_from(listed, _distinct_values(frame, row_dates, "contract"))
            for p, g in gone.groupby("p"):
                fail(_CONTAINS, "contract", f"contract calendar: {_examples(g['v'])} not delivered; the first "
                                            f"{VX_MIN_MONTHS} listed VX months must be (real data: since "
                                            f"{VX_CONSECUTIVE_SINCE.date()})", len(g), p)
    return out


def _per_partition_failures(frame, flagged, partitions, rules, row_dates) -> list[RuleFailure]:
    """Judged per partition, whatever the batch: an empty day and share-of-rows (`mostly`) rules such
    as stale quotes (a single unchanged row is never over the share: a real VIX close can repeat, and
    it is a third of an index_levels day)."""
    out = []
    counts = pd.Series(row_dates).value_counts()
    empty = [p for p in partitions if counts.get(p, 0) == 0]
    if empty and len(frame):  # an all-empty batch is already reported by the row-count expectation
        out.append(RuleFailure("expect_table_row_count_to_be_between", "*", "partition is empty", 0, empty))
    for rule in rules:
        if rule.mostly >= 1.0 or rule.name not in flagged:
            continue
        bad = (~flagged[rule.name].astype(bool)).groupby(row_dates)
        share_bad, n_bad = bad.mean(), bad.sum()
        over = sorted(share_bad[(share_bad > 1.0 - rule.mostly) & (n_bad > 1)].index)
        if over:
            pos = np.flatnonzero(~flagged[rule.name].astype(bool).to_numpy() & np.isin(row_dates, over))
            out.append(RuleFailure("expect_column_values_to_be_in_set", ",".join(rule.columns), rule.description,
                                   len(pos), over, sample_records(frame.iloc[pos]), pos))
    return out
