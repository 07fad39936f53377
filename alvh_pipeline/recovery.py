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

import sys

import dagster as dg
from dagster._core.events import JobFailureData, RunFailureReason
from dagster._core.storage.runs import SqliteRunStorage

from alvh_pipeline.lake import Lake
from alvh_pipeline.processes import process_alive, this_host

HOST_TAG = "alvh/host"
__all__ = ["HOST_TAG", "fail_orphaned_runs", "orphaned_runs_sensor", "process_alive", "recover", "this_host"]


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


def recover(instance: dg.DagsterInstance, lake: Lake) -> tuple[list[str], list[str]]:
    """What every entry point does before it runs anything (`cli run`, `cli.run_job`, the
    `close_orphaned_runs` sensor): close the runs whose process is gone, and remove the staging
    files such processes left in the lake (`Lake.clean_staging`). (closed run ids, removed paths)."""
    return fail_orphaned_runs(instance), lake.clean_staging()


def orphaned_runs_sensor(minimum_interval_seconds: int = 60) -> dg.SensorDefinition:
    """The same recovery inside `make ui`'s daemon: a sensor, running by default, that closes
    orphaned runs every `minimum_interval_seconds`, so the run queue frees their slots without
    waiting for the next `cli run`. It launches nothing."""

    @dg.sensor(name="close_orphaned_runs", minimum_interval_seconds=minimum_interval_seconds,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="marks runs whose process is gone FAILURE (alvh_pipeline.recovery)")
    def close_orphaned_runs(context: dg.SensorEvaluationContext):
        from alvh_pipeline.resources import lake_from_env

        ids, removed = recover(context.instance, lake_from_env())
        return dg.SkipReason((f"closed orphaned runs: {', '.join(ids)}" if ids else "no orphaned run")
                             + (f"; removed {len(removed)} staged file(s) of killed writers" if removed else ""))

    return close_orphaned_runs


def main() -> int:
    from alvh_pipeline.resources import lake_from_env

    with dg.DagsterInstance.get() as instance:
        ids, removed = recover(instance, lake_from_env())
    for run_id in ids:
        print(f"closed orphaned run {run_id} (its process is gone)")
    print(f"{len(ids)} orphaned run(s) closed, {len(removed)} staged file(s) of killed writers removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
