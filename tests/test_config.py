"""Every user setting has one default (on its resource), is overridable from the environment
through dg.EnvVar (resolved when a run launches) and from run config, and is validated."""

import dagster as dg
import pytest
from pydantic import ValidationError

from alvh_pipeline.resources import LakeResource, StrategyConfig, build_resources


def test_defaults_are_the_documented_ones():
    cfg = StrategyConfig()
    assert cfg.account_equity == 100_000.0
    assert 0.15 <= cfg.hedge_cap <= 0.20
    assert cfg.stress_move_vix_points == 10.0
    assert cfg.modes == ["steward", "promoter"]
    assert LakeResource().root == "data_lake"


@pytest.mark.parametrize("field, value", [("hedge_cap", 0.25), ("hedge_cap", 0.10), ("account_equity", -1.0),
                                          ("stale_threshold", 1.5), ("modes", ["yolo"]), ("modes", [])])
def test_out_of_range_settings_are_refused(field, value):
    with pytest.raises(ValidationError):
        StrategyConfig(**{field: value})


def test_environment_overrides_through_envvar(monkeypatch):
    monkeypatch.setenv("ALVH_SOURCE", "replay")
    monkeypatch.setenv("ALVH_SEED", "11")
    monkeypatch.setenv("ALVH_HEDGE_CAP", "0.16")
    res = build_resources()
    assert res["source"].kind.env_var_name == "ALVH_SOURCE"  # resolved at launch, shown as env in the UI
    assert res["source"].seed.env_var_name == "ALVH_SEED"
    assert res["strategy"].hedge_cap == 0.16


def test_bad_float_in_environment_is_named(monkeypatch):
    monkeypatch.setenv("ALVH_HEDGE_CAP", "lots")
    with pytest.raises(ValueError, match="ALVH_HEDGE_CAP='lots' is not a number"):
        build_resources()


def test_run_config_sets_a_value_and_is_validated():
    @dg.asset
    def cap(strategy: StrategyConfig) -> float:
        return strategy.hedge_cap

    ok = dg.materialize([cap], resources={"strategy": StrategyConfig()},
                        run_config={"resources": {"strategy": {"config": {"hedge_cap": 0.15}}}})
    assert ok.output_for_node("cap") == 0.15
    bad = dg.materialize([cap], resources={"strategy": StrategyConfig()}, raise_on_error=False,
                         run_config={"resources": {"strategy": {"config": {"hedge_cap": 0.3}}}})
    assert not bad.success


def test_only_the_config_module_reads_the_environment():
    from pathlib import Path

    import alvh_pipeline

    root = Path(alvh_pipeline.__file__).parent
    readers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if "os.environ" in p.read_text())
    assert readers == ["resources.py"]
