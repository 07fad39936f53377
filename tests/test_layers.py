"""The LAYERS registry is the one place a layer is declared: a dummy layer added to a copy of it
appears in the definitions, in a job and in the CLI's plan; plans chain each layer's look-back."""

import sys
import types

import dagster as dg
import pandas as pd
import pytest

from alvh_pipeline.automation import build_jobs
from alvh_pipeline.core.calendar import window_start
from alvh_pipeline.core.feature_sets import MAX_LOOKBACK
from alvh_pipeline.core.signal_sets import history_start as signals_history_start
from alvh_pipeline.definitions import build_definitions
from alvh_pipeline.layers import LAYERS, Layer, layer, plan
from alvh_pipeline.partitions import trading_days


@pytest.fixture
def dummy_layer(monkeypatch):
    module = types.ModuleType("alvh_dummy_layer")

    @dg.asset(key=["dummy", "echo"], deps=[dg.AssetKey(["signals", "regime"])], partitions_def=trading_days,
              group_name="dummy")
    def echo() -> None:
        return None

    @dg.asset_check(asset=echo, name="echo_check", blocking=True)
    def echo_check() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    module.assets, module.checks = [echo], [echo_check]
    monkeypatch.setitem(sys.modules, "alvh_dummy_layer", module)
    return Layer("dummy", ("dummy",), "alvh_dummy_layer", "a test layer", stateful=True,
                 reads_from=lambda start: window_start(start, 3))


def test_a_new_layer_appears_in_definitions_jobs_and_plan(dummy_layer):
    layers = (*LAYERS, dummy_layer)
    defs = build_definitions(layers)
    assert dg.AssetKey(["dummy", "echo"]) in defs.resolve_asset_graph().get_all_asset_keys()
    job = defs.resolve_job_def("dummy")
    assert sorted(n.name for n in job.graph.nodes) == ["dummy__echo", "dummy__echo_echo_check"]
    assert "dummy__echo" in [n.name for n in defs.resolve_job_def("all_layers").graph.nodes]
    assert "dummy__echo" in [n.name for n in defs.resolve_job_def("analytics").graph.nodes]
    steps = plan("2024-03-01", "2024-03-28", layers)
    assert [s.layer.name for s in steps] == [*(entry.name for entry in LAYERS), "dummy"]
    assert steps[-1].start == pd.Timestamp("2024-03-01")
    assert steps[-2].start == window_start("2024-03-01", 3)  # the dummy's look-back of signals
    assert dummy_layer.backfill_policy == dg.BackfillPolicy.single_run()


def test_jobs_are_one_per_layer_plus_analytics_and_all():
    names = [j.name for j in build_jobs()]
    assert names == [*(entry.name for entry in LAYERS), "analytics", "all_layers"]


def test_plan_chains_each_layers_look_back():
    steps = plan("2024-03-01", "2024-03-28")
    assert steps[-1].start == pd.Timestamp("2024-03-01")
    for before, after in zip(steps[:-1], steps[1:]):
        assert before.start == after.layer.reads_from(after.start)
    first = {s.layer.name: s.start for s in steps}
    assert first["books"] == window_start("2024-03-01", 1)  # attribution reads the books' previous session
    assert first["features"] == signals_history_start(first["signals"])
    assert first["ingest"] == window_start(first["features"], MAX_LOOKBACK)
    assert all(s.end == pd.Timestamp("2024-03-28") for s in steps)


def test_no_layer_is_planned_before_the_first_partition():
    steps = plan("1999-01-04", "1999-03-31")
    assert all(s.start >= pd.Timestamp("1999-01-04") for s in steps)
    assert [s.start for s in steps][-1] == pd.Timestamp("1999-01-04")


def test_day_local_layers_backfill_a_year_per_run():
    assert all(entry.backfill_policy.max_partitions_per_run == 252 for entry in LAYERS if not entry.stateful)


def test_unknown_layer_is_named():
    with pytest.raises(KeyError, match="no layer named 'reports'"):
        layer("reports")


def test_asset_keys_and_lake_paths_come_from_one_place(tmp_path):
    from alvh_pipeline.assets._shell import layer_table
    from alvh_pipeline.lake import Lake

    t = layer_table("features", "pairs")
    assert t.key == dg.AssetKey(["features", "pairs"])
    assert t.path(Lake(str(tmp_path))) == tmp_path / "features" / "pairs"
    keys = {k.to_user_string() for k in build_definitions().resolve_asset_graph().get_all_asset_keys()}
    groups = {g for entry in LAYERS for g in entry.groups}
    assert {k.split("/")[0] for k in keys} == groups | {"sweep"}  # the sensitivity sweep sits outside the layers


def test_assets_never_import_layers_and_take_their_layers_backfill_policy():
    """The arrow runs one way: `layers` loads the asset modules, no asset module imports `layers`
    (each takes its policy from `partitions`), and every partitioned asset's backfill policy is its
    layer's (one run in order for the stateful books and benchmarks, a year per run for the rest)."""
    from pathlib import Path

    assets_dir = Path(__file__).resolve().parents[1] / "alvh_pipeline" / "assets"
    importers = [p.name for p in assets_dir.glob("*.py") if "alvh_pipeline.layers" in p.read_text()]
    assert importers == []
    for entry in LAYERS:
        partitioned = [a for a in entry.definitions()[0] if a.partitions_def is not None]
        assert partitioned and all(a.backfill_policy == entry.backfill_policy for a in partitioned), entry.name
