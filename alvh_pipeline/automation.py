"""Jobs and schedules: ingest (raw + checks + validated), and the nightly run of the latest
session after the New York close."""


import dagster as dg
import pandas as pd

from alvh_pipeline.core.calendar import is_session
from alvh_pipeline.partitions import TIMEZONE, trading_days

ingest_job = dg.define_asset_job(
    "ingest", selection=dg.AssetSelection.groups("raw", "validated"), partitions_def=trading_days,
    description="raw/* -> GE checks -> validated/* for the selected trading days",
)
analytics_job = dg.define_asset_job(
    "analytics", selection=dg.AssetSelection.groups("features", "signals"), partitions_def=trading_days,
    description="features/* and signals/* for the selected days (their look-back must be in validated/*)",
)
features_job = dg.define_asset_job(
    "features", selection=dg.AssetSelection.groups("features"), partitions_def=trading_days,
    description="features/* for the selected days (their look-back must be in validated/*)",
)
signals_job = dg.define_asset_job(
    "signals", selection=dg.AssetSelection.groups("signals"), partitions_def=trading_days,
    description="signals/* for the selected days (their feature history must be in features/*)",
)
everything_job = dg.define_asset_job("all_layers", selection=dg.AssetSelection.all(), partitions_def=trading_days)


@dg.schedule(cron_schedule="30 18 * * 1-5", execution_timezone=TIMEZONE, job=everything_job,
             default_status=dg.DefaultScheduleStatus.STOPPED)
def nightly(context: dg.ScheduleEvaluationContext):
    """After the close (18:30 New York), materialize today's session; skip exchange holidays."""
    day = context.scheduled_execution_time.astimezone(pd.Timestamp.now(TIMEZONE).tz)
    key = day.strftime("%Y-%m-%d")
    if not is_session([pd.Timestamp(key)])[0]:
        return dg.SkipReason(f"{key} is not an NYSE session")
    return dg.RunRequest(run_key=key, partition_key=key)
