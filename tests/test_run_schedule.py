"""`run_schedule`: which runs of a plan wait for which, and running them on worker processes
without ever starting a run before what it reads is written."""

import json
import os
import time
from pathlib import Path

import pandas as pd

from alvh_pipeline.cli import run_plan, scheduled_runs
from alvh_pipeline.layers import REPORTS_RUN
from alvh_pipeline.run_schedule import PlannedRun, execute, oldest_first, planned_runs, prerequisites

LOG = "ALVH_TEST_SCHEDULE_LOG"


def _toy() -> list[PlannedRun]:
    return planned_runs([
        ("ingest", True, [("2020-01-02", "2020-06-30"), ("2020-07-01", "2020-12-31"), ("2021-01-04", "2021-06-30")]),
        ("features", False, [("2020-03-02", "2020-08-31"), ("2020-09-01", "2021-06-30")]),
        ("books", True, [("2020-09-01", "2021-06-30")]),
    ])


def test_a_run_waits_for_the_runs_before_it_that_start_by_its_last_day():
    ingest1, ingest2, ingest3, feat1, feat2, books = _toy()
    assert prerequisites(ingest1, _toy()) == []
    assert prerequisites(ingest3, _toy()) == [ingest1, ingest2]  # ordered: the gate reads the sessions before
    assert prerequisites(feat1, _toy()) == [ingest1, ingest2]  # reads through 2020-08-31, nothing after
    assert prerequisites(feat2, _toy()) == [ingest1, ingest2, ingest3]  # not feat1: features runs are day-local
    assert prerequisites(books, _toy()) == [feat1, feat2]


def test_the_cli_plan_waits_only_for_the_years_a_run_reads():
    """The source's deliveries go side by side, its gate after the deliveries it compares with;
    features and signals wait for the years they read, the books for their year and the books
    before; attribution for the books, not for the benchmarks."""
    steps = run_plan("2017-06-01", "2019-12-31")
    runs = scheduled_runs(steps)
    by_layer: dict[str, list[PlannedRun]] = {}
    for r in runs:
        by_layer.setdefault(r.layer, []).append(r)
    deliveries, gates = by_layer["ingest/deliveries"], by_layer["ingest/gate"]
    assert len(deliveries) > 2 and all(prerequisites(r, runs) == [] for r in deliveries)
    for gate in gates:
        assert set(prerequisites(gate, runs)) == {d for d in deliveries if d.first <= gate.last}
    first_features = min(by_layer["features"], key=lambda r: r.first)
    assert deliveries[-1] not in prerequisites(first_features, runs)  # can overlap the last years of ingest
    first_signals = min(by_layer["signals"], key=lambda r: r.first)
    assert by_layer["features"][-1] not in prerequisites(first_signals, runs)
    books = by_layer["books"]
    assert all(r.ordered for r in books) and len(books) == 3  # 2017, 2018, 2019
    assert books[0] in prerequisites(books[1], runs) and by_layer["signals"][-1] not in prerequisites(books[0], runs)
    assert not any(r.layer.startswith("benchmarks") for a in by_layer["attribution"] for r in prerequisites(a, runs))
    # every run's range ends on or after each of its prerequisites' starts and the plan covers the sessions
    assert all(p.first <= r.last for r in runs for p in prerequisites(r, runs))
    assert runs[-1].last == "2019-12-31" and pd.Timestamp(runs[0].first) < pd.Timestamp("2017-01-01")


def test_a_layers_reports_run_once_after_all_its_partitioned_runs_which_go_side_by_side():
    runs = scheduled_runs(run_plan("2017-06-01", "2019-12-31"))
    attribution = [r for r in runs if r.layer == "attribution"]
    reports = [r for r in runs if r.layer == "attribution" + REPORTS_RUN]
    assert len(attribution) >= 3 and not any(r.ordered for r in attribution)
    benchmarks = [b for b in runs if b.layer == "benchmarks"]
    benchmark_reports = [b for b in runs if b.layer == "benchmarks" + REPORTS_RUN]
    assert len(benchmarks) == 3 and all(b.ordered for b in benchmarks)  # stateful: in order
    assert prerequisites(benchmark_reports[0], runs) == benchmarks
    assert len(reports) == 1 and set(prerequisites(reports[0], runs)) == set(attribution) | set(benchmark_reports)
    assert (reports[0].first, reports[0].last) == (attribution[0].first, attribution[-1].last)
    assert [r.layer for r in runs if r.layer.endswith(REPORTS_RUN)] == ["benchmarks" + REPORTS_RUN,
                                                                     "attribution" + REPORTS_RUN]


def test_oldest_first_takes_the_oldest_sessions_through_every_layer():
    runs = scheduled_runs(run_plan("2017-06-01", "2019-12-31"))
    order = sorted(runs, key=oldest_first)
    first_books = next(i for i, r in enumerate(order) if r.layer == "books")
    last_delivery = max(i for i, r in enumerate(order) if r.layer == "ingest/deliveries")
    assert first_books < last_delivery  # a year's books before the last year's deliveries


SIDE_BY_SIDE = ("features 2020-03-02..2020-08-31", "ingest 2021-01-04..2021-06-30")  # both ready after ingest 2


def record(run: PlannedRun) -> tuple[bool, str]:
    """A run that takes a moment and logs when it started and ended (in a worker process). With two
    workers, the two runs of SIDE_BY_SIDE each wait (up to a minute) until the other has started."""
    started = time.time()
    time.sleep(0.1)
    log_dir = Path(os.environ[LOG]).parent
    if run.label in SIDE_BY_SIDE and os.environ.get(LOG + "_MODE") == "PAIR":
        (log_dir / f"{run.label}.started").touch()
        other = next(label for label in SIDE_BY_SIDE if label != run.label)
        deadline = time.time() + 60
        while not (log_dir / f"{other}.started").exists() and time.time() < deadline:
            time.sleep(0.05)
    with open(os.environ[LOG], "a") as log:
        log.write(json.dumps({"run": run.label, "start": started, "end": time.time(), "pid": os.getpid()}) + "\n")
    return not run.label.startswith("features 2020-03-02") or "FAIL" not in os.environ.get(LOG + "_MODE", ""), run.label


def _log(path: Path) -> dict[str, dict]:
    return {e["run"]: e for e in map(json.loads, path.read_text().splitlines())}


def test_two_workers_overlap_runs_and_never_start_one_before_its_prerequisites(tmp_path, monkeypatch):
    monkeypatch.setenv(LOG, str(tmp_path / "log.jsonl"))
    monkeypatch.setenv(LOG + "_MODE", "PAIR")
    runs = _toy()
    done = execute(runs, record, workers=2)
    assert set(done) == set(runs) and all(ok for ok, _ in done.values())
    log = _log(tmp_path / "log.jsonl")
    for r in runs:
        for p in prerequisites(r, runs):
            assert log[p.label]["end"] <= log[r.label]["start"], (p.label, r.label)
    assert len({e["pid"] for e in log.values()}) == 2  # two worker processes, neither of them this one
    assert os.getpid() not in {e["pid"] for e in log.values()}
    feat1, ingest3 = (log[label] for label in SIDE_BY_SIDE)
    assert feat1["start"] < ingest3["end"] and ingest3["start"] < feat1["end"]  # side by side
    assert max(e["end"] - e["start"] for e in log.values()) < 50  # neither waited out the minute


def test_one_worker_runs_in_this_process_in_lineage_order(tmp_path, monkeypatch):
    monkeypatch.setenv(LOG, str(tmp_path / "log.jsonl"))
    done = execute(_toy(), record, workers=1)
    log = _log(tmp_path / "log.jsonl")
    assert {e["pid"] for e in log.values()} == {os.getpid()}
    assert list(done) == _toy()  # ready runs go earliest layer first


def test_after_a_failed_run_nothing_new_is_launched(tmp_path, monkeypatch):
    monkeypatch.setenv(LOG, str(tmp_path / "log.jsonl"))
    monkeypatch.setenv(LOG + "_MODE", "FAIL")
    done = execute(_toy(), record, workers=1)
    assert [r.label for r in done] == ["ingest 2020-01-02..2020-06-30", "ingest 2020-07-01..2020-12-31",
                                       "ingest 2021-01-04..2021-06-30", "features 2020-03-02..2020-08-31"]
    assert done[_toy()[3]][0] is False
