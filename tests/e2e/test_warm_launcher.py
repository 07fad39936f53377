"""The warm run launcher (alvh_pipeline/launcher.py), through `dagster-daemon` on the shipped
dagster.yaml.example: a queued run starts as a fork of the daemon's warm process (Dagster, the
project and Great Expectations already imported), is canceled by `terminate`, and goes the default
way (a fresh interpreter from the code server) once the project's source changed, after which a new
warm process takes over. The warm process ends with the daemon."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from waiting import wait_until as _wait

from alvh_pipeline.launcher import PACKAGE, WORKER_PID_TAG

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _warm_processes(daemon_pid: int) -> list[int]:
    """The daemon's warm processes (its children running `-m alvh_pipeline.launcher`): not another
    test's daemon's."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == daemon_pid and b"alvh_pipeline.launcher" in cmd and b"-m" in cmd:
                out.append(int(entry))
    return out


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """One daemon for the module's tests, in order: the last one stops it."""
    tmp_path = tmp_path_factory.mktemp("warm")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml.example").read_text())  # what `make install` does
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - python_file:\n      relative_path: {HERE / 'warm_defs.py'}\n"
                         f"      working_directory: {ROOT}\n")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    proc = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], cwd=ROOT, env=env,
                            stdout=open(tmp_path / "daemon.log", "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield dg.DagsterInstance.from_config(str(home)), workspace, env, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _launch(instance, workspace, env, seconds: float = 0.0) -> str:
    known = {r.run_id for r in instance.get_runs()}
    out = subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", str(workspace), "-j", "whereabouts",
                          "--config-json", f'{{"ops": {{"where": {{"config": {{"seconds": {seconds}}}}}}}}}'],
                         cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    [run_id] = [r.run_id for r in instance.get_runs() if r.run_id not in known]
    return run_id


def _finished(instance, run_id: str, timeout: float = 90) -> dg.DagsterRun:
    return _wait(lambda: (lambda r: r if r.is_finished else None)(instance.get_run_by_id(run_id)), timeout,
                 f"run {run_id} to finish")


def _where(instance, run_id: str) -> dict:
    [rec] = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_OUTPUT).records
    return {k: v.value for k, v in rec.event_log_entry.dagster_event.step_output_data.metadata.items()}


def _run_start_pid(instance, run_id: str) -> int:
    [rec] = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START).records
    return rec.event_log_entry.dagster_event.pid


def _warm_run(instance, workspace, env) -> str:
    """Launch runs until one starts in the warm process (it warms for ~10 s after the daemon starts)."""
    def attempt():
        run_id = _launch(instance, workspace, env)
        run = _finished(instance, run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        return run_id if WORKER_PID_TAG in run.tags else None

    return _wait(attempt, 120, "a run launched from the warm process")


def test_runs_start_as_forks_of_the_warm_process(daemon):
    instance, workspace, env, proc = daemon
    run_id = _warm_run(instance, workspace, env)
    run = instance.get_run_by_id(run_id)
    where = _where(instance, run_id)
    [warm] = _warm_processes(proc.pid)
    # the run worker is the fork: it wrote RUN_START, ran the op, and its parent is the warm process
    assert int(run.tags[WORKER_PID_TAG]) == _run_start_pid(instance, run_id) == where["pid"]
    assert where["ppid"] == warm
    # what a fresh interpreter would import first was there before the run's first step
    assert where["alvh_pipeline.definitions"] == "True" and where["great_expectations"] == "True"


def test_terminate_cancels_a_forked_run(daemon):
    instance, workspace, env, _ = daemon
    _warm_run(instance, workspace, env)
    run_id = _launch(instance, workspace, env, seconds=120.0)
    _wait(lambda: instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED, 60, "the long run to start")
    assert WORKER_PID_TAG in instance.get_run_by_id(run_id).tags
    assert instance.run_launcher.terminate(run_id)
    assert _finished(instance, run_id, timeout=60).status == dg.DagsterRunStatus.CANCELED


def test_a_changed_source_is_never_run_from_the_warm_process(daemon):
    instance, workspace, env, proc = daemon
    _warm_run(instance, workspace, env)
    [old] = _warm_processes(proc.pid)
    touched = PACKAGE / "processes.py"
    st = touched.stat()
    try:
        os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # as an edit would leave it
        run_id = _launch(instance, workspace, env)
        run = _finished(instance, run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert WORKER_PID_TAG not in run.tags  # the code server spawned it: a fresh import of the source
        assert _where(instance, run_id)["great_expectations"] == "False"
        _wait(lambda: old not in _warm_processes(proc.pid), 30, "the stale warm process to end")
        # a new warm process, warmed on the source as it now is, takes the next runs
        run_id = _warm_run(instance, workspace, env)
        assert _where(instance, run_id)["ppid"] in _warm_processes(proc.pid)
        assert _where(instance, run_id)["ppid"] != old
    finally:
        os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_the_warm_process_ends_with_the_daemon(daemon):
    _, _, _, proc = daemon
    warm = _wait(lambda: _warm_processes(proc.pid), 60, "the daemon's warm process")
    os.killpg(proc.pid, signal.SIGTERM)  # Dagster's clean shutdown: the warm process's pipe closes
    proc.wait(timeout=60)
    _wait(lambda: not any(Path(f"/proc/{p}").exists() for p in warm), 30, "the warm process to end with the daemon")
