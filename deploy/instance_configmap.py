"""The Dagster instance ConfigMap for Kubernetes, named by `global.dagsterInstanceConfigMap` in
deploy/helm/values.yaml, so the chart's pods use it instead of the instance it would render.

Why: the chart writes stock dagster-postgres storages into its own ConfigMap, whose event log
leaves a range run's per-partition check rows PLANNED. This one takes the storages of
deploy/dagster.postgres.yaml (the project's RangeCheckPostgresEventLogStorage writes each planned
partition's check result) and everything else from values.yaml as the chart would: the PostgreSQL
connection (password from the chart's Secret, as DAGSTER_PG_PASSWORD), the K8sRunLauncher, the run
queue, run monitoring and telemetry.

    python deploy/instance_configmap.py > instance-configmap.yaml
    kubectl apply -n <namespace> -f instance-configmap.yaml     # before `helm upgrade --install`
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parent
VALUES_FILE = DEPLOY / "helm" / "values.yaml"
POSTGRES_INSTANCE = DEPLOY / "dagster.postgres.yaml"
DAGSTER_HOME = "/opt/dagster/dagster_home"  # the chart's (and the Dockerfile's) instance folder
STORAGES = ("run_storage", "event_log_storage", "schedule_storage")


def postgres_db(values: dict[str, Any]) -> dict[str, Any]:
    """The connection the chart renders from `postgresql` (helpers/instance/_postgresql.tpl)."""
    pg = values["postgresql"]
    return {"username": pg["postgresqlUsername"], "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": pg["postgresqlHost"], "db_name": pg["postgresqlDatabase"], "port": pg["service"]["port"],
            "params": dict(pg["postgresqlParams"]), "scheme": pg["postgresqlScheme"]}


def run_launcher(values: dict[str, Any]) -> dict[str, Any]:
    """values.yaml's K8sRunLauncher, in the launcher's own (snake_case) config keys."""
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    container = k8s["runK8sConfig"]["containerConfig"]
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": {
        "instance_config_map": values["global"]["dagsterInstanceConfigMap"],
        "dagster_home": DAGSTER_HOME,
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
        "image_pull_policy": k8s["imagePullPolicy"],
        "load_incluster_config": k8s["loadInclusterConfig"],
        "env_secrets": [s["name"] for s in k8s["envSecrets"]],
        "fail_pod_on_run_failure": k8s["failPodOnRunFailure"],
        "run_k8s_config": {"container_config": {"resources": container["resources"]}}}}


def instance_config(values: dict[str, Any], postgres_instance: dict[str, Any]) -> dict[str, Any]:
    """dagster.yaml for the pods: deploy/dagster.postgres.yaml's storage classes on values.yaml's
    connection, and the chart's daemon settings from values.yaml."""
    mon = values["dagsterDaemon"]["runMonitoring"]
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    storages = {key: {"module": postgres_instance[key]["module"], "class": postgres_instance[key]["class"],
                      "config": {"postgres_db": postgres_db(values)}} for key in STORAGES}
    return {
        **storages,
        "run_launcher": run_launcher(values),
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator",
                            "config": {"max_concurrent_runs": queued["maxConcurrentRuns"]}},
        "run_monitoring": {"enabled": mon["enabled"], "start_timeout_seconds": mon["startTimeoutSeconds"],
                           "cancel_timeout_seconds": mon["cancelTimeoutSeconds"],
                           "max_resume_run_attempts": mon["maxResumeRunAttempts"],
                           "poll_interval_seconds": mon["pollIntervalSeconds"],
                           "free_slots_after_run_end_seconds": mon["freeSlotsAfterRunEndSeconds"]},
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }


def configmap(values: dict[str, Any], postgres_instance: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": values["global"]["dagsterInstanceConfigMap"],
                         "labels": {"app.kubernetes.io/part-of": "alvh-pipeline"}},
            "data": {"dagster.yaml": yaml.safe_dump(instance_config(values, postgres_instance), sort_keys=False)}}


class _Literal(str):
    """A multi-line value written as a YAML block (`dagster.yaml: |`), readable in the manifest."""


yaml.SafeDumper.add_representer(_Literal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|"))


def manifest(values_file: Path = VALUES_FILE, postgres_file: Path = POSTGRES_INSTANCE) -> str:
    """The ConfigMap as YAML text, from the two files."""
    cm = configmap(yaml.safe_load(values_file.read_text()), yaml.safe_load(postgres_file.read_text()))
    cm["data"] = {k: _Literal(v) for k, v in cm["data"].items()}
    return yaml.safe_dump(cm, sort_keys=False)


def main() -> int:
    sys.stdout.write(manifest())
    return 0


if __name__ == "__main__":
    sys.exit(main())
