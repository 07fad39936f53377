"""deploy/helm/values.yaml for Dagster's Helm chart, checked without a cluster: only keys the chart's
schema knows, the K8sRunLauncher, an external PostgreSQL whose password comes from a Secret, the
user deployment serving this project's definitions, env names the project reads, and the Dagster
instance config the chart renders from these values validating against Dagster's own schema.

dagster-k8s is not installed here (only the deployment image needs it), so the K8sRunLauncher's and
the k8s_job_executor's own config schemas are not checked; `ALVH_EXECUTOR=k8s` is, up to the import.
"""

import importlib
import importlib.util
import io
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_postgres.utils import pg_url_from_config

ROOT = Path(__file__).resolve().parents[2]
VALUES_FILE = ROOT / "deploy" / "helm" / "values.yaml"
RESOURCES = ROOT / "alvh_pipeline" / "resources.py"

# The keys the chart accepts in each section this file sets, from its schema models
# (dagster-io/dagster helm/dagster/schema/schema/charts/.../subschema/*.py; most sections forbid
# unknown keys) and, for runMonitoring (a free dict there), templates/configmap-instance.yaml.
CHART_KEYS: dict[tuple[str, ...], set[str]] = {
    (): {"dagsterWebserver", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
         "generateCeleryConfigSecret", "rabbitmq", "redis", "flower", "ingress", "imagePullSecrets",
         "computeLogManager", "scheduler", "runLauncher", "pythonLogs", "dagsterDaemon", "busybox", "migrate",
         "telemetry", "serviceAccount", "global", "retention", "concurrency", "additionalInstanceConfig"},
    ("global",): {"postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName",
                  "dagsterInstanceConfigMap"},
    ("postgresql",): {"postgresqlScheme", "image", "enabled", "postgresqlHost", "postgresqlUsername",
                      "postgresqlPassword", "postgresqlDatabase", "postgresqlParams", "service"},
    ("dagster-user-deployments",): {"enabled", "enableSubchart", "imagePullSecrets", "deployments"},
    ("runLauncher",): {"type", "config"},
    ("runLauncher", "config"): {"celeryK8sRunLauncher", "k8sRunLauncher", "customRunLauncher"},
    ("runLauncher", "config", "k8sRunLauncher"): {
        "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile", "envConfigMaps",
        "envSecrets", "envVars", "volumeMounts", "volumes", "labels", "failPodOnRunFailure", "resources",
        "schedulerName", "securityContext", "runK8sConfig"},
    ("runLauncher", "config", "k8sRunLauncher", "runK8sConfig"): {
        "containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata"},
    ("dagsterDaemon",): {
        "enabled", "image", "runCoordinator", "heartbeatTolerance", "env", "envConfigMaps", "envSecrets",
        "deploymentLabels", "labels", "nodeSelector", "affinity", "tolerations", "podSecurityContext",
        "securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe", "annotations",
        "runMonitoring", "runRetries", "sensors", "schedules", "schedulerName", "volumeMounts", "volumes"},
    ("dagsterDaemon", "runCoordinator"): {"enabled", "type", "config"},
    ("dagsterDaemon", "runCoordinator", "config", "queuedRunCoordinator"): {
        "maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds", "dequeueNumWorkers",
        "dequeueUseThreads"},
    ("dagsterDaemon", "runMonitoring"): {"enabled", "startTimeoutSeconds", "cancelTimeoutSeconds",
                                         "maxResumeRunAttempts", "pollIntervalSeconds", "freeSlotsAfterRunEndSeconds"},
    ("telemetry",): {"enabled"},
}
DEPLOYMENT_KEYS = {
    "name", "image", "port", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns", "env",
    "envConfigMaps", "envSecrets", "annotations", "nodeSelector", "affinity", "tolerations", "podSecurityContext",
    "securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe", "labels", "volumeMounts",
    "volumes", "schedulerName"}


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES_FILE.read_text())


def _at(values: dict, path: tuple[str, ...]) -> Any:
    """The section at `path`; {} where this file does not set it (the chart's default applies)."""
    for key in path:
        values = values.get(key, {})
    return values


def _deployment(values: dict) -> dict:
    [deployment] = values["dagster-user-deployments"]["deployments"]
    return deployment


def test_every_key_is_one_the_chart_knows(values):
    for path, known in CHART_KEYS.items():
        section = _at(values, path)
        assert set(section) <= known, f"{'.'.join(path) or 'top level'}: unknown {set(section) - known}"
    deployment = _deployment(values)
    assert set(deployment) <= DEPLOYMENT_KEYS
    assert {"name", "image", "port"} <= set(deployment)
    assert set(deployment["image"]) == {"repository", "tag", "pullPolicy"}


def test_chart_version_is_the_pinned_dagster():
    assert re.search(r"--version (\S+)", VALUES_FILE.read_text()).group(1) == dg.__version__


def test_k8s_run_launcher_external_postgres_and_credentials_only_in_secrets(values):
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert set(values["runLauncher"]["config"]) == {"k8sRunLauncher"}  # the block the chart reads for that type
    pg = values["postgresql"]
    assert pg["enabled"] is False and pg["postgresqlHost"]
    assert values["generatePostgresqlPasswordSecret"] is False and values["global"]["postgresqlSecretName"]
    assert pg["postgresqlPassword"] == ""  # the password lives in the Secret, not in this file
    lake_secret = {s["name"] for s in _deployment(values)["envSecrets"]}
    assert lake_secret and lake_secret <= {s["name"] for s in values["runLauncher"]["config"]["k8sRunLauncher"]
                                           ["envSecrets"]}  # run and step pods get the lake credentials too
    assert not [k for k in _deployment(values)["env"] if re.search(r"SECRET|PASSWORD|ACCESS_KEY", k)]
    daemon = values["dagsterDaemon"]
    assert daemon["enabled"] and daemon["runMonitoring"]["enabled"]
    assert values["telemetry"]["enabled"] is False


def test_the_user_deployment_serves_this_projects_definitions(values):
    args = _deployment(values)["dagsterApiGrpcArgs"]
    module = args[args.index("--module-name") + 1]
    assert module == tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert isinstance(importlib.import_module(module).defs, dg.Definitions)


def test_env_names_are_the_ones_resources_reads_and_the_values_load(values, monkeypatch):
    from alvh_pipeline.executors import executor_def
    from alvh_pipeline.lake import Lake
    from alvh_pipeline.resources import executor_settings
    from alvh_pipeline.sources.resource import SOURCE_KINDS

    env = _deployment(values)["env"]
    read = set(re.findall(r'"((?:ALVH|AWS|GX)_[A-Z_]+)"', RESOURCES.read_text()))
    assert set(env) <= read, f"not read by alvh_pipeline/resources.py: {set(env) - read}"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Lake.from_uri(env["ALVH_LAKE_URI"]).on_s3
    assert env["ALVH_SOURCE"] in SOURCE_KINDS
    assert executor_settings().kind == "k8s"
    try:
        import dagster_k8s  # noqa: F401  (in the deployment image, not in this venv)
    except ImportError:
        with pytest.raises(ImportError, match="dagster-k8s"):
            executor_def()
    else:
        assert executor_def().name == "k8s"


# the storages the chart writes into its own instance ConfigMap (stock dagster-postgres)
CHART_STORAGES = {"run_storage": {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage"},
                  "event_log_storage": {"module": "dagster_postgres.event_log", "class": "PostgresEventLogStorage"},
                  "schedule_storage": {"module": "dagster_postgres.schedule_storage",
                                       "class": "PostgresScheduleStorage"}}


def _instance_yaml(values: dict) -> dict:
    """The parts of dagster.yaml the chart renders from these values (templates/configmap-instance.yaml
    and helpers/instance/_postgresql.tpl; `deploy/instance_configmap.py` renders the same, with the
    project's storages), minus the run launcher, which needs dagster-k8s."""
    instance = _configmap_module().instance_config(values, CHART_STORAGES)
    del instance["run_launcher"]
    return instance


def test_the_instance_config_the_chart_renders_is_valid_for_this_dagster(values, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "from-the-secret")  # what the chart mounts from the Secret
    rendered = _instance_yaml(values)
    config, _ = dagster_instance_config(str(tmp_path), overrides=rendered)
    assert config["run_monitoring"]["max_resume_run_attempts"] == 3
    for key, cls in [("run_storage", PostgresRunStorage), ("event_log_storage", PostgresEventLogStorage),
                     ("schedule_storage", PostgresScheduleStorage), ("run_coordinator", QueuedRunCoordinator)]:
        result = validate_config(cls.config_type(), rendered[key]["config"])
        assert result.success, (key, result.errors)
    url = pg_url_from_config({"postgres_db": {**rendered["run_storage"]["config"]["postgres_db"],
                                              "password": "from-the-secret"}})
    assert url == "postgresql+psycopg2://dagster:from-the-secret@alvh-postgres.data.svc.cluster.local:5432/dagster" \
                  "?sslmode=require"


# ---- the image and the instance ConfigMap (issue 21) -------------------------------------------------------

DOCKERFILE = ROOT / "Dockerfile"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether `docker build` leaves `path` out: a .dockerignore pattern matches it or a folder above it."""
    from fnmatch import fnmatch

    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch(p, pat) for pat in patterns for p in prefixes)


def _build_context() -> dict[str, int]:
    """The files (and sizes) `docker build .` sends from a fresh clone: the tracked files minus
    .dockerignore's patterns."""
    import subprocess

    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for local in (".venv/bin/python", "data_lake/replay/raw/x.parquet", ".dagster/dagster.yaml"):
        assert _ignored(local, patterns), local  # what a working checkout holds beside the tracked files
    return {p: (ROOT / p).stat().st_size for p in tracked if not _ignored(p, patterns) and (ROOT / p).is_file()}


def test_the_image_builds_from_a_context_holding_the_project_and_serves_what_values_name(values):
    """The Dockerfile's build context is the package with its shipped data, pyproject and the
    PostgreSQL instance, and nothing of tests, benches or lakes; it installs the `k8s` extra (the
    pinned dagster-k8s) and serves the module and port values.yaml's code location names."""
    import shlex
    import tarfile

    context = _build_context()
    text = DOCKERFILE.read_text()
    copies = [shlex.split(line)[1:-1] for line in text.splitlines() if line.startswith("COPY ")]
    for sources in copies:
        for src in sources:
            assert any(f == src or f.startswith(src.rstrip("/") + "/") for f in context), f"COPY {src}: not in context"
    assert {p for p in context if p.startswith("alvh_pipeline/sources/data/")}, "the replay data must ship"
    assert not [p for p in context if p.startswith(("tests/", "bench/", "data_lake/"))]
    assert 'RUN pip install ".[k8s]"' in text
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "dagster-k8s==0.29.27" in extras["k8s"] and "alvh_pipeline[scale]" in extras["k8s"]
    cmd = json.loads(text.split("\nCMD ", 1)[1].splitlines()[0])
    deployment = _deployment(values)
    assert cmd[:3] == ["dagster", "api", "grpc"] and cmd[3:5] == deployment["dagsterApiGrpcArgs"]
    assert cmd[cmd.index("--port") + 1] == str(deployment["port"])
    buffer = io.BytesIO()  # the context as docker sends it: a tar of those files
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(context):
            tar.add(ROOT / path, arcname=path)
    assert buffer.tell() < 200 * 2**20


def _configmap_module():
    spec = importlib.util.spec_from_file_location("alvh_instance_configmap", ROOT / "deploy" / "instance_configmap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_instance_configmap_keeps_the_projects_event_log(values, tmp_path, monkeypatch):
    """`python deploy/instance_configmap.py` renders the ConfigMap values.yaml names: the storages of
    deploy/dagster.postgres.yaml (the range-run check rows' event log, not the chart's stock one)
    on the chart's PostgreSQL connection, valid for this Dagster, with the run launcher pointing
    run pods at the same ConfigMap."""
    from alvh_pipeline.postgres_storage import RangeCheckPostgresEventLogStorage

    manifest = yaml.safe_load(_configmap_module().manifest())
    assert manifest["kind"] == "ConfigMap"
    assert manifest["metadata"]["name"] == values["global"]["dagsterInstanceConfigMap"]
    instance = yaml.safe_load(manifest["data"]["dagster.yaml"])
    local = yaml.safe_load((ROOT / "deploy" / "dagster.postgres.yaml").read_text())
    for key in ("run_storage", "event_log_storage", "schedule_storage"):
        assert (instance[key]["module"], instance[key]["class"]) == (local[key]["module"], local[key]["class"])
    assert instance["event_log_storage"]["class"] == RangeCheckPostgresEventLogStorage.__name__
    for key, cls in [("run_storage", PostgresRunStorage), ("event_log_storage", RangeCheckPostgresEventLogStorage),
                     ("schedule_storage", PostgresScheduleStorage)]:
        result = validate_config(cls.config_type(), instance[key]["config"])
        assert result.success, (key, result.errors)
    launcher = instance.pop("run_launcher")  # dagster-k8s is not installed here: its schema is the image's
    assert launcher["class"] == "K8sRunLauncher"
    assert launcher["config"]["instance_config_map"] == manifest["metadata"]["name"]
    assert launcher["config"]["postgres_password_secret"] == values["global"]["postgresqlSecretName"]
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "from-the-secret")
    config, _ = dagster_instance_config(str(tmp_path), overrides=instance)
    assert config["event_log_storage"]["class"] == "RangeCheckPostgresEventLogStorage"
    assert instance == {**_instance_yaml(values), "event_log_storage": instance["event_log_storage"]}
