"""Close runs whose process is gone (issue 7), so they stop holding a `run_queue` slot.

A run executed in process (`cli run`: `execute_in_process` on the project's instance) has no run
worker and no run launcher behind it: when its process is killed (kill -9, OOM, a closed laptop)
nothing writes RUN_FAILURE, the run stays STARTED forever, and every STARTED run counts against
`run_queue: max_concurrent_runs`, so two of them stop the daemon's queue. Dagster's run monitoring
cannot see that death: the DefaultRunLauncher has no run-worker health check (see the comments in
dagster.yaml.example). What Dagster does record is the pid of the process that executed the run:
every event carries `pid`, and RUN_START is written by the process running the steps (the CLI's
for an in-process run, the run worker's for a launched run).

`fail_orphaned_runs(instance)` marks each STARTED run whose RUN_START process no longer exists on
this host FAILURE (a CANCELING one CANCELED), through the instance, and returns their ids. A live
process is never touched, however long it runs. `python -m alvh_pipeline.recovery` does the same
on $DAGSTER_HOME.

Which runs are "on this host": a run tagged `alvh/host` (`cli.run_job` tags its runs) only where that
is this machine's name; an untagged run only on a SQLite instance (local to one machine by
construction). On a shared PostgreSQL instance an untagged run is left to run monitoring's
`max_runtime_seconds`.
"""

from __future__ import annotations

import os
import socket
import sys

import dagster as dg
from dagster._core.events import JobFailureData, RunFailureReason
from dagster._core.storage.runs import SqliteRunStorage

HOST_TAG = "alvh/host"
# a pid whose process started after the run did is a reused pid, not the run's process; the slack
# covers /proc's whole-second boot time
_START_SLACK_SECONDS = 2.0


def this_host() -> str:
    return socket.gethostname()


def _proc_start_time(pid: int) -> float | None:
    """Linux: when `pid` started (epoch seconds), None where /proc is not available."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as f:
            btime = next(float(line.split()[1]) for line in f if line.startswith("btime "))
        return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, IndexError, ValueError):
        return None


def _proc_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def process_alive(pid: int, started_by: float | None = None) -> bool:
    """Whether `pid` is a live process on this host; with `started_by` (epoch seconds), also one
    that had started by then (a process started later holds a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    if _proc_state(pid) in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    if started_by is not None:
        start = _proc_start_time(pid)
        if start is not None and start > started_by + _START_SLACK_SECONDS:
            return False
    return True


def _run_process(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, timestamp) of the run's RUN_START event: the process that executes it."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
    if not records or records[0].event_log_entry.dagster_event is None:
        return None
    entry = records[0].event_log_entry
    pid = entry.dagster_event.pid
    return (pid, entry.timestamp) if pid else None


def _on_this_host(instance: dg.DagsterInstance, run: dg.DagsterRun, host: str) -> bool:
    tagged = run.tags.get(HOST_TAG)
    if tagged is not None:
        return tagged == host
    return isinstance(instance.run_storage, SqliteRunStorage)


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark every STARTED run of this host whose process is gone FAILURE (CANCELING ones
    CANCELED), with an engine event naming the dead pid; return their run ids.

    Runs still STARTING (no RUN_START yet) are left to run monitoring's `start_timeout_seconds`;
    a run whose pid cannot be read is left alone."""
    host = this_host()
    closed = []
    statuses = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=statuses)):
        run = record.dagster_run
        if not _on_this_host(instance, run, host):
            continue
        proc = _run_process(instance, run.run_id)
        if proc is None or process_alive(*proc):
            continue
        run = instance.get_run_by_id(run.run_id)  # it may have finished meanwhile
        if run is None or run.is_finished:
            continue
        msg = (f"alvh_pipeline.recovery: the process executing this run (pid {proc[0]} on {host}) no longer "
               f"exists; the run was killed without recording its end")
        instance.report_engine_event(msg, run)
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, msg)
        else:
            instance.report_run_failed(
                run, msg, JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION))
        closed.append(run.run_id)
    return closed


def orphaned_runs_sensor(minimum_interval_seconds: int = 60) -> dg.SensorDefinition:
    """The same recovery inside `make ui`'s daemon: a sensor, running by default, that closes
    orphaned runs every `minimum_interval_seconds`, so the run queue frees their slots without
    waiting for the next `cli run`. It launches nothing."""

    @dg.sensor(name="close_orphaned_runs", minimum_interval_seconds=minimum_interval_seconds,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="marks runs whose process is gone FAILURE (alvh_pipeline.recovery)")
    def close_orphaned_runs(context: dg.SensorEvaluationContext):
        ids = fail_orphaned_runs(context.instance)
        return dg.SkipReason(f"closed orphaned runs: {', '.join(ids)}" if ids else "no orphaned run")

    return close_orphaned_runs


def main() -> int:
    with dg.DagsterInstance.get() as instance:
        ids = fail_orphaned_runs(instance)
    for run_id in ids:
        print(f"closed orphaned run {run_id} (its process is gone)")
    print(f"{len(ids)} orphaned run(s) closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
