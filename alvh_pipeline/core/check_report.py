"""One report shape for every gate (GE suites, feature, signal and book checks): passed, a
one-line description, per-rule failure counts, failing partitions and a few sample offending
rows. Rule functions build it with `RuleFailure.from_mask`; the Dagster shell renders it the same
way for every check (`assets/_shell.check_result`). No Dagster import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SAMPLE_ROWS = 5


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as the start of a formula


def inert_text(value: object) -> object:
    """A text cell as the project shows it (sample rows in the UI, CSV and HTML it writes): one
    that starts like a spreadsheet formula (`=HYPERLINK(...)`, `@SUM`) gets a leading apostrophe,
    so copying or opening it never evaluates it (OWASP's CSV-injection rule); anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def sample_records(rows: pd.DataFrame, n: int = SAMPLE_ROWS) -> list[dict]:
    """The first `n` rows as JSON-safe records (dates as ISO strings, NaN as null), text made inert."""
    records = json.loads(rows.head(n).to_json(orient="records", date_format="iso"))
    return [{k: inert_text(v) for k, v in r.items()} for r in records]


def _partitions_of(rows: pd.DataFrame) -> list[str]:
    if "date" not in rows or not len(rows):
        return []
    return sorted(set(pd.to_datetime(rows["date"], errors="coerce").dt.strftime("%Y-%m-%d").dropna()))


@dataclass
class RuleFailure:
    rule: str  # short rule name, e.g. "finite", "bounds", "expect_column_values_to_not_be_null"
    column: str  # the column(s) it is about, "*" for the whole table
    why: str  # what is wrong, in words
    rows: int  # offending rows (0 when the failure is about absent rows, e.g. a missing day)
    partitions: list[str] = field(default_factory=list)
    sample: list[dict] = field(default_factory=list)
    row_index: np.ndarray | None = None  # positions of the offending rows in the frame checked; None: whole partitions
    observed: str | None = None  # what the rule saw, where that says more than the count (a GE observed value)

    @classmethod
    def from_mask(cls, rule: str, column: str, why: str, frame: pd.DataFrame, bad) -> RuleFailure:
        """A failure for the rows of `frame` where `bad` is True: count, partitions, samples."""
        bad = np.asarray(bad, dtype=bool)
        rows = frame.loc[bad] if len(frame) else frame
        return cls(rule, column, why, int(bad.sum()), _partitions_of(rows), sample_records(rows))

    def line(self) -> str:
        parts = ", ".join(self.partitions[:5]) + ("…" if len(self.partitions) > 5 else "")
        where = f"; partitions {parts}" if parts else ""
        seen = f", observed {self.observed}" if self.observed else ""
        return f"{self.rule} on '{self.column}': {self.why} ({self.rows} rows{seen}{where})"


@dataclass
class CheckReport:
    subject: str  # "raw/equity_bars", "features/pairs", ...
    n_rows: int  # rows checked
    failures: list[RuleFailure] = field(default_factory=list)
    n_rules: int | None = None  # rules evaluated, where the gate counts them (GE expectations)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failed_partitions(self) -> list[str]:
        return sorted({p for f in self.failures for p in f.partitions})

    @property
    def description(self) -> str:
        """One line: what passed, or how many rules failed and the first one."""
        rules = f"{self.n_rules} rules" if self.n_rules is not None else "all rules"
        if self.passed:
            return f"{self.subject}: {rules} passed on {self.n_rows} rows"
        more = f" (+{len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        of = f" of {self.n_rules}" if self.n_rules is not None else ""
        return f"{self.subject}: {len(self.failures)}{of} rules failed: {self.failures[0].line()}{more}"

    def message(self) -> str:
        """The description plus one line per failure (for logs and exceptions)."""
        return "\n".join([self.description, *("  - " + f.line() for f in self.failures)])

    def failure_table_md(self) -> str:
        rows = ["| rule | column | why | rows | partitions |", "|---|---|---|---|---|"]
        for f in self.failures:
            parts = ", ".join(f.partitions[:5]) + ("…" if len(f.partitions) > 5 else "")
            rows.append(f"| {f.rule} | {f.column} | {f.why} | {f.rows} | {parts} |")
        return "\n".join(rows)

    def samples(self) -> dict[str, list[dict]]:
        return {f"{f.rule}:{f.column}": f.sample for f in self.failures if f.sample}


def missing_days(subject: str, frame: pd.DataFrame, dates: pd.DatetimeIndex, hint: str = "") -> list[RuleFailure]:
    """A failure naming the days of `dates` without any row in `frame` (empty list if none)."""
    # distinct days first: a pairs frame holds ~1 million rows, a set of their Timestamps cost seconds
    have = np.unique(pd.to_datetime(frame["date"]).to_numpy("datetime64[D]")) if len(frame) else []
    days = pd.DatetimeIndex(dates)
    absent = ~np.isin(days.to_numpy("datetime64[D]"), have) | (days != days.normalize())
    missing = [d.strftime("%Y-%m-%d") for d in days[absent]]
    if not missing:
        return []
    return [RuleFailure("rows_every_day", "date", f"no {subject} rows for {len(missing)} day(s){hint}", 0, missing)]


def finite_columns(frame: pd.DataFrame, columns) -> list[RuleFailure]:
    """One failure per column with non-finite values (or per absent column)."""
    out = []
    for col in columns:
        if col not in frame:
            out.append(RuleFailure("column_present", col, "column missing", len(frame)))
            continue
        bad = ~np.isfinite(pd.to_numeric(frame[col], errors="coerce").to_numpy(float))
        if bad.any():
            out.append(RuleFailure.from_mask("finite", col, "non-finite values", frame, bad))
    return out


def within_bounds(frame: pd.DataFrame, bounds: dict[str, tuple[float, float]]) -> list[RuleFailure]:
    out = []
    for col, (lo, hi) in bounds.items():
        if col not in frame:
            continue
        v = pd.to_numeric(frame[col], errors="coerce")
        bad = ((v < lo) | (v > hi)).to_numpy()
        if bad.any():
            out.append(RuleFailure.from_mask("bounds", col, f"values outside [{lo}, {hi}]", frame, bad))
    return out


def unique_keys(frame: pd.DataFrame, keys) -> list[RuleFailure]:
    if not len(frame):
        return []
    dup = frame.duplicated(list(keys), keep=False).to_numpy()
    if not dup.any():
        return []
    return [RuleFailure.from_mask("unique_keys", ",".join(keys), "duplicated keys", frame, dup)]
