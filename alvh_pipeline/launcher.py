"""The embedded instance's run launcher: a launched run starts in a fork of a warm process.

Why: Dagster's `DefaultRunLauncher` asks the code server to start each run, and the code server
spawns a new interpreter that imports Dagster (~2.8 s), loads the project's definitions (~1.8 s)
and, at the run's first gate, Great Expectations (~2.6 s): about 7 s of the nightly's ~26 s from
the schedule's tick to the verdict, before any work (`bench/nightly.py`). Here the daemon keeps one
warm process, `python -m alvh_pipeline.launcher`, that has imported all of that once; each run is a
fork of it, which then runs what `dagster api execute_run` runs (`_execute_run_command_body`: the
run's code origin, RUN_START with the fork's pid, every step, the run's end).

The warm process is started with the daemon (`WarmQueuedRunCoordinator`, the queue daemon's
coordinator, asks for it) and is ready ~10 s later. A run goes the default way (the code server
spawns it, as before) when
- the warm process is not ready (yet), or is gone;
- the project's source changed since it was warmed: it would run the old code. It is replaced in
  the background, and the default way imports from disk;
- the run's code origin names another Python than the warm process's.

The fork is the run worker: its pid is in the run's RUN_START event, so the orphaned-runs sensor
(`recovery.py`) closes its run if it dies, and `terminate` sends it SIGINT, which Dagster turns into
a canceled run, as the code server's cancel does. Its output goes where the daemon's goes. The
warm process holds ~0.4 GB while the daemon runs and ends with it (its request pipe closes).

Selected in `dagster.yaml.example`; `deploy/` keeps Dagster's launchers (k8s, one host per run).
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from dagster._core.launcher import DefaultRunLauncher, LaunchRunContext
from dagster._core.run_coordinator import QueuedRunCoordinator

PACKAGE = Path(__file__).resolve().parent
WORKER_PID_TAG = "alvh/run_worker_pid"
REPLY_TIMEOUT_S = 30.0  # a fork and its reply take milliseconds; a worker this slow is replaced


def source_fingerprint() -> str:
    """The project's source as the warm process imported it: every module's path, size and mtime."""
    digest = hashlib.sha1()
    for path in sorted(PACKAGE.rglob("*.py")):
        st = path.stat()
        digest.update(f"{path}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def in_daemon_process() -> bool:
    """`dagster-daemon run`, or the daemon `dagster dev` starts (`python -m dagster._daemon`)."""
    main = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return main.name == "dagster-daemon" or main.parent.name == "_daemon"


# ---- the warm process (python -m alvh_pipeline.launcher REQUEST_FD REPLY_FD) ----------------------

def warm() -> None:
    """What every run imports: Dagster's run body, the project's definitions and every module of
    the project (most are imported at a step's first use), Great Expectations."""
    import importlib
    import pkgutil

    import dagster._cli.api  # noqa: F401 - the run body

    import alvh_pipeline
    from alvh_pipeline.quality.suites import _gx

    for module in pkgutil.walk_packages(alvh_pipeline.__path__, "alvh_pipeline."):
        try:
            importlib.import_module(module.name)
        except Exception:  # noqa: BLE001 - an optional extra's module (postgres, celery) without the extra:
            pass  # a run that needs it imports it (and fails) as it would in a fresh interpreter
    _gx()


def execute_run(run_id: str, instance_ref: str) -> int:
    """In the fork: the run, as `dagster api execute_run` executes it; its exit code."""
    import dagster as dg
    from dagster._cli.api import _execute_run_command_body
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import deserialize_value
    from dagster._utils.interrupts import capture_interrupts

    with capture_interrupts(), dg.DagsterInstance.from_ref(deserialize_value(instance_ref, InstanceRef)) as instance:
        return _execute_run_command_body(run_id, instance, lambda _event: None, set_exit_code_on_failure=True)


def _reap(_signum: int, _frame: Any) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _start_run(request: Mapping[str, str], pipes: tuple[IO, ...]) -> None:
    """The fork's life: never returns."""
    code = 1
    try:
        for pipe in pipes:
            pipe.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # a run waits for its own subprocesses
        signal.signal(signal.SIGINT, signal.default_int_handler)
        code = execute_run(request["run_id"], request["instance_ref"])
    except BaseException:  # noqa: BLE001 - the run's failure is in its event log; the process must end here
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(request_fd: int, reply_fd: int) -> None:
    requests, replies = os.fdopen(request_fd, "r"), os.fdopen(reply_fd, "w", buffering=1)
    fingerprint = source_fingerprint()  # before the imports: a change during them counts as a change
    warm()
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C ends the daemon, whose closed pipe ends this
    replies.write(json.dumps({"ready": True, "executable": sys.executable}) + "\n")
    for line in requests:  # until the daemon closes the pipe
        request = json.loads(line)
        if source_fingerprint() != fingerprint:
            replies.write(json.dumps({"stale": True}) + "\n")
            return
        pid = os.fork()
        if pid == 0:
            _start_run(request, (requests, replies))
        replies.write(json.dumps({"pid": pid}) + "\n")


# ---- the daemon's side ----------------------------------------------------------------------------

class WarmWorker:
    """The daemon's handle on its warm process: started here, ready once its imports are done."""

    def __init__(self) -> None:
        request_r, self._request_w = os.pipe()
        self._reply_r, reply_w = os.pipe()
        self.process = subprocess.Popen([sys.executable, "-m", __name__, str(request_r), str(reply_w)],
                                        pass_fds=(request_r, reply_w), stdin=subprocess.DEVNULL)
        os.close(request_r)
        os.close(reply_w)
        self._requests = os.fdopen(self._request_w, "w", buffering=1)
        self._replies = os.fdopen(self._reply_r, "r")
        self.executable: str | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._await_ready, name="alvh-warm-worker", daemon=True).start()

    def _await_ready(self) -> None:
        try:
            hello = json.loads(self._replies.readline() or "{}")
        except (OSError, ValueError):
            return
        if hello.get("ready"):
            self.executable = hello["executable"]
            self._ready.set()

    def ready(self) -> bool:
        return self._ready.is_set() and self.process.poll() is None

    def fork(self, run_id: str, instance_ref: str) -> int | None:
        """The pid of a fork running `run_id`; None if the worker is stale or does not answer."""
        try:
            self._requests.write(json.dumps({"run_id": run_id, "instance_ref": instance_ref}) + "\n")
            if not select.select([self._replies], [], [], REPLY_TIMEOUT_S)[0]:
                return None
            reply = json.loads(self._replies.readline() or "{}")
        except (OSError, ValueError):
            return None
        return int(reply["pid"]) if "pid" in reply else None

    def close(self) -> None:
        for pipe in (self._requests, self._replies):
            try:
                pipe.close()
            except OSError:
                pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class WarmRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` whose runs start as forks of a warm process (module doc)."""

    def __init__(self, inst_data: Any = None) -> None:
        super().__init__(inst_data=inst_data)
        self._worker: WarmWorker | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Mapping[str, Any]) -> WarmRunLauncher:
        return cls(inst_data=inst_data)

    def warm(self) -> None:
        """Start the warm process unless one is running (returns at once; it warms on its own)."""
        with self._lock:
            self._ensure_worker()

    def _ensure_worker(self) -> WarmWorker:
        if self._worker is None or self._worker.process.poll() is not None:
            if self._worker is not None:
                self._worker.close()
            self._worker = WarmWorker()
        return self._worker

    def _fork(self, run: Any) -> int | None:
        origin = run.job_code_origin
        with self._lock:
            worker = self._ensure_worker()
            if origin is None or not worker.ready() or worker.executable != origin.executable_path:
                return None
            pid = worker.fork(run.run_id, _serialized_ref(self._instance))
            if pid is None:  # stale source or no answer: a new one warms for the next run
                worker.close()
                self._worker = WarmWorker()
            return pid

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        pid = self._fork(run)
        if pid is None:
            super().launch_run(context)
            return
        self._instance.add_run_tags(run.run_id, {WORKER_PID_TAG: str(pid)})
        self._run_ids.add(run.run_id)

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id) if self.has_instance else None
        pid = run.tags.get(WORKER_PID_TAG) if run else None
        if pid is None:
            return super().terminate(run_id)
        if run.is_finished:
            return False
        self._instance.report_run_canceling(run)
        try:
            os.kill(int(pid), signal.SIGINT)  # Dagster's interrupt handling in the fork cancels the run
        except ProcessLookupError:
            return False
        return True

    def dispose(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.close()
                self._worker = None
        super().dispose()


def _serialized_ref(instance: Any) -> str:
    from dagster._serdes import serialize_value

    return serialize_value(instance.get_ref())


class WarmQueuedRunCoordinator(QueuedRunCoordinator):
    """Dagster's run queue; in the daemon, it also starts the run launcher's warm process, so the
    first run the daemon launches finds it ready (the launcher itself is loaded at a first launch)."""

    def register_instance(self, instance: Any) -> None:
        super().register_instance(instance)
        if in_daemon_process():
            launcher = instance.run_launcher
            if isinstance(launcher, WarmRunLauncher):
                launcher.warm()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
