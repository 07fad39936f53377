"""Issue 10, Celery: the `ingest` job over a month of sessions, launched with only configuration
changed (ALVH_EXECUTOR=celery, ALVH_CELERY_BROKER) on a real Dagster instance, its steps run by two
dagster-celery workers on a Redis broker (Debian's redis-server on 127.0.0.1), writes a lake
byte-identical to the in-process run of the same month, and both workers ran steps.

One layer: a month of ingest is 27 steps (raw, GE check, validated for 9 tables), enough to spread
over two workers; a month of features would first need ~3 years of validated look-back in both
lakes and would take this test past its budget on a shared 2-core machine.
"""

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import dagster as dg
import pytest
import server_scripts

from alvh_pipeline.definitions import defs
from alvh_pipeline.resources import LakeResource
from alvh_pipeline.schemas import RAW_TABLES

warnings.filterwarnings("ignore", category=dg.BetaWarning)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
START, END = "2024-03-01", "2024-03-28"  # 20 NYSE sessions (Good Friday, 03-29, is closed)
SESSIONS = 20
RANGE_TAGS = {"dagster/asset_partition_range_start": START, "dagster/asset_partition_range_end": END}
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


servers = server_scripts.load("redis")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run_on_celery(tmp_path: Path, home: Path, lake: Path) -> str:
    """`dagster job execute` of the ingest month with the celery executor selected by env only;
    returns its output."""
    with servers.redis_server(tmp_path / "redis") as redis:
        env = {**os.environ, "DAGSTER_HOME": str(home), "ALVH_EXECUTOR": "celery", "ALVH_CELERY_BROKER": redis.url,
               "ALVH_LAKE_URI": str(lake)}
        env.pop("ALVH_CELERY_BACKEND", None)  # the backend defaults to the broker
        config = servers.worker_config(tmp_path / "celery.yaml", redis.url, redis.url)
        with servers.celery_workers(["w1", "w2"], config, env, tmp_path):
            out = subprocess.run(
                [str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m", "alvh_pipeline.definitions",
                 "-a", "defs", "-j", "ingest", "--tags", json.dumps(RANGE_TAGS)],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    return out.stdout + out.stderr


def test_a_month_of_ingest_on_two_celery_workers_equals_the_in_process_run(tmp_path):
    try:
        servers.redis_binary()
    except servers.ServerUnavailable as e:
        pytest.skip(f"{e} (scripts/servers/install.sh installs Debian's redis-server)")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml.example", home / "dagster.yaml")  # what `make install` does

    local_lake, celery_lake = tmp_path / "lake_in_process", tmp_path / "lake_celery"
    local = defs.resolve_job_def("ingest").execute_in_process(
        tags=RANGE_TAGS, run_config=QUIET, resources={"lake": LakeResource(root=str(local_lake))})
    assert local.success
    _run_on_celery(tmp_path, home, celery_lake)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs()
        assert run.job_name == "ingest" and run.status == dg.DagsterRunStatus.SUCCESS
        assert {k: run.tags[k] for k in RANGE_TAGS} == RANGE_TAGS
        records = [r.event_log_entry for r in instance.get_records_for_run(run.run_id, limit=100_000).records]
    events = [e.dagster_event for e in records if e.dagster_event]

    # every step went through a Celery task, and both workers took some
    steps = {e.step_key for e in events if e.event_type == dg.DagsterEventType.STEP_SUCCESS}
    assert len(steps) == 3 * len(RAW_TABLES)  # raw, ge_suite, validated per table
    # the engine event each task reports first: "Executing steps <key> in celery worker", with its hostname
    worker_of = {e.step_key: e.event_specific_data.metadata["Celery worker"].value for e in events
                 if e.event_type == dg.DagsterEventType.ENGINE_EVENT
                 and "Celery worker" in e.event_specific_data.metadata}
    assert set(worker_of) == steps
    assert {host.split("@")[0] for host in worker_of.values()} == {"w1", "w2"}
    run_pid = next(e.pid for e in events if e.event_type == dg.DagsterEventType.RUN_START)
    step_pids = {e.pid for e in events if e.event_type == dg.DagsterEventType.STEP_START}
    assert len(step_pids) == 2 and run_pid not in step_pids  # one pool process per worker, not the launcher
    checks = [e.event_specific_data for e in events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    assert len(checks) == len(RAW_TABLES) and all(c.passed for c in checks)

    # the same lake, byte for byte: every Parquet file and every GE verdict
    got, expected = _files(celery_lake), _files(local_lake)
    assert sum(name.endswith(".parquet") for name in expected) == 2 * len(RAW_TABLES) * SESSIONS
    assert sorted(got) == sorted(expected)
    assert [name for name in expected if got[name] != expected[name]] == []
