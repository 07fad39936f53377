"""The one check-report shape: counts, partitions and sample rows of each failing rule, and the
shared rules (rows every day, finite, bounds, unique keys)."""

import numpy as np
import pandas as pd

from alvh_pipeline.core.check_report import (
    CheckReport,
    RuleFailure,
    finite_columns,
    missing_days,
    unique_keys,
    within_bounds,
)

DAYS = pd.DatetimeIndex(["2024-03-04", "2024-03-05", "2024-03-06"])


def _frame():
    return pd.DataFrame({"date": DAYS.repeat(2), "symbol": ["A", "B"] * 3,
                         "x": [1.0, 2.0, np.nan, 4.0, np.inf, 6.0], "p": [0.1, 0.2, 0.3, 1.5, 0.5, -0.1]})


def test_from_mask_counts_partitions_and_samples_the_offending_rows():
    f = _frame()
    fail = RuleFailure.from_mask("r", "x", "why", f, f["x"] > 3)
    assert fail.rows == 3
    assert fail.partitions == ["2024-03-05", "2024-03-06"]
    assert [s["symbol"] for s in fail.sample] == ["B", "A", "B"] and fail.sample[0]["x"] == 4.0


def test_shared_rules_find_what_is_wrong():
    f = _frame()
    (nonfinite,) = finite_columns(f, ("x",))
    assert nonfinite.rows == 2 and nonfinite.partitions == ["2024-03-05", "2024-03-06"]
    (absent,) = finite_columns(f, ("y",))
    assert absent.rule == "column_present"
    (bounds,) = within_bounds(f, {"p": (0.0, 1.0)})
    assert bounds.rows == 2 and {s["symbol"] for s in bounds.sample} == {"B"}
    assert unique_keys(f, ("date", "symbol")) == []
    (dup,) = unique_keys(pd.concat([f, f.iloc[[0]]]), ("date", "symbol"))
    assert dup.rows == 2 and dup.partitions == ["2024-03-04"]
    (gap,) = missing_days("t", f[f["date"] != DAYS[1]], DAYS)
    assert gap.partitions == ["2024-03-05"] and "1 day" in gap.why
    assert missing_days("t", f, DAYS) == []


def test_report_description_and_renderings():
    ok = CheckReport("features/x", 6)
    assert ok.passed and ok.description == "features/x: all rules passed on 6 rows"
    f = _frame()
    report = CheckReport("raw/t", 6, finite_columns(f, ("x",)) + within_bounds(f, {"p": (0, 1)}), n_rules=9)
    assert not report.passed
    assert report.description.startswith("raw/t: 2 of 9 rules failed: finite on 'x'")
    assert "(+1 more)" in report.description
    assert report.failed_partitions == ["2024-03-05", "2024-03-06"]
    assert "| finite | x | non-finite values | 2 |" in report.failure_table_md()
    assert set(report.samples()) == {"finite:x", "bounds:p"}
    assert len(report.message().splitlines()) == 3
