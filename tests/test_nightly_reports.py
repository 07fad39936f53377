"""What keeps the nightly run's session-independent work out of its critical path (issue 20, part 4):
the reports' history read once per process while no file of it changed, and the chain model's
calibration reused from its last materialization while its inputs and files are unchanged."""

from __future__ import annotations

import dataclasses
import os

import dagster as dg
import pandas as pd
import pytest

from alvh_pipeline.assets import attribution
from alvh_pipeline.assets import benchmarks as bench_assets
from alvh_pipeline.assets._shell import layer_table
from alvh_pipeline.core.stress import SIZING_COLUMNS
from alvh_pipeline.lake import Lake
from alvh_pipeline.resources import LakeResource

DAYS = pd.DatetimeIndex(["2024-03-04", "2024-03-05", "2024-03-06"])
MODES = ("steward", "promoter")
NUMBERS = [c for c in SIZING_COLUMNS[2:] if c != "margin_call_vx_alone"]


def _write_history(lake: Lake, equity: float = 100_000.0) -> None:
    rows = [{"date": d, "mode": m} for d in DAYS for m in MODES]
    daily = pd.DataFrame(rows).assign(equity=equity, equity_change=0.0)
    account = pd.DataFrame(rows).assign(**dict.fromkeys(NUMBERS, 0.0), margin_call_vx_alone=False,
                                        condor_max_loss=1.0)
    layer_table("attribution", "daily_pnl").write_days(lake, daily, DAYS, ("date", "mode"))
    layer_table("books", "account").write_days(lake, account, DAYS, ("date", "mode"))


@pytest.fixture(autouse=True)
def _empty_history_cache():
    attribution._HISTORY.clear()
    yield
    attribution._HISTORY.clear()


def test_history_is_read_once_while_its_files_are_unchanged(tmp_path, monkeypatch):
    lake = Lake(str(tmp_path))
    _write_history(lake)
    reads = []
    real = attribution._read_history
    monkeypatch.setattr(attribution, "_read_history", lambda lk: reads.append(1) or real(lk))
    first, acc = attribution._history(lake)
    again, acc_again = attribution._history(lake)
    assert len(reads) == 1
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(acc, acc_again)
    first["equity"] = -1.0  # a report changing its frames does not change the next one's
    assert (attribution._history(lake)[0]["equity"] == 100_000.0).all()
    pd.testing.assert_frame_equal(again, real(lake)[0])


def test_history_is_read_again_after_a_file_is_rewritten(tmp_path):
    lake = Lake(str(tmp_path))
    _write_history(lake)
    assert (attribution._history(lake)[0]["equity"] == 100_000.0).all()
    _write_history(lake, equity=90_000.0)  # same sizes, new files
    assert (attribution._history(lake)[0]["equity"] == 90_000.0).all()
    one_day = DAYS[:1]
    layer_table("books", "account").write_days(
        lake, pd.DataFrame({"date": one_day.repeat(2), "mode": list(MODES)}).assign(
            **dict.fromkeys(NUMBERS, 1.0), margin_call_vx_alone=False, condor_max_loss=1.0),
        one_day, ("date", "mode"))
    assert (attribution._history(lake)[0]["cap_dollars"] == [1.0, 1.0, 0, 0, 0, 0]).all()


# ---- the calibration report ---------------------------------------------------------------------

@pytest.fixture
def fake_report(monkeypatch):
    """The report's computation replaced by a small table (the real one takes ~4 s); counts calls."""
    calls = []
    table = pd.DataFrame({"index": ["CNDR", "PUT"], "period": ["2005", "2008"], "sample": ["in", "out"],
                          "error_pts": [0.5, -1.0], "tolerance_pts": [2.0, 5.0]})

    def report():
        calls.append(1)
        return table.copy(), pd.DataFrame()

    monkeypatch.setattr(bench_assets, "calibration_report", report)
    monkeypatch.setattr(bench_assets.bm, "comparison_png", lambda *a: b"\x89PNG fake")
    return calls


def _materialize(root, instance) -> dg.MaterializeResult:
    res = dg.materialize([bench_assets.chain_calibration], instance=instance,
                         resources={"lake": LakeResource(root=str(root))},
                         run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
    assert res.success
    return res


def _meta(res) -> dict:
    (event,) = res.get_asset_materialization_events()
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def test_calibration_is_reused_while_inputs_and_files_are_unchanged(tmp_path, fake_report):
    with dg.instance_for_test() as instance:
        first = _materialize(tmp_path, instance)
        files = {n: (tmp_path / "benchmarks" / "calibration" / n).read_bytes() for n in ("table.parquet",
                                                                                        "calibration.png")}
        stamp = os.stat(tmp_path / "benchmarks" / "calibration" / "table.parquet").st_mtime_ns
        second = _materialize(tmp_path, instance)
        assert len(fake_report) == 1  # computed once
        assert _meta(second) == _meta(first)
        assert _meta(second)["computed_in_run"] == first.run_id
        assert os.stat(tmp_path / "benchmarks" / "calibration" / "table.parquet").st_mtime_ns == stamp  # not rewritten
        assert {n: (tmp_path / "benchmarks" / "calibration" / n).read_bytes() for n in files} == files


def test_calibration_is_recomputed_when_a_file_or_an_input_changed(tmp_path, fake_report, monkeypatch):
    with dg.instance_for_test() as instance:
        _materialize(tmp_path, instance)
        (tmp_path / "benchmarks" / "calibration" / "calibration.png").write_bytes(b"edited")
        third = _materialize(tmp_path, instance)
        assert len(fake_report) == 2
        assert (tmp_path / "benchmarks" / "calibration" / "calibration.png").read_bytes() == b"\x89PNG fake"
        monkeypatch.setattr(bench_assets, "calibration_inputs_sha256", lambda: "another code version")
        fourth = _materialize(tmp_path, instance)
        assert len(fake_report) == 3
        assert _meta(fourth)["computed_in_run"] == fourth.run_id != third.run_id


def test_calibration_on_another_lake_is_computed_there(tmp_path, fake_report):
    with dg.instance_for_test() as instance:
        _materialize(tmp_path / "a", instance)
        _materialize(tmp_path / "b", instance)
        assert len(fake_report) == 2
        assert (tmp_path / "b" / "benchmarks" / "calibration" / "table.parquet").exists()


def test_calibration_inputs_digest_follows_the_parameters(monkeypatch):
    digest = bench_assets.calibration_inputs_sha256.__wrapped__  # uncached
    before = digest()
    assert digest() == before  # the same files and versions: the same digest
    monkeypatch.setattr(bench_assets.cm, "CALIBRATED", dataclasses.replace(bench_assets.cm.CALIBRATED,
                                                                          atm_to_vix=0.5))
    assert digest() != before
