"""Test-only code location for tests/e2e/test_run_monitoring.py: a job that sleeps, and the
recovery sensor polling every second."""

import time

import dagster as dg

from alvh_pipeline.recovery import orphaned_runs_sensor


@dg.op(config_schema={"seconds": dg.Field(float, default_value=0.0)})
def nap(context: dg.OpExecutionContext) -> None:
    time.sleep(context.op_config["seconds"])


@dg.job
def sleeper() -> None:
    nap()


defs = dg.Definitions(jobs=[sleeper], sensors=[orphaned_runs_sensor(minimum_interval_seconds=1)])
