"""Issue 7: a killed run is closed and the run queue moves again.

Runs are executed the way `cli run` executes them (`execute_in_process` on the instance, in a
child process), on a temp DAGSTER_HOME holding the shipped dagster.yaml.example (SQLite,
`max_concurrent_runs: 2`, run monitoring on), then killed with SIGKILL while STARTED.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from waiting import wait_until as _wait

from alvh_pipeline.recovery import HOST_TAG, fail_orphaned_runs, process_alive

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
# what `cli.run_job` does: execute_in_process on DagsterInstance.get(), here on the sleeping test job
RUN_IN_PROCESS = (
    "import sys, dagster as dg; sys.path.insert(0, {here!r}); from sleeper_defs import sleeper; "
    "sleeper.execute_in_process(instance=dg.DagsterInstance.get(), tags={tags!r}, "
    "run_config={{'ops': {{'nap': {{'config': {{'seconds': 120.0}}}}}}}})"
)


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml.example", home / "dagster.yaml")  # what `make install` does
    return home


@pytest.fixture
def procs():
    """Every process group the test starts; all killed at the end, whatever happened."""
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)  # the group: a daemon's code server and run workers
        except ProcessLookupError:
            pass
        p.wait(timeout=10)


def _env(home: Path) -> dict:
    return {**os.environ, "DAGSTER_HOME": str(home)}


def _spawn(procs: list, args: list[str], home: Path, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "wb") if log else subprocess.DEVNULL
    p = subprocess.Popen(args, cwd=ROOT, env=_env(home), stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True)
    procs.append(p)
    return p


def _run_in_process(procs: list, home: Path, tags: dict | None = None) -> subprocess.Popen:
    code = RUN_IN_PROCESS.format(here=str(HERE), tags=tags or {})
    return _spawn(procs, [sys.executable, "-c", code], home)


def _kill9(p: subprocess.Popen) -> None:
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=10)


def _runs_by_pid(instance: dg.DagsterInstance, pids: set[int]) -> dict[int, str]:
    """pid of the process executing each STARTED run (its RUN_START event) -> run id."""
    out = {}
    for rec in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        events = instance.get_records_for_run(rec.dagster_run.run_id, of_type=dg.DagsterEventType.RUN_START).records
        if events and events[0].event_log_entry.dagster_event.pid in pids:
            out[events[0].event_log_entry.dagster_event.pid] = rec.dagster_run.run_id
    return out


def _started(instance: dg.DagsterInstance, ps: list[subprocess.Popen]) -> list[str]:
    """Run ids of the in-process runs of `ps`, in order, once they are all STARTED."""
    found = _wait(lambda: (lambda m: m if len(m) == len(ps) else None)(_runs_by_pid(instance, {p.pid for p in ps})),
                  45, "the in-process runs to be STARTED")
    return [found[p.pid] for p in ps]


def _status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def _failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    recs = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    assert len(recs) == 1
    return recs[0].event_log_entry.dagster_event.message


def test_process_alive_rejects_dead_and_reused_pids():
    assert process_alive(os.getpid())
    # a run that started 50 years ago cannot be executed by this (younger) process: a reused pid
    assert not process_alive(os.getpid(), started_by=time.time() - 3600 * 24 * 365 * 50)
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert not process_alive(p.pid)


@pytest.mark.slow
def test_killed_in_process_run_is_failed_live_and_foreign_runs_kept(home, procs):
    instance = dg.DagsterInstance.from_config(str(home))
    victim = _run_in_process(procs, home)
    survivor = _run_in_process(procs, home)
    foreign = _run_in_process(procs, home, tags={HOST_TAG: "another-host"})
    victim_id, survivor_id, foreign_id = _started(instance, [victim, survivor, foreign])

    _kill9(victim)
    _kill9(foreign)
    time.sleep(1)
    # the bug: nothing records the end of a killed in-process run; it holds a queue slot forever
    assert _status(instance, victim_id) == dg.DagsterRunStatus.STARTED

    assert fail_orphaned_runs(instance) == [victim_id]
    assert _status(instance, victim_id) == dg.DagsterRunStatus.FAILURE
    assert f"pid {victim.pid}" in _failure_message(instance, victim_id)
    assert _status(instance, survivor_id) == dg.DagsterRunStatus.STARTED  # alive: never touched
    assert _status(instance, foreign_id) == dg.DagsterRunStatus.STARTED  # another host's pid means nothing here
    assert fail_orphaned_runs(instance) == []


@pytest.mark.slow
def test_daemon_queue_moves_once_killed_runs_are_closed(home, procs, tmp_path):
    instance = dg.DagsterInstance.from_config(str(home))
    assert "MONITORING" in instance.get_required_daemon_types()  # the shipped yaml turns it on
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - python_file:\n      relative_path: {HERE / 'sleeper_defs.py'}\n"
                         f"      working_directory: {ROOT}\n")
    # `make ui`'s daemon, on a location holding the sleeping job and the recovery sensor (1 s interval)
    _spawn(procs, [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], home, tmp_path / "daemon.log")
    a, b = _run_in_process(procs, home), _run_in_process(procs, home)
    a_id, b_id = _started(instance, [a, b])  # both slots of max_concurrent_runs: 2 held

    launch = subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", str(workspace), "-j", "sleeper"],
                            cwd=ROOT, env=_env(home), capture_output=True, timeout=60)
    assert launch.returncode == 0, launch.stderr.decode()[-2000:]
    queued = instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
    assert len(queued) == 1
    q_id = queued[0].dagster_run.run_id

    # the daemon is up once the sensor has ticked; then one dequeue interval (5 s) and more:
    # the queued run waits, and the sensor leaves the two live runs alone
    _wait(lambda: any(instance.get_ticks(s.instigator_origin_id, s.selector_id)
                      for s in instance.all_instigator_state()), 45, "the daemon's first sensor tick")
    time.sleep(7)
    assert _status(instance, q_id) == dg.DagsterRunStatus.QUEUED
    assert {_status(instance, a_id), _status(instance, b_id)} == {dg.DagsterRunStatus.STARTED}

    _kill9(a)
    _kill9(b)
    _wait(lambda: _status(instance, q_id) == dg.DagsterRunStatus.SUCCESS, 45,
          f"the queued run to complete (daemon log: {tmp_path / 'daemon.log'})")
    for run_id, p in ((a_id, a), (b_id, b)):
        assert _status(instance, run_id) == dg.DagsterRunStatus.FAILURE
        assert f"pid {p.pid}" in _failure_message(instance, run_id)
    # the queued run left the queue only once a killed run was closed: the first one closed frees the
    # slot it takes (the sensor closes the two one after the other, and the queue may pass in between)
    closed_at = min(instance.get_records_for_run(r, of_type=dg.DagsterEventType.RUN_FAILURE).records[0]
                    .event_log_entry.timestamp for r in (a_id, b_id))
    launched = instance.get_records_for_run(q_id, of_type=dg.DagsterEventType.RUN_STARTING).records
    assert launched[0].event_log_entry.timestamp >= closed_at  # written when the queue daemon launches it


@pytest.mark.slow
def test_run_job_used_as_a_library_first_closes_a_killed_run(home, procs, tmp_path, monkeypatch):
    """Issue 21.7: `cli.run_job` called directly (not through `cli run`) after a killed run closes
    it before its own run, instead of leaving it STARTED until the sensor's next tick."""
    from alvh_pipeline.cli import run_job

    instance = dg.DagsterInstance.from_config(str(home))
    victim = _run_in_process(procs, home)
    [victim_id] = _started(instance, [victim])
    _kill9(victim)
    for name, value in {"DAGSTER_HOME": str(home), "ALVH_LAKE_URI": str(tmp_path / "lake"),
                        "ALVH_SOURCE": "synthetic"}.items():
        monkeypatch.setenv(name, value)
    assert run_job("ingest", "2024-03-04", "2024-03-04", part="deliveries")
    assert _status(instance, victim_id) == dg.DagsterRunStatus.FAILURE
    assert f"pid {victim.pid}" in _failure_message(instance, victim_id)
