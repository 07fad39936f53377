"""Test-only code location for tests/e2e/test_warm_launcher.py: a job whose one op runs in the run
worker itself (in-process executor) and records what that process is: its pid, its parent's, and
whether the project and Great Expectations were imported before the op ran."""

import os
import sys
import time

import dagster as dg


@dg.op(config_schema={"seconds": dg.Field(float, default_value=0.0)})
def where(context: dg.OpExecutionContext) -> dg.Output[None]:
    imported = {m: m in sys.modules for m in ("alvh_pipeline.definitions", "great_expectations")}
    time.sleep(context.op_config["seconds"])
    return dg.Output(None, metadata={"pid": os.getpid(), "ppid": os.getppid(),
                                     **{k: str(v) for k, v in imported.items()}})


@dg.job(executor_def=dg.in_process_executor)
def whereabouts() -> None:
    where()


defs = dg.Definitions(jobs=[whereabouts])
