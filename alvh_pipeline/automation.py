"""Jobs, schedules and declarative automation, generated from `layers.LAYERS`: one job per layer,
`analytics` (every layer computed from the lake, i.e. all but the first), `all_layers`, the nightly
run of the latest session after the New York close (the safety net), and the automation conditions
by which every layer after the first follows its upstream (`with_automation`), evaluated by
`layer_automation_sensor`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import dagster as dg
import pandas as pd

from alvh_pipeline.core.calendar import is_session
from alvh_pipeline.layers import LAYERS, Layer
from alvh_pipeline.partitions import TIMEZONE, trading_days
from alvh_pipeline.recovery import HOST_TAG

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
        # every layer's groups, not AssetSelection.all(): the sweep (partitioned by scenario) is no layer
        dg.define_asset_job(ALL_LAYERS_JOB, selection=dg.AssetSelection.groups(*(g for e in layers for g in e.groups)),
                            partitions_def=trading_days,
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


# ---- declarative automation: every layer after the first follows its upstream ------------------
#
# The rule is Dagster's `eager()` without its `in_latest_time_window()` (which would follow only the
# newest session, never a vendor correction or a UI run of an older day; and eager's
# `newly_missing()` branch without that window would request every session since 1999): a
# partition is requested once after a dependency's partition of the same session was updated,
# when no dependency of that session is missing or being computed, every blocking check on them
# passed, and it is not being computed itself; so each layer follows one tick (30 s) after the one
# before it has landed and passed its gate. `on_cron` does not fit: it waits for a cron tick and
# for *all* deps to update after it, which one day of one table never does.
#
# Why three small conditions instead of composing Dagster's built-ins (`any_deps_updated()
# .since_last_handled() & ~any_deps_missing() & ...`): the automation cursor stores every cursored
# node's subsets, and a subset of `trading_days` serializes the whole partitions definition with
# its 270 holiday exclusions (27 KB). The built-in composition keeps ~70 such nodes for a books
# asset (one per dep per `~`): 25-40 MB of cursor for these layers, serialized and written on every
# tick. These conditions keep one (the pending partitions, as a JSON list) per asset: ~45 KB an
# asset, 0.9 MB a tick for the 21 assets, evaluated in ~0.5-1 s.
# They are Python, so `layer_automation_sensor` evaluates them on the user code server.
#
# What Dagster's partition mapping does not see: the look-backs (features read up to a year of
# validated/*, signals about two years of features, books the state of the day before) are read
# from the lake, not declared as partition deps. A partition is requested when its own session
# updates upstream; a missing look-back is caught by the layers' blocking checks (signal_check
# fails while the feature history is incomplete), which hold back what follows. A restated old
# day is recomputed through every layer for that day only; the later days whose look-back (or
# books state) contains it are a backfill from that day, as before.
#
# Updates made by `cli run` never trigger anything: it runs every layer of its plan itself (its
# runs carry HOST_TAG, set by cli.run_job), and `make ui` may be running beside it.


def _runs(instance: dg.DagsterInstance, run_ids: set[str]) -> dict[str, dg.DagsterRun]:
    ids = [r for r in run_ids if r]
    if not ids:
        return {}
    return {rec.dagster_run.run_id: rec.dagster_run for rec in instance.get_run_records(dg.RunsFilter(run_ids=ids))}


# Per evaluation (one AssetGraphView per tick): the partitions of each asset that an upstream run
# is about to change: a dependency requested in this tick, being computed, or itself about to
# change. Assets are evaluated upstream first, so this reaches every level below a requested one:
# a report two steps below (tearsheet <- verdict <- stress) waits instead of running now and
# again once its direct dep has caught up. Missing data does not propagate (nothing is coming).
_SETTLING: WeakKeyDictionary[object, dict[dg.AssetKey, set[str | None]]] = WeakKeyDictionary()


async def _settling(context: dg.AutomationContext) -> set[str | None]:
    view = context.asset_graph_view
    graph = context.asset_graph
    known = _SETTLING.setdefault(view, {})
    partitioned = context.partitions_def is not None
    out: set[str | None] = set()
    for dep in graph.get(context.key).parent_entity_keys:
        if not isinstance(dep, dg.AssetKey):
            continue
        full = view.get_full_subset(key=dep)
        moving = await view.compute_run_in_progress_subset(key=dep, from_subset=full)
        moving = moving.compute_union(await view.compute_backfill_in_progress_subset(key=dep, from_subset=full))
        requested = context.request_subsets_by_key.get(dep)
        if requested is not None:
            moving = moving.compute_union(requested)
        dep_partitioned = graph.get(dep).partitions_def is not None
        parts = set(moving.expensively_compute_partition_keys()) if dep_partitioned else (
            set() if moving.is_empty else {None})
        parts |= known.get(dep, set())
        if not partitioned:
            out |= {None} if parts else set()
        elif dep_partitioned:  # the same session upstream (every layer shares `trading_days`)
            out |= {p for p in parts if p is not None}
    known[context.key] = out
    return out


class UpstreamUpdated(dg.AutomationCondition):
    """True for each partition of this asset whose session was updated upstream (a dependency's
    materialization of that session; every session for an unpartitioned asset) since the partition
    was last requested or materialized. Ignored: updates by `cli run` (HOST_TAG), by a run that also
    targeted this asset (the nightly all_layers run), updates this asset already followed, and
    updates of `ignore_groups`. The first evaluation only starts watching (like
    `since_last_handled()`). Its cursor is the JSON list of pending partitions. It also records
    which partitions an upstream run is about to change (`_SETTLING`, read by `UpstreamReady`)."""

    def __init__(self, ignore_groups: Sequence[str] = ()) -> None:
        self.ignore_groups = tuple(ignore_groups)

    @property
    def name(self) -> str:
        return "upstream_updated_since_handled"

    @property
    def description(self) -> str:
        return "a dependency's partition of this session was updated since this one was requested or updated"

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        await _settling(context)
        previous = context.previous_temporal_context
        now = context.max_storage_id
        pending: set[str | None] = set(json.loads(context.cursor)) if context.cursor else set()
        if previous is None or now is None:
            return dg.AutomationResult(context, context.get_empty_subset(), cursor=json.dumps(sorted(pending, key=str)))
        instance = context.asset_graph_view.instance
        graph = context.asset_graph
        partitioned = context.partitions_def is not None

        def updates(key: dg.AssetKey) -> list:
            return list(instance.get_asset_event_summary_records(
                dg.DagsterEventType.ASSET_MATERIALIZATION, asset_key=key,
                after_storage_id=previous.last_event_id or 0, before_storage_id=now + 1, ascending=True))

        mine = {r.partition: r.storage_id for r in updates(context.key)}  # ascending: the latest per partition
        deps = [k for k in graph.get(context.key).parent_entity_keys
                if isinstance(k, dg.AssetKey) and graph.get(k).group_name not in self.ignore_groups]
        theirs = [r for k in sorted(deps, key=str) for r in updates(k)]
        runs = _runs(instance, {r.run_id for r in theirs})
        triggered: set[str | None] = set()
        for r in theirs:
            run = runs.get(r.run_id or "")
            if run is not None and (HOST_TAG in run.tags or context.key in (run.asset_selection or ())):
                continue
            part = r.partition if partitioned else None
            if mine.get(part, -1) > r.storage_id:  # this asset was recomputed after that update
                continue
            triggered.add(part)
        requested = context.get_previous_requested_subset(context.key)
        if requested is None or requested.is_empty:
            handled: set[str | None] = set()
        else:
            handled = set(requested.expensively_compute_partition_keys()) if partitioned else {None}
        pending = (pending - handled - set(mine)) | triggered
        if partitioned:
            true = context.candidate_subset.compute_intersection_with_partition_keys({p for p in pending if p})
        else:
            true = context.candidate_subset if None in pending else context.get_empty_subset()
        return dg.AutomationResult(context, true, cursor=json.dumps(sorted(pending, key=str)))


class UpstreamReady(dg.AutomationCondition):
    """True for each candidate partition whose dependencies of that session are materialized (not
    for an unpartitioned asset: every session since 1999 would be a dep) with every blocking check
    on them passed for their latest materialization, that no upstream run is about to change
    (`_SETTLING`: a dep requested in this tick, being computed, or itself waiting on one; any session
    for an unpartitioned asset), and that is not being computed itself. So each layer runs one
    tick after the one before it, once its gate has passed. Evaluated after `UpstreamUpdated`."""

    @property
    def name(self) -> str:
        return "upstream_ready"

    @property
    def description(self) -> str:
        return "dependencies of this session present, checked and settled; this partition not in progress"

    @property
    def requires_cursor(self) -> bool:
        return False

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionResolvedStatus

        view = context.asset_graph_view
        graph = context.asset_graph
        subset = context.candidate_subset
        if subset.is_empty:
            return dg.AutomationResult(context, subset)
        settling = _SETTLING.get(view, {}).get(context.key, set())
        partitions = context.partitions_def
        if partitions is None:
            if settling:
                return dg.AutomationResult(context, context.get_empty_subset())
        else:
            subset = subset.compute_intersection_with_partition_keys(
                set(subset.expensively_compute_partition_keys()) - settling)
        subset = subset.compute_difference(await view.compute_run_in_progress_subset(key=context.key,
                                                                                    from_subset=subset))
        subset = subset.compute_difference(await view.compute_backfill_in_progress_subset(key=context.key,
                                                                                         from_subset=subset))
        if partitions is None:
            return dg.AutomationResult(context, subset)
        for dep in sorted(graph.get(context.key).parent_entity_keys, key=str):
            dep_partitions = graph.get(dep).partitions_def if isinstance(dep, dg.AssetKey) else None
            if subset.is_empty or dep_partitions != partitions:  # same-session deps only
                continue
            keys = set(subset.expensively_compute_partition_keys())
            mine = view.get_subset_from_partition_keys(dep, dep_partitions, keys)
            missing = await view.compute_missing_subset(key=dep, from_subset=mine)
            keys -= set(missing.expensively_compute_partition_keys())
            for check in sorted(graph.get(dep).check_keys, key=str):
                if not graph.get(check).blocking or not keys:
                    continue
                probe = view.get_subset_from_partition_keys(check, dep_partitions, keys)
                passed = await view.compute_subset_with_status(
                    key=check, status=AssetCheckExecutionResolvedStatus.SUCCEEDED, from_subset=probe)
                keys &= set(passed.expensively_compute_partition_keys())
            subset = subset.compute_intersection_with_partition_keys(keys)
        return dg.AutomationResult(context, subset)


class PreviousPartitionReady(dg.AutomationCondition):
    """True for a time partition whose previous partition (the session before) of the same asset is
    materialized, or is itself true in this evaluation: a stateful layer never computes day t before
    the state of t-1 exists, and a contiguous stretch of new days is requested together (one
    backfill, computed in order by the layer's single-run policy). The first partition of the
    definition has no previous one and is ready. Never true at an inception elsewhere (books before
    the first day the lake holds): starting the books is a deliberate backfill or `cli run`."""

    @property
    def name(self) -> str:
        return "previous_partition_ready"

    @property
    def description(self) -> str:
        return "the previous partition of this asset is materialized, or requested with it"

    @property
    def requires_cursor(self) -> bool:
        return False

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        subset = context.candidate_subset
        partitions = context.partitions_def
        if subset.is_empty or not isinstance(partitions, dg.TimeWindowPartitionsDefinition):
            return dg.AutomationResult(context, subset)  # nothing to order
        keys = sorted(subset.expensively_compute_partition_keys())  # %Y-%m-%d: text order is time order
        previous = {k: _previous_key(partitions, k) for k in keys}
        wanted = {p for p in previous.values() if p is not None}
        view = context.asset_graph_view
        probe = view.get_subset_from_partition_keys(context.key, partitions, wanted)
        missing = await view.compute_missing_subset(key=context.key, from_subset=probe)
        materialized = wanted - set(missing.expensively_compute_partition_keys())
        ready: set[str] = set()
        for key in keys:  # ascending: a previous key that is itself a candidate was decided first
            before = previous[key]
            if before is None or before in materialized or before in ready:
                ready.add(key)
        return dg.AutomationResult(context, subset.compute_intersection_with_partition_keys(ready))


def _previous_key(partitions: dg.TimeWindowPartitionsDefinition, key: str) -> str | None:
    window = partitions.get_prev_partition_window(partitions.start_time_for_partition_key(key))
    return None if window is None else window.start.strftime(partitions.fmt)


def follows_upstream(ignore_groups: Sequence[str] = ()) -> dg.AutomationCondition:
    """A day-local partition (or a report): recomputed once after its session updated upstream,
    when that session is present, checked and idle upstream. `UpstreamUpdated` comes first: it sees
    every partition (its cursor then stores no candidate subset) and narrows them for the rest."""
    return (UpstreamUpdated(ignore_groups) & UpstreamReady()).with_label("follows_upstream")


def follows_upstream_in_order() -> dg.AutomationCondition:
    """A stateful layer (day t starts from day t-1): `follows_upstream`, and the previous day first."""
    return (UpstreamUpdated() & UpstreamReady() & PreviousPartitionReady()).with_label("follows_upstream_in_order")


def layer_condition(layer: Layer, spec: dg.AssetSpec, layers: Sequence[Layer] = LAYERS) -> dg.AutomationCondition:
    if spec.partitions_def is None:
        # a report over every day held follows the books' history, not each ingest of a table it
        # also reads (T-bill rates): that ingest reaches it through the books
        return follows_upstream(ignore_groups=layers[0].groups)
    return follows_upstream_in_order() if layer.stateful else follows_upstream()


def with_automation(layer: Layer, assets: Sequence[dg.AssetsDefinition],
                    layers: Sequence[Layer] = LAYERS) -> list[dg.AssetsDefinition]:
    """The layer's assets with the registry's automation condition on each asset that does not
    declare its own. The first layer is fed by the source (drop-folder sensor, nightly schedule,
    the UI), so it gets none."""
    if layer == layers[0]:
        return list(assets)

    def condition(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.automation_condition is not None:
            return spec
        return spec.replace_attributes(automation_condition=layer_condition(layer, spec, layers))

    return [a.map_asset_specs(condition) for a in assets]


def layer_automation_sensor(layers: Sequence[Layer] = LAYERS,
                            minimum_interval_seconds: int = 30) -> dg.AutomationConditionSensorDefinition:
    """Evaluates the automation conditions of every layer after the first. Dagster's implicit
    `default_automation_condition_sensor` starts STOPPED (toggled in the UI) and runs in the daemon,
    which cannot evaluate Python conditions: this one runs by default, on the user code server (at
    most 500 assets and checks per sensor; these layers have ~20). Assets it does not target (the
    first layer's, e.g. validated/* with its own eager condition) stay with Dagster's implicit
    sensor, as before."""
    groups = [g for entry in layers[1:] for g in entry.groups]
    return dg.AutomationConditionSensorDefinition(
        "layer_automation", target=dg.AssetSelection.groups(*groups), use_user_code_server=True,
        default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=minimum_interval_seconds,
        description="every layer after the first follows its upstream (alvh_pipeline.automation.follows_upstream)")
