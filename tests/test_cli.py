"""`cli run` refuses a range it would otherwise remap or crash on (a weekend or holiday end, an
end before the start, half a range) and, with --skip-history, a lake that lacks the look-back:
one clear message, exit code 2, nothing written."""

from pathlib import Path

import pandas as pd
import pytest

from alvh_pipeline import cli
from alvh_pipeline.core.calendar import sessions_between


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


def test_every_layer_runs_in_calendar_years_and_the_stateful_ones_in_order():
    steps = cli.run_plan("2007-06-01", "2009-06-30")
    ingest = next(s for s in steps if s.layer.name == "ingest")
    chunks = cli.run_chunks(ingest)
    days = sessions_between(ingest.start, ingest.end)
    assert chunks[0][0] == days[0].strftime("%Y-%m-%d") and chunks[-1][1] == days[-1].strftime("%Y-%m-%d")
    sizes = [len(sessions_between(a, b)) for a, b in chunks]
    assert sum(sizes) == len(days) and max(sizes) <= 253  # no session twice, none lost, a year at most
    assert all(pd.Timestamp(a).year == pd.Timestamp(b).year for a, b in chunks)
    assert all(pd.Timestamp(b) < pd.Timestamp(c) for (_, b), (c, _) in zip(chunks[:-1], chunks[1:]))  # in order
    runs = cli.scheduled_runs(steps)
    books = [r for r in runs if r.layer == "books"]
    assert len(books) == 3 and all(r.ordered for r in books)  # 2007, 2008, 2009: each from the lake's state
    assert {r.last for r in books} <= {r.last for r in runs if r.layer == "signals"}  # the same year ends


def test_the_look_back_is_planned_per_table():
    """Only what a later layer reads is computed before the range: the vol surface two years back,
    the pair features a year, the features nobody reads before it (baskets, technicals) not at all."""
    from alvh_pipeline.layers import table_starts

    need = table_starts("2007-06-01")
    assert need["features/vol_surface"] < need["features/pairs"] < need["features/fundamentals"] \
        < need["features/baskets"] <= pd.Timestamp("2007-06-01")
    # baskets would start 2007-06-01, the regime's features 2007-05-31: one run, not a one-day run
    assert need["features/baskets"] == need["features/macro_regime"] == need["signals/regime"]
    steps = [s for s in cli.run_plan("2007-06-01", "2009-06-30") if s.layer.name == "features"]
    assert steps[0].tables == ("features/vol_surface",) and steps[-1].tables == ()  # () = every table
    assert steps[-1].start == need["features/baskets"]
    ingest = next(s for s in cli.run_plan("2007-06-01", "2009-06-30") if s.layer.name == "ingest")
    assert ingest.start == min(v for k, v in need.items() if k.startswith("validated/"))


def test_each_planned_run_executes_its_part_of_the_layer(monkeypatch):
    """Attribution's chunks run its partitioned assets, `attribution/reports` its reports; a layer
    without reports runs whole. The selections hold the assets' own checks and nothing else."""
    from alvh_pipeline.definitions import defs
    from alvh_pipeline.layers import layer

    called = []
    monkeypatch.setattr(cli, "run_job",
                        lambda name, first, last, shared, part, tables, **kw: called.append((name, part)) or True)
    runs = cli.scheduled_runs(cli.run_plan("2019-06-03", "2019-12-31"))
    for run in runs:
        assert cli.run_planned(run) == (True, None)
    parts = {(name, part) for name, part in called}
    assert parts == {("ingest", "deliveries"), ("ingest", "gate"), ("features", "all"), ("signals", "all"),
                     ("books", "all"),
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
    # the source's deliveries: raw/* without their gate; its gate: the GE checks and validated/*
    ingest = defs.resolve_job_def("ingest")
    for part in ("deliveries", "gate"):
        keys, checks = cli.selection("ingest", part)
        subset = ingest.get_subset(asset_selection=keys, asset_check_selection=checks)
        nodes[part] = {n.name for n in subset.graph.nodes}
    assert nodes["deliveries"] and all(n.startswith("raw__") and "ge_suite" not in n for n in nodes["deliveries"])
    assert {n for n in nodes["gate"] if n.startswith("raw__")} == {n + "_ge_suite" for n in nodes["deliveries"]}
    assert {n for n in nodes["gate"] if not n.startswith("raw__")} == {
        n.replace("raw__", "validated__") for n in nodes["deliveries"]}
    monkeypatch.undo()
    with pytest.raises(ValueError, match="part='report'"):
        cli.run_job("attribution", "2019-06-03", "2019-06-03", part="report")


def test_a_refused_run_prints_what_failed_and_no_stale_verdict(monkeypatch, tmp_path, capsys):
    """Issue 21.4: when a run fails, `cli run` names the failed run, says the lake's verdict is an
    earlier run's (with its date) and does not print it as if it were this range's answer."""
    from alvh_pipeline.lake import Lake

    lake = Lake(str(tmp_path / "lake"))
    lake.write_document("attribution", "verdict", "verdict.md", b"| claim | OLD VERDICT TEXT |")
    monkeypatch.setenv("ALVH_LAKE_URI", lake.root)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cli, "recover_killed_runs", lambda instance: None)
    monkeypatch.setattr("alvh_pipeline.resources.run_workers", lambda: 1)
    monkeypatch.setattr(cli, "run_planned", lambda run: (not run.layer.startswith("ingest/gate"), None))
    assert cli.main(["run", "--start", "2024-03-04", "--end", "2024-03-08"]) == 1
    out = capsys.readouterr().out
    assert "REFUSED: 1 run(s) failed (ingest/gate " in out, out
    assert "OLD VERDICT TEXT" not in out and "stale" in out and str(pd.Timestamp.now().year) in out

    lake.write_document("attribution", "verdict", "verdict.md", b"| claim | TODAY |")
    monkeypatch.setattr(cli, "run_planned", lambda run: (True, None))
    assert cli.main(["run", "--start", "2024-03-04", "--end", "2024-03-08"]) == 0
    assert "TODAY" in capsys.readouterr().out


@pytest.mark.parametrize("endpoint", [None, "http://127.0.0.1:9"])
def test_an_unreachable_s3_lake_is_one_line_at_once(endpoint, monkeypatch, capsys):
    """Issue 21.6: `ALVH_LAKE_URI=s3://...` whose store does not answer (no endpoint for a private
    store: AWS's host cannot be resolved here; a closed port) stops `cli run` with one line naming
    the lake and the endpoint, within seconds (before: a pyarrow traceback after 21 s of retries)."""
    import time

    monkeypatch.setenv("ALVH_LAKE_URI", "s3://alvh-no-such-bucket/lake")
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    else:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no credential probe of a cloud VM's metadata
    t0 = time.monotonic()
    assert cli.main(["run", "--start", "2024-03-04", "--end", "2024-03-08", "--skip-history"]) == 2
    assert time.monotonic() - t0 < 10
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "s3://alvh-no-such-bucket/lake" in err and (endpoint or "AWS_ENDPOINT_URL is not set") in err, err
