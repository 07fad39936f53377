"""One trading-day partitions definition for the whole graph: NYSE sessions from 1999-01-04,
weekends and exchange holidays (from `exchange_calendars`, not a hand list) excluded.

`end_offset=1` makes the current session a partition from midnight on, so the nightly schedule
(after the close) can materialize today's partition."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from alvh_pipeline.core.calendar import FIRST_PARTITION, weekday_holidays

PARTITION_FMT = "%Y-%m-%d"
TIMEZONE = "America/New_York"


def _exclusions() -> list[datetime]:
    # Dagster matches exclusions against partition start times: midnight datetimes, not strings
    return [datetime(d.year, d.month, d.day) for d in weekday_holidays()]


trading_days = dg.TimeWindowPartitionsDefinition(
    start=datetime.strptime(FIRST_PARTITION, PARTITION_FMT),
    fmt=PARTITION_FMT,
    cron_schedule="0 0 * * 1-5",
    timezone=TIMEZONE,
    end_offset=1,
    exclusions=_exclusions(),
)


# A UI backfill of years runs one run per year of sessions, not one per day: a year is one
# source pass, one GE validation per table and one feature computation, and memory stays bounded
# (~1-2 GiB a run; a decade in a single run would hold ~36 M option quotes at once). Each layer's
# policy is `layers.Layer.backfill_policy`: DAY_LOCAL for day-local layers, STATEFUL (one run, day t
# from day t-1) for the books and benchmarks; the asset modules take it from here, so they never
# import `layers` (which imports them), and tests/test_layers.py checks they agree with their layer.
SESSIONS_PER_BACKFILL_RUN = 252
DAY_LOCAL = dg.BackfillPolicy.multi_run(max_partitions_per_run=SESSIONS_PER_BACKFILL_RUN)
STATEFUL = dg.BackfillPolicy.single_run()
