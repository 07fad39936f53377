"""Jobs and schedules, generated from `layers.LAYERS`: one job per layer, `analytics` (every
layer computed from the lake, i.e. all but the first), `all_layers`, and the nightly run of the
latest session after the New York close."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd

from alvh_pipeline.core.calendar import is_session
from alvh_pipeline.layers import LAYERS, Layer
from alvh_pipeline.partitions import TIMEZONE, trading_days

if TYPE_CHECKING:  # the job type is not exported at Dagster's top level
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

ALL_LAYERS_JOB = "all_layers"


def layer_job(layer: Layer) -> UnresolvedAssetJobDefinition:
    return dg.define_asset_job(layer.name, selection=dg.AssetSelection.groups(*layer.groups),
                               partitions_def=trading_days, description=layer.description)


def build_jobs(layers: Sequence[Layer] = LAYERS) -> list[UnresolvedAssetJobDefinition]:
    downstream = [g for entry in layers[1:] for g in entry.groups]
    return [
        *(layer_job(entry) for entry in layers),
        dg.define_asset_job("analytics", selection=dg.AssetSelection.groups(*downstream), partitions_def=trading_days,
                            description=f"{', '.join(e.name for e in layers[1:])} for the selected days (their "
                                        f"look-back must be in the lake)"),
        dg.define_asset_job(ALL_LAYERS_JOB, selection=dg.AssetSelection.all(), partitions_def=trading_days,
                            description="every layer for the selected days"),
    ]


def nightly_schedule(job: UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(cron_schedule="30 18 * * 1-5", execution_timezone=TIMEZONE, job=job, name="nightly",
                 default_status=dg.DefaultScheduleStatus.STOPPED)
    def nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        """After the close (18:30 New York), materialize today's session; skip exchange holidays."""
        day = context.scheduled_execution_time.astimezone(pd.Timestamp.now(TIMEZONE).tz)
        key = day.strftime("%Y-%m-%d")
        if not is_session([pd.Timestamp(key)])[0]:
            return dg.SkipReason(f"{key} is not an NYSE session")
        return dg.RunRequest(run_key=key, partition_key=key)

    return nightly
