"""`cli run` refuses a range it would otherwise remap or crash on (a weekend or holiday end, an
end before the start, half a range) and, with --skip-history, a lake that lacks the look-back:
one clear message, exit code 2, nothing written."""

from pathlib import Path

import pandas as pd
import pytest

from alvh_pipeline import cli
from alvh_pipeline.core.calendar import sessions_between
from alvh_pipeline.partitions import SESSIONS_PER_BACKFILL_RUN


@pytest.mark.parametrize("args, message", [
    (["--start", "2024-03-02", "--end", "2024-03-08"], "2024-03-02 (Saturday) is not an NYSE session; the nearest "
                                                       "sessions are 2024-03-01 and 2024-03-04"),
    (["--start", "2024-03-04", "--end", "2024-03-29"], "2024-03-29 (Friday) is not an NYSE session"),  # Good Friday
    (["--start", "2001-09-11", "--end", "2001-09-20"], "2001-09-11 (Tuesday) is not an NYSE session"),
    (["--start", "2024-03-08", "--end", "2024-03-04"], "--end 2024-03-04 is before --start 2024-03-08"),
    (["--start", "1990-01-02", "--end", "1990-01-05"], "outside the partitions"),
    (["--start", "2024-13-01", "--end", "2024-03-04"], "is not a date"),
])
def test_bad_ranges_are_refused_with_one_message(args, message, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ALVH_LAKE_URI", str(tmp_path / "lake"))
    assert cli.main(["run", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "nothing was run" in err
    assert not (tmp_path / "lake").exists()


def test_half_a_range_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--start", "2024-03-04"])
    assert exc.value.code == 2 and "give both --start and --end" in capsys.readouterr().err


def test_skip_history_on_an_empty_lake_says_what_to_materialize_first(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ALVH_LAKE_URI", str(tmp_path / "lake"))
    assert cli.main(["run", "--start", "2024-03-04", "--end", "2024-03-08", "--skip-history"]) == 2
    err = capsys.readouterr().err
    assert "validated/equity_bars lacks" in err and "materialize `ingest` over" in err
    assert "features/pairs lacks" in err and "materialize `features` over" in err
    assert not Path(tmp_path / "lake").exists()


def test_skip_history_runs_every_layer_over_the_range_only():
    steps = cli.run_plan("2024-03-04", "2024-03-08", skip_history=True)
    assert {(s.start.date().isoformat(), s.end.date().isoformat()) for s in steps} == {("2024-03-04", "2024-03-08")}


def test_day_local_layers_run_in_backfill_sized_chunks_and_books_in_one():
    steps = {s.layer.name: s for s in cli.run_plan("2007-06-01", "2009-06-30")}
    ingest = cli.run_chunks(steps["ingest"])
    days = sessions_between(steps["ingest"].start, steps["ingest"].end)
    assert ingest[0][0] == days[0].strftime("%Y-%m-%d") and ingest[-1][1] == days[-1].strftime("%Y-%m-%d")
    sizes = [len(sessions_between(a, b)) for a, b in ingest]
    assert sum(sizes) == len(days) and max(sizes) == SESSIONS_PER_BACKFILL_RUN  # no session twice, none lost
    assert all(pd.Timestamp(b) < pd.Timestamp(c) for (_, b), (c, _) in zip(ingest[:-1], ingest[1:]))  # in order
    books = steps["books"]
    assert cli.run_chunks(books) == [(books.start.strftime("%Y-%m-%d"), books.end.strftime("%Y-%m-%d"))]


def test_each_planned_run_executes_its_part_of_the_layer(monkeypatch):
    """Attribution's chunks run its partitioned assets, `attribution/reports` its reports; a layer
    without reports runs whole. The selections hold the assets' own checks and nothing else."""
    from alvh_pipeline.definitions import defs
    from alvh_pipeline.layers import layer

    called = []
    monkeypatch.setattr(cli, "run_job", lambda name, first, last, shared, part: called.append((name, part)) or True)
    runs = cli.scheduled_runs(cli.run_plan("2019-06-03", "2019-12-31"))
    for run in runs:
        assert cli.run_planned(run) == (True, None)
    parts = {(name, part) for name, part in called}
    assert parts == {("ingest", "all"), ("features", "all"), ("signals", "all"), ("books", "all"),
                     ("benchmarks", "partitioned"), ("benchmarks", "reports"),
                     ("attribution", "partitioned"), ("attribution", "reports")}
    assert called.count(("attribution", "reports")) == 1 and called[-1] == ("attribution", "reports")

    job = defs.resolve_job_def("attribution")
    nodes = {part: {n.name for n in job.get_subset(
        asset_selection=set(layer("attribution").asset_keys(partitioned=part == "partitioned"))).graph.nodes}
        for part in ("partitioned", "reports")}
    assert any(n.endswith("verdict_check") for n in nodes["reports"])
    assert not any(n.endswith("attribution_check") for n in nodes["reports"])
    assert any(n.endswith("attribution_check") for n in nodes["partitioned"])
    assert not any("verdict" in n or "tearsheet" in n for n in nodes["partitioned"])
    monkeypatch.undo()
    with pytest.raises(ValueError, match="part='report'"):
        cli.run_job("attribution", "2019-06-03", "2019-06-03", part="report")
