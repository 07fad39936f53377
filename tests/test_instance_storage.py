"""The embedded instance's tuned event log (`alvh_pipeline/instance_storage.py`): it is what the
shipped dagster.yaml selects; its connections run with synchronous=NORMAL; what one process writes
another process reads at once (WAL with kept-open connections); a run's events reach its own .db
file (what the UI's live run view watches) while the run goes on. Its speed: bench/backfill.py."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import yaml

from alvh_pipeline.instance_storage import NormalSyncSqliteEventLogStorage

ROOT = Path(__file__).resolve().parents[1]
STORAGE = {"module": "alvh_pipeline.instance_storage", "class": "NormalSyncSqliteEventLogStorage"}


def _instance(home: Path) -> dg.DagsterInstance:
    (home / "dagster.yaml").write_text(yaml.safe_dump({"telemetry": {"enabled": False}, "event_log_storage": {
        **STORAGE, "config": {"base_dir": str(home / "history" / "runs")}}}))
    return dg.DagsterInstance.from_config(str(home))


def test_the_shipped_dagster_yaml_selects_it():
    shipped = yaml.safe_load((ROOT / "dagster.yaml.example").read_text())
    assert {k: shipped["event_log_storage"][k] for k in ("module", "class")} == STORAGE


def test_synchronous_normal_and_another_process_reads_what_was_written(tmp_path):
    inst = _instance(tmp_path)
    storage = inst.event_log_storage
    assert isinstance(storage, NormalSyncSqliteEventLogStorage)
    with storage.index_connection() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    for day in ("2024-01-02", "2024-01-03", "2024-01-04"):
        inst.report_runless_asset_event(dg.AssetMaterialization(asset_key=["validated", "rates"], partition=day))
    # another process, while this one keeps its connections open
    code = ("import dagster as dg, json, sys; i = dg.DagsterInstance.from_config(sys.argv[1]); "
            "print(json.dumps(sorted(i.get_materialized_partitions(dg.AssetKey(['validated', 'rates'])))))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True,
                         env={**os.environ, "DAGSTER_HOME": str(tmp_path)})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["2024-01-02", "2024-01-03", "2024-01-04"]
    inst.dispose()


def test_a_runs_events_reach_its_db_file_while_it_runs(tmp_path):
    inst = _instance(tmp_path)
    seen = {}

    @dg.op
    def slow(context: dg.OpExecutionContext) -> None:
        db_file = Path(inst.event_log_storage.path_for_shard(context.run_id))
        context.log.info("first")
        time.sleep(1.2)  # past the checkpoint interval
        context.log.info("second")  # this commit checkpoints the run's WAL into its .db file
        seen["size"] = db_file.stat().st_size
        seen["wal"] = Path(str(db_file) + "-wal").exists()

    @dg.job
    def one():
        slow()

    result = one.execute_in_process(instance=inst)
    assert result.success
    assert seen["size"] > 0 and seen["wal"]  # WAL mode, and the main file already holds the run's events
    logs = [e.user_message for e in inst.all_logs(result.run_id) if "first" in e.user_message]
    assert logs
    inst.dispose()



def test_the_shipped_yaml_opens_by_path_without_dagster_home(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml.example").read_text())
    inst = dg.DagsterInstance.from_config(str(tmp_path))
    assert isinstance(inst.event_log_storage, NormalSyncSqliteEventLogStorage)
    inst.report_runless_asset_event(dg.AssetMaterialization(asset_key="t", partition="2024-01-02"))
    assert (tmp_path / "history" / "runs" / "index.db").exists()  # Dagster's default place, in this home
    inst.dispose()
