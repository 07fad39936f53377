"""What a computation reads from the lake, as data: which layer and table, from which day (a
function of the run's dates), which columns. Feature sets, signal sets and the layers after them
declare their inputs with it; the Dagster shell reads them, the history check finds the days that
are missing, and the run planner (`layers.plan`) derives how much of the layer before to
materialize. No Dagster import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from alvh_pipeline.core.calendar import all_sessions, window_start


def same_days(dates: pd.DatetimeIndex) -> pd.Timestamp:
    return dates[0]


def lookback(sessions: int) -> Callable[[pd.DatetimeIndex], pd.Timestamp]:
    """First day read = `sessions` sessions before the run's first day."""

    def first_day(dates: pd.DatetimeIndex) -> pd.Timestamp:
        return window_start(dates[0], sessions)

    return first_day


@dataclass(frozen=True)
class Input:
    layer: str  # lake layer: "validated", "features", ...
    table: str
    first_day: Callable[[pd.DatetimeIndex], pd.Timestamp] = same_days  # of the run's dates
    columns: tuple[str, ...] | None = None
    required: bool = True  # missing days make the reader's check fail

    def days(self, dates: pd.DatetimeIndex) -> pd.DatetimeIndex:
        """The sessions this input must hold for a run over `dates`."""
        s = all_sessions()
        return s[(s >= self.first_day(dates)) & (s <= dates[-1])]


def first_day_read(inputs, start, layer: str) -> pd.Timestamp:
    """Earliest day of `layer` that any of `inputs` reads for a run starting at `start`."""
    dates = pd.DatetimeIndex([pd.Timestamp(start)])
    days = [i.first_day(dates) for i in inputs if i.layer == layer]
    return min(days) if days else pd.Timestamp(start)
