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


def _checked_days_job(fail: bool) -> dg.JobDefinition:
    from alvh_pipeline.partitions import trading_days

    @dg.asset(partitions_def=trading_days)
    def days(context: dg.AssetExecutionContext) -> None:
        pass

    @dg.asset_check(asset=days, name="gate", blocking=True, partitions_def=trading_days)
    def gate(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=not fail, metadata={"partitions": len(context.partition_keys)})

    return dg.Definitions(assets=[days], asset_checks=[gate]).get_implicit_global_asset_job_def()


def _range_tags(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def test_a_range_runs_check_result_lands_on_each_partition_it_planned(tmp_path):
    """A partitioned check in a run of 3 sessions: 3 rows, each with the range's result (not 3 rows
    left PLANNED and a 4th without a partition), small (no partition subset on every row), and the
    per-partition status Dagster reads (UI partition health, the layer automation) says it."""
    import sqlite3

    inst = _instance(tmp_path)
    key = dg.AssetCheckKey(dg.AssetKey("days"), "gate")
    ok = _checked_days_job(fail=False).execute_in_process(instance=inst, tags=_range_tags("2024-01-02", "2024-01-04"))
    bad = _checked_days_job(fail=True).execute_in_process(instance=inst, raise_on_error=False,
                                                         tags=_range_tags("2024-01-05", "2024-01-08"))
    one = _checked_days_job(fail=False).execute_in_process(instance=inst, partition_key="2024-01-09")
    assert ok.success and not bad.success and one.success
    con = sqlite3.connect(tmp_path / "history" / "runs" / "index.db")
    rows = con.execute("select run_id, partition, execution_status, length(evaluation_event) "
                       "from asset_check_executions order by id").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (ok.run_id, "2024-01-02", "SUCCEEDED"), (ok.run_id, "2024-01-03", "SUCCEEDED"),
        (ok.run_id, "2024-01-04", "SUCCEEDED"), (bad.run_id, "2024-01-05", "FAILED"),
        (bad.run_id, "2024-01-08", "FAILED"), (one.run_id, "2024-01-09", "SUCCEEDED")]
    assert max(r[3] for r in rows) < 6000  # the 270 holidays' subset (~28 KB) is not copied onto each row
    infos = {i.partition_key: i.latest_execution_status.value
             for i in inst.event_log_storage.get_asset_check_partition_info([key])}
    assert infos == {"2024-01-02": "SUCCEEDED", "2024-01-03": "SUCCEEDED", "2024-01-04": "SUCCEEDED",
                     "2024-01-05": "FAILED", "2024-01-08": "FAILED", "2024-01-09": "SUCCEEDED"}
    # the range's own result (its metadata) is on each of its rows
    record = inst.event_log_storage.get_asset_check_execution_history(key, limit=10)[-1]
    assert record.partition == "2024-01-02"
    assert record.event.dagster_event.asset_check_evaluation_data.metadata["partitions"].value == 3
    inst.dispose()


def _index_dump(home: Path) -> dict[str, list]:
    """The index database's rows that storing events writes, without ids, run ids and times (the
    data-version tags' values hash the run id)."""
    import sqlite3

    con = sqlite3.connect(home / "history" / "runs" / "index.db")
    return {
        "event_logs": sorted(con.execute("select dagster_event_type, asset_key, partition, step_key from event_logs "
                                         "where asset_key is not null").fetchall(), key=str),
        "asset_keys": sorted(con.execute(
            "select k.asset_key, e.dagster_event_type, e.partition, k.last_materialization is not null "
            "from asset_keys k join event_logs e on e.id = json_extract(k.last_materialization, '$.storage_id')"
        ).fetchall(), key=str),
        "tags": sorted(con.execute("select t.asset_key, t.key, e.partition from asset_event_tags t "  # values: run ids
                                   "join event_logs e on e.id = t.event_id").fetchall(), key=str),
        "checks": sorted(con.execute("select asset_key, check_name, partition, execution_status "
                                     "from asset_check_executions").fetchall(), key=str),
    }


def test_a_batch_stores_the_rows_storing_each_event_would(tmp_path, monkeypatch):
    """The same range run with Dagster's batches on (this storage's default) and off: the same
    rows in the index (events, each asset's latest materialization, tags, check rows), the same
    events in the run's own database, and what Dagster reads back agrees."""
    from alvh_pipeline.resources import EVENT_BATCH_SIZE

    out = {}
    for batch in (str(EVENT_BATCH_SIZE), "0"):
        monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", batch)
        home = tmp_path / f"batch_{batch}"
        home.mkdir()
        inst = _instance(home)
        result = _checked_days_job(fail=False).execute_in_process(
            instance=inst, tags=_range_tags("2024-01-02", "2024-01-05"))
        assert result.success
        mats = inst.fetch_materializations(dg.AssetKey("days"), limit=10).records
        out[batch] = {
            "index": _index_dump(home),
            "run_events": sorted((e.dagster_event_type, e.dagster_event.partition) for e in inst.all_logs(result.run_id)
                                 if e.dagster_event and e.dagster_event.asset_key),
            "materialized": sorted(inst.get_materialized_partitions(dg.AssetKey("days"))),
            "latest": inst.get_latest_materialization_event(dg.AssetKey("days")).dagster_event.partition,
            "fetched": [r.partition_key for r in mats],
        }
        inst.dispose()
    batched, single = out[str(EVENT_BATCH_SIZE)], out["0"]
    for part in batched["index"]:
        assert batched["index"][part] == single["index"][part], part
    assert batched == single
    assert batched["materialized"] == ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    assert batched["latest"] == "2024-01-05" and batched["fetched"][0] == "2024-01-05"
    assert len(batched["index"]["event_logs"]) == 4 + 4  # planned and materialized, per partition
