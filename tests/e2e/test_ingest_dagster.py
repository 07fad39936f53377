"""raw -> GE check -> validated through Dagster: one partition, a 5-day single-run range, a failing
blocking check that stops validated/* in the same run, the files source, and the schedule."""

import warnings
from datetime import datetime

import dagster as dg
import pandas as pd
import pytest

from alvh_pipeline.definitions import defs
from alvh_pipeline.lake import Lake
from alvh_pipeline.resources import LakeResource
from alvh_pipeline.schemas import RAW_TABLES
from alvh_pipeline.sources import synthetic
from alvh_pipeline.sources.resource import MarketSource

warnings.filterwarnings("ignore", category=dg.BetaWarning)
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def run_ingest(root, source=None, partition_key=None, start=None, end=None):
    job = defs.resolve_job_def("ingest")
    tags = {} if partition_key else {"dagster/asset_partition_range_start": start,
                                     "dagster/asset_partition_range_end": end}
    return job.execute_in_process(
        partition_key=partition_key, tags=tags, raise_on_error=False, run_config=QUIET,
        resources={"lake": LakeResource(root=str(root)), "source": source or MarketSource()},
    )


def test_one_partition_all_tables(tmp_path):
    res = run_ingest(tmp_path, partition_key="2024-03-05")
    assert res.success
    checks = res.get_asset_check_evaluations()
    assert len(checks) == 9 and all(c.passed for c in checks)
    assert {c.partition for c in checks} == {"2024-03-05"}
    lake = Lake(str(tmp_path))
    for t in RAW_TABLES:
        assert lake.partitions("validated", t) == ["2024-03-05"]


def test_five_day_range_in_one_run(tmp_path):
    res = run_ingest(tmp_path, start="2024-03-04", end="2024-03-08")
    assert res.success
    assert all(c.passed for c in res.get_asset_check_evaluations())
    lake = Lake(str(tmp_path))
    got = lake.read_range("validated", "vix_futures", "2024-03-04", "2024-03-08")
    assert got["date"].nunique() == 5 and len(got) == 40
    expected = synthetic.generate("vix_futures", ["2024-03-06"])
    day = got[pd.to_datetime(got["date"]) == "2024-03-06"].reset_index(drop=True)
    assert day["settle"].tolist() == expected["settle"].tolist()


def _write_files_source(folder, dates):
    for t in RAW_TABLES:
        synthetic.generate(t, dates).to_csv(folder / f"{t}.csv", index=False)


def test_files_source_and_failing_check_blocks_validated_in_same_run(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    _write_files_source(drop, ["2024-03-05"])
    src = MarketSource(kind="files", files_root=str(drop))
    ok = run_ingest(tmp_path / "lake1", source=src, partition_key="2024-03-05")
    assert ok.success and all(c.passed for c in ok.get_asset_check_evaluations())

    bad = pd.read_csv(drop / "vix_futures.csv")
    bad.loc[0, "bid"] = bad.loc[0, "ask"] + 1.0  # crossed quote
    bad.to_csv(drop / "vix_futures.csv", index=False)
    res = run_ingest(tmp_path / "lake2", source=src, partition_key="2024-03-05")
    assert not res.success
    failed = [c for c in res.get_asset_check_evaluations() if not c.passed]
    assert [c.asset_key.path for c in failed] == [["raw", "vix_futures"]]
    meta = failed[0].metadata
    assert meta["failed_partitions"].value == ["2024-03-05"]
    assert "bid,ask" in meta["failures"].value and "crossed" in meta["failures"].value
    lake = Lake(str(tmp_path / "lake2"))
    assert not lake.exists("validated", "vix_futures", "2024-03-05")
    assert lake.exists("validated", "rates", "2024-03-05")  # other tables unaffected
    assert len(lake.read_partition("quarantine", "vix_futures", "2024-03-05")) == 1


def test_an_empty_delivery_never_replaces_delivered_rows(tmp_path):
    """Silent drops: a later delivery without a day's rows fails the step by name and keeps the
    raw rows already delivered (and so validated/ keeps its version)."""
    drop = tmp_path / "drop"
    drop.mkdir()
    _write_files_source(drop, ["2024-03-05"])
    src = MarketSource(kind="files", files_root=str(drop))
    assert run_ingest(tmp_path / "lake", source=src, partition_key="2024-03-05").success
    synthetic.generate("rates", ["2024-03-06"]).to_csv(drop / "rates.csv", index=False)  # 03-05 no longer in it
    res = run_ingest(tmp_path / "lake", source=src, partition_key="2024-03-05")
    assert not res.success
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    assert "delivered 0 rows for 1 partition(s) that already hold rows" in str(failure.event_specific_data.error)
    lake = Lake(str(tmp_path / "lake"))
    assert len(lake.read_partition("raw", "rates", "2024-03-05")) == 1
    assert len(lake.read_partition("validated", "rates", "2024-03-05")) == 1


@pytest.mark.parametrize("when, expected", [
    (datetime(2024, 3, 28, 18, 30), "2024-03-28"),  # Thursday before Good Friday
    (datetime(2024, 3, 29, 18, 30), None),  # Good Friday: NYSE closed
])
def test_nightly_schedule_requests_the_session_after_the_close(when, expected):
    from zoneinfo import ZoneInfo

    nightly = defs.get_schedule_def("nightly")
    ctx = dg.build_schedule_context(scheduled_execution_time=when.replace(tzinfo=ZoneInfo("America/New_York")),
                                    repository_def=defs.get_repository_def())
    out = nightly.evaluate_tick(ctx)
    if expected is None:
        assert not out.run_requests and "not an NYSE session" in out.skip_message
    else:
        assert [r.partition_key for r in out.run_requests] == [expected]


def test_replay_source_through_dagster(tmp_path):
    res = run_ingest(tmp_path, source=MarketSource(kind="replay"), partition_key="2008-11-17")
    assert res.success and all(c.passed for c in res.get_asset_check_evaluations())
    fut = Lake(str(tmp_path)).read_partition("validated", "vix_futures", "2008-11-17")
    assert fut.loc[fut["month_index"] == 1, "settle"].item() == 67.95
    assert set(fut["provenance"]) == {"real"}
    eq = Lake(str(tmp_path)).read_partition("validated", "equity_bars", "2008-11-17")
    assert set(eq["provenance"]) == {"real:survivors_2017"} and len(eq) == 123
    # real names have no planted pairs: the raw asset claims none
    from alvh_pipeline.assets._shell import layer_table

    bars = [m for m in res.get_asset_materialization_events() if m.asset_key == layer_table("raw", "equity_bars").key]
    meta = bars[0].materialization.metadata["planted_pairs"]
    assert "not applicable" in meta.value


def test_code_location_loads_like_the_ui(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    dagster = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    out = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
