"""The lineage as one ordered list: `LAYERS`. The Dagster definitions, the jobs, the CLI's run
order and its history planning, and the end-to-end tests are all generated from it.

A layer names its asset groups (= the lake layers it writes), the module that builds its assets
and checks (`assets`, `checks` lists), whether it is stateful (day t starts from day t-1: backfilled
in one run, in order), whether its runs must follow each other (`ordered_runs`: a run reads what
the layer's earlier runs wrote; `run_schedule` runs the others side by side) and
`reads_from(start)`: the first day of the layer before that a run starting at `start` reads (its
look-back). A layer's assets without partitions (`asset_keys(partitioned=False)`: attribution's
reports over every day its tables hold) are planned as one run after all its partitioned ones, as
an asset backfill materializes them.

Adding a layer = a core module + `assets/<layer>.py` + one entry here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from alvh_pipeline.core import feature_sets, signal_sets
from alvh_pipeline.core.calendar import FIRST_PARTITION, sessions_between, window_start
from alvh_pipeline.core.inputs import Input
from alvh_pipeline.partitions import DAY_LOCAL, STATEFUL


def _same_start(start) -> pd.Timestamp:
    return pd.Timestamp(start)


def _previous_session(start) -> pd.Timestamp:
    return window_start(start, 1)


@dataclass(frozen=True)
class Layer:
    name: str  # also the name of its job
    groups: tuple[str, ...]  # asset groups = lake layers it writes
    module: str  # builds `assets` and `checks`
    description: str
    stateful: bool = False
    ordered_runs: bool = False
    reads_from: Callable[[pd.Timestamp], pd.Timestamp] = _same_start

    @property
    def backfill_policy(self) -> dg.BackfillPolicy:
        # day-local layers: a year of sessions per run (bounded memory); stateful ones: one run, in order
        return STATEFUL if self.stateful else DAY_LOCAL

    @property
    def runs_in_order(self) -> bool:
        return self.stateful or self.ordered_runs

    def definitions(self) -> tuple[list, list]:
        """(assets, asset checks) of the layer."""
        module = importlib.import_module(self.module)
        return list(module.assets), list(module.checks)

    def inputs(self) -> dict[str, tuple[Input, ...]]:
        """What each of the layer's partitioned tables ("layer/table") reads (the module's `inputs`;
        a source layer reads none)."""
        return dict(getattr(importlib.import_module(self.module), "inputs", {}))

    def asset_keys(self, partitioned: bool) -> list[dg.AssetKey]:
        """The keys of the layer's partitioned assets, or of its reports (no partitions)."""
        return [key for asset in self.definitions()[0] if (asset.partitions_def is not None) == partitioned
                for key in asset.keys]


LAYERS: tuple[Layer, ...] = (
    Layer("ingest", ("raw", "validated"), "alvh_pipeline.assets.ingest",
          "raw/* -> GE checks -> validated/* for the selected trading days",
          # the gate compares each session's delivery with the 20 raw sessions before it (`cli run`
          # runs the deliveries and the gate apart instead: a gate waits for the deliveries it reads)
          ordered_runs=True),
    Layer("features", ("features",), "alvh_pipeline.assets.features",
          "features/* for the selected days (their look-back must be in validated/*)",
          reads_from=feature_sets.history_start),
    Layer("signals", ("signals",), "alvh_pipeline.assets.signals",
          "signals/* for the selected days (their feature history must be in features/*)",
          reads_from=signal_sets.history_start),
    Layer("books", ("books",), "alvh_pipeline.assets.books",
          "books/* (condor, stat-arb, hedge ladder, account, trades) for the selected days, in order, from the "
          "books state of the session before", stateful=True),
    Layer("benchmarks", ("benchmarks",), "alvh_pipeline.assets.benchmarks",
          "benchmarks/indexes (Cboe CNDR, PUT, BXM replicated on validated/spx_options) for the selected days, in "
          "order, from the benchmark rows of the session before; then their comparison with Cboe's published "
          "returns and the chain model's calibration report", stateful=True),
    Layer("attribution", ("attribution",), "alvh_pipeline.assets.attribution",
          "attribution/daily_pnl for the selected days, then performance, stress windows, the verdict and the "
          "tearsheet over everything the books hold", reads_from=_previous_session),
)

REPORTS_RUN = "/reports"  # a planned run's layer name + this: the layer's reports, after all its partitioned runs


def layer(name: str, layers: Sequence[Layer] = LAYERS) -> Layer:
    for entry in layers:
        if entry.name == name:
            return entry
    raise KeyError(f"no layer named {name!r}; layers: {[entry.name for entry in layers]}")


@dataclass(frozen=True)
class Step:
    layer: Layer
    start: pd.Timestamp
    end: pd.Timestamp
    tables: tuple[str, ...] = ()  # "layer/table" of the partitioned assets to run; () = all of the layer's


def plan(start, end, layers: Sequence[Layer] = LAYERS) -> list[Step]:
    """The runs that materialize [start, end] of the last layer from the source: each layer over
    the range the layer after it reads, in lineage order. No layer starts before the first
    partition: there is no history to read before it (the checks say so where a look-back is short)."""
    steps, first = [], pd.Timestamp(start)
    for entry in reversed(layers):
        steps.append(Step(entry, first, pd.Timestamp(end)))
        first = max(entry.reads_from(first), pd.Timestamp(FIRST_PARTITION))
    return steps[::-1]


def table_starts(start, layers: Sequence[Layer] = LAYERS) -> dict[str, pd.Timestamp]:
    """The first session of each partitioned table ("layer/table") that materializing the last
    layer from `start` on reads, through the declared inputs of every layer after it (`Input`):
    `start` itself, or the earliest day a reader of the table reads for its own first day. The
    look-back is per table: only the vol surface is read two years back, the pair features one
    year before the first signal, most other features not before it."""
    start = pd.Timestamp(start)
    need: dict[str, pd.Timestamp] = {}
    readers: list[tuple[pd.Timestamp, Input]] = []
    for entry in reversed(layers):
        keys = [key.to_user_string() for key in entry.asset_keys(partitioned=True)]
        for asset in entry.definitions()[0]:
            if asset.partitions_def is None:
                continue
            written = [key.to_user_string() for key in asset.keys]  # one computation: its tables start together
            firsts = [i.first_day(pd.DatetimeIndex([at])) for at, i in readers if f"{i.layer}/{i.table}" in written]
            for key in written:
                need[key] = max(min([start, *firsts]), pd.Timestamp(FIRST_PARTITION))
        _start_together(need, keys)
        own = entry.inputs()
        readers += [(need[key], i) for key in keys for i in own.get(key, ())]
    return need


MIN_STEP_SESSIONS = 21  # a layer's tables whose first days are closer than this start together


def _start_together(need: dict[str, pd.Timestamp], keys: list[str]) -> None:
    """Move each table's first day back to an earlier first day of the same layer that is fewer
    than MIN_STEP_SESSIONS sessions before it: a run of a few sessions would read its tables'
    look-back for little (a one-session features run cost 6-11 s)."""
    firsts = sorted({need[k] for k in keys})
    anchor = {}
    for first in firsts:
        earlier = [a for a in anchor.values() if len(sessions_between(a, first)) <= MIN_STEP_SESSIONS]
        anchor[first] = min(earlier) if earlier else first
    for k in keys:
        need[k] = anchor[need[k]]


def table_plan(start, end, layers: Sequence[Layer] = LAYERS) -> list[Step]:
    """The runs that materialize [start, end] of the last layer, table by table: each layer over
    the days its tables are read (`table_starts`), cut where the set of tables changes (a step
    with `tables` runs only those). A source layer (ingest) runs whole from its earliest table:
    its gate compares tables with each other day by day."""
    need = table_starts(start, layers)
    end = pd.Timestamp(end)
    steps = []
    for entry in layers:
        keys = [key.to_user_string() for key in entry.asset_keys(partitioned=True)]
        firsts = sorted({need[k] for k in keys})
        if not entry.inputs():
            steps.append(Step(entry, firsts[0], end))
            continue
        for i, first in enumerate(firsts):
            last = window_start(firsts[i + 1], 1) if i + 1 < len(firsts) else end
            if last < first:
                continue
            tables = () if i + 1 == len(firsts) else tuple(k for k in keys if need[k] <= first)
            steps.append(Step(entry, first, last, tables))
    return steps
