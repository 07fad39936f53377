"""The single Dagster Definitions of the project, generated from `layers.LAYERS`."""

from collections.abc import Sequence

import dagster as dg

from alvh_pipeline import assets as _assets  # noqa: F401  (silences Dagster's preview warnings first)
from alvh_pipeline.automation import ALL_LAYERS_JOB, build_jobs, nightly_schedule
from alvh_pipeline.executors import executor_def
from alvh_pipeline.layers import LAYERS, Layer
from alvh_pipeline.recovery import orphaned_runs_sensor
from alvh_pipeline.resources import build_resources


def build_definitions(layers: Sequence[Layer] = LAYERS) -> dg.Definitions:
    assets, checks = [], []
    for entry in layers:
        layer_assets, layer_checks = entry.definitions()
        assets += layer_assets
        checks += layer_checks
    jobs = build_jobs(layers)
    everything = next(j for j in jobs if j.name == ALL_LAYERS_JOB)
    return dg.Definitions(assets=assets, asset_checks=checks, jobs=jobs, schedules=[nightly_schedule(everything)],
                          sensors=[orphaned_runs_sensor()], resources=build_resources(),
                          executor=executor_def())


defs = build_definitions()
