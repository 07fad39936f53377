"""The single Dagster Definitions of the project, generated from `layers.LAYERS`."""

from collections.abc import Sequence

import dagster as dg

from alvh_pipeline import assets as _assets  # noqa: F401  (silences Dagster's preview warnings first)
from alvh_pipeline.assets import sweep
from alvh_pipeline.automation import (
    ALL_LAYERS_JOB,
    build_jobs,
    layer_automation_sensor,
    nightly_schedule,
    with_automation,
)
from alvh_pipeline.executors import executor_def
from alvh_pipeline.layers import LAYERS, Layer
from alvh_pipeline.recovery import orphaned_runs_sensor
from alvh_pipeline.resources import build_resources
from alvh_pipeline.sensors import drop_folder_sensor

SWEEP_JOB, SWEEP_REPORT_JOB = "sweep", "sweep_report"


def build_definitions(layers: Sequence[Layer] = LAYERS) -> dg.Definitions:
    assets, checks = [], []
    for entry in layers:
        layer_assets, layer_checks = entry.definitions()
        assets += with_automation(entry, layer_assets, layers)  # the layers after the first follow their upstream
        checks += layer_checks
    jobs = build_jobs(layers)
    everything = next(j for j in jobs if j.name == ALL_LAYERS_JOB)
    ingest = next(j for j in jobs if j.name == layers[0].name)
    # the sensitivity sweep: outside the layers (make run does not run it; `cli sweep` / make sweep does)
    assets += sweep.assets
    checks += sweep.checks
    jobs += [dg.define_asset_job(SWEEP_JOB, selection=[sweep.SCENARIO_KEY], partitions_def=sweep.SCENARIOS),
             dg.define_asset_job(SWEEP_REPORT_JOB, selection=[sweep.ROBUSTNESS_KEY])]
    return dg.Definitions(assets=assets, asset_checks=checks, jobs=jobs, schedules=[nightly_schedule(everything)],
                          sensors=[orphaned_runs_sensor(), drop_folder_sensor(ingest), layer_automation_sensor(layers)],
                          resources=build_resources(),
                          executor=executor_def())


defs = build_definitions()
