"""The PostgreSQL event log (`deploy/dagster.postgres.yaml`, the `scale` extra): dagster-postgres'
`PostgresEventLogStorage` with the embedded instance's handling of range runs' check rows
(`instance_storage.RangeRunCheckRows`: a range run's check result on every partition it planned,
the rows without the run's partition subset). Its own module: dagster-postgres is an optional
dependency, so `instance_storage` (the default instance's storage) must not import it.

It also turns on Dagster's event batches (`DAGSTER_EVENT_BATCH_SIZE`, unless the environment sets
it): dagster-postgres writes a batch of materializations in one multi-row insert.
"""

from collections.abc import Mapping
from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres import PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

from alvh_pipeline.instance_storage import RangeRunCheckRows
from alvh_pipeline.resources import enable_event_batches


class RangeCheckPostgresEventLogStorage(RangeRunCheckRows, PostgresEventLogStorage):
    """`PostgresEventLogStorage` with range runs' check rows (module doc)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        enable_event_batches()
        super().__init__(*args, **kwargs)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
                          ) -> "RangeCheckPostgresEventLogStorage":
        # dagster-postgres' own builds its class by name, not `cls`: the same arguments here
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))
