"""The single Dagster Definitions of the project."""

from alvh_pipeline.assets.features import feature_assets, feature_checks
from alvh_pipeline.assets.ingest import ingest_assets, ingest_checks
from alvh_pipeline.assets.signals import signal_assets, signal_checks
from alvh_pipeline.automation import analytics_job, everything_job, features_job, ingest_job, nightly, signals_job
from alvh_pipeline.resources import lake_from_env
from alvh_pipeline.sources.resource import source_from_env

import dagster as dg

defs = dg.Definitions(
    assets=[*ingest_assets, *feature_assets, *signal_assets],
    asset_checks=[*ingest_checks, *feature_checks, *signal_checks],
    jobs=[ingest_job, features_job, signals_job, analytics_job, everything_job],
    schedules=[nightly],
    resources={"source": source_from_env(), "lake": lake_from_env()},
)
