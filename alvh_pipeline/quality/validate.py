"""Run a table's GE suite over one or many partitions and turn the GE result into a report:
which expectations failed, on which column, how many rows, sample rows, which partitions, and the
offending rows with a `reason` for quarantine. No Dagster import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alvh_pipeline.quality.rules import PREVIOUS_TABLES, RuleContext, add_rule_flags, rules_for
from alvh_pipeline.quality.suites import suite_runner

SAMPLE_ROWS = 5
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
}


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
class Failure:
    expectation: str
    column: str
    why: str
    unexpected_count: int
    partitions: list[str]
    sample: list[dict] = field(default_factory=list)
    row_index: np.ndarray | None = None  # positions of offending rows; None = whole partition(s)
    observed: str | None = None

    def line(self) -> str:
        obs = f", observed {self.observed}" if self.observed else ""
        return (f"{self.expectation} on column '{self.column}': {self.why} "
                f"({self.unexpected_count} rows{obs}; partitions {', '.join(self.partitions[:5])}"
                f"{'…' if len(self.partitions) > 5 else ''})")


@dataclass
class ValidationReport:
    table: str
    partitions: list[str]
    n_rows: int
    n_expectations: int
    failures: list[Failure]
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
            reasons[sel] = reasons[sel] + f"{f.expectation}({f.column}): {f.why}; "
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


def _json_safe(rows: pd.DataFrame) -> list[dict]:
    return json.loads(rows.head(SAMPLE_ROWS).to_json(orient="records", date_format="iso"))


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

    failures: list[Failure] = _column_set_failures(result, frame, partitions)
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
            failures.append(Failure(cfg.type, column, why, len(frame), list(partitions), [],
                                    None, None if observed is None else str(observed)[:200]))
            continue
        pos = np.asarray([i for i in idx if isinstance(i, (int, np.integer))], dtype=np.int64)
        parts = sorted(set(row_dates[pos].tolist())) if len(pos) else list(partitions)
        failures.append(Failure(cfg.type, column, why, int(res.get("unexpected_count", len(pos))),
                                parts, _json_safe(frame.iloc[pos]), pos))

    by_name = {r.name: r for r in rules}
    failures += [Failure("rule_error", ",".join(by_name[n].columns), f"rule {n} could not be computed ({err})",
                         len(frame), list(partitions)) for n, err in rule_errors.items()]
    failures += _per_partition_failures(table, frame, flagged, partitions, rules, row_dates,
                                        _previous_counts(history, table))
    return ValidationReport(table, list(partitions), len(frame), len(result.results), failures, frame, row_dates)


def _column_set_failures(result, frame: pd.DataFrame, partitions: list[str]) -> list[Failure]:
    """One failure per missing or unexpected contract column, from the column-set expectation."""
    out = []
    for r in result.results:
        if r.expectation_config.type != "expect_table_columns_to_match_set" or r.success:
            continue
        mismatched = ((r.result or {}).get("details") or {}).get("mismatched") or {}
        for col in mismatched.get("missing", []):
            if not col.startswith("_"):  # a rule flag is absent only because its input column is
                out.append(Failure(r.expectation_config.type, col, "missing column", len(frame), list(partitions)))
        for col in mismatched.get("unexpected", []):
            out.append(Failure(r.expectation_config.type, col, "column not in the contract (renamed?)", len(frame),
                               list(partitions)))
    return out


# Tables with a stable set of rows per day: a day with far fewer rows than the session before is
# incomplete (a truncated delivery), not a smaller market.
COMPLETENESS_TABLES = ("equity_bars", "fundamentals", "index_levels", "vix_futures", "breadth", "rates")
MIN_SHARE_OF_PREVIOUS = 0.75


def _distinct_keys(table: str, frame: pd.DataFrame, row_dates: np.ndarray) -> pd.Series:
    """Distinct contract keys per partition (rows when a key column is missing)."""
    from alvh_pipeline.schemas import CONTRACTS

    keys = [k for k in CONTRACTS[table].keys if k != "date"]
    if not all(k in frame for k in keys):
        return pd.Series(row_dates).value_counts()
    tagged = frame[keys].astype(str).assign(_p=row_dates)
    return tagged.drop_duplicates().groupby("_p").size()


def _previous_counts(history: pd.DataFrame | None, table: str) -> int | None:
    if history is None or table not in COMPLETENESS_TABLES or not len(history):
        return None
    return int(_distinct_keys(table, history, _partition_of(history)).max())


def _per_partition_failures(table, frame, flagged, partitions, rules, row_dates, previous_count) -> list[Failure]:
    """Judged per partition, whatever the batch: an empty day, a day with far fewer rows than the
    session before it, and share-of-rows (`mostly`) rules such as stale quotes."""
    out = []
    counts = pd.Series(row_dates).value_counts()
    empty = [p for p in partitions if counts.get(p, 0) == 0]
    if empty and len(frame):  # an all-empty batch is already reported by the row-count expectation
        out.append(Failure("expect_table_row_count_to_be_between", "*", "partition is empty", 0, empty))
    if table in COMPLETENESS_TABLES:
        keys = _distinct_keys(table, frame, row_dates)  # a duplicated row is not a bigger delivery
        for prev, p in zip([previous_count, *[keys.get(q, 0) for q in partitions[:-1]]], partitions):
            n = int(keys.get(p, 0))
            if prev and 0 < n < MIN_SHARE_OF_PREVIOUS * prev:
                out.append(Failure("expect_table_row_count_to_be_between", "*",
                                   f"incomplete partition: {n} rows, the session before had {prev}", n, [p]))
    for rule in rules:
        if rule.mostly >= 1.0 or rule.name not in flagged:
            continue
        share_bad = (~flagged[rule.name].astype(bool)).groupby(row_dates).mean()
        over = sorted(share_bad[share_bad > 1.0 - rule.mostly].index)
        if over:
            pos = np.flatnonzero(~flagged[rule.name].astype(bool).to_numpy() & np.isin(row_dates, over))
            out.append(Failure("expect_column_values_to_be_in_set", ",".join(rule.columns), rule.description,
                               len(pos), over, _json_safe(frame.iloc[pos]), pos))
    return out
