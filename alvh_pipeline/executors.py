"""The executor of every job: Dagster's own, chosen by configuration (`resources.executor_settings`,
env `ALVH_EXECUTOR`), never an engine of ours.

- `in_process` (default): every step in the run's own process; on the 2-core machine the project
  targets, a process per step (each importing the project) cost more than the steps themselves.
- `multiprocess` (Dagster's default executor): one process per step on this machine; run config
  `execution: {config: {in_process: {}}}` still selects in-process.
- `celery`: dagster-celery's executor; each step is a Celery task on the broker
  (`ALVH_CELERY_BROKER`, e.g. Redis), picked up by `dagster-celery worker start` workers that import
  this project and reach the same Dagster instance and lake.
- `k8s`: dagster-k8s's `k8s_job_executor`; each step a Kubernetes Job, configured from the
  K8sRunLauncher of the instance (image, env, secrets: `deploy/helm/values.yaml`). Needs
  dagster-k8s, which only the deployment image installs.

It applies to runs launched by the UI, the daemon (schedules, sensors, backfills) and
`dagster job execute`; `cli run` executes in process (`execute_in_process` ignores the executor).
"""

from __future__ import annotations

import dagster as dg

from alvh_pipeline.resources import ExecutorSettings, executor_settings


def executor_def(settings: ExecutorSettings | None = None) -> dg.ExecutorDefinition:
    settings = settings or executor_settings()
    if settings.kind == "in_process":
        return dg.in_process_executor
    if settings.kind == "celery":
        from dagster_celery import celery_executor  # the [scale] extra

        return celery_executor.configured({"broker": settings.celery_broker, "backend": settings.celery_backend},
                                          name="celery")
    if settings.kind == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError:
            raise ImportError("ALVH_EXECUTOR=k8s needs dagster-k8s (pip install dagster-k8s==0.29.27), "
                              "installed in the deployment image (deploy/helm)") from None
        return k8s_job_executor
    return dg.multi_or_in_process_executor
