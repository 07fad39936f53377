"""The single Dagster Definitions of the project."""

from __future__ import annotations

import dagster as dg

from alvh_pipeline.assets.ingest import ingest_assets, ingest_checks
from alvh_pipeline.automation import everything_job, ingest_job, nightly
from alvh_pipeline.resources import lake_from_env
from alvh_pipeline.sources.resource import source_from_env

defs = dg.Definitions(
    assets=[*ingest_assets],
    asset_checks=[*ingest_checks],
    jobs=[ingest_job, everything_job],
    schedules=[nightly],
    resources={"source": source_from_env(), "lake": lake_from_env()},
)
