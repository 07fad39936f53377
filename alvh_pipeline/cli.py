"""`python -m alvh_pipeline.cli run [--start D --end D | --days N]`: materialize the lineage for a
range of sessions on the project's Dagster instance (DAGSTER_HOME), then print where the results
are and what the checks said.

Each table of each layer of `layers.LAYERS` over the days the layers after it read
(`layers.table_plan`): the last layer over the requested range, each table before over that plus
the look-back its readers declare (the vol surface two years, the pair features the model's
training year, most features none). A layer's range is cut into runs at calendar years
(`run_chunks`); a stateful layer's runs follow each other,
each starting from the state the one before left in the lake. The source layer's runs come in two:
its deliveries (raw/*), side by side, then its gate and validated/* once the deliveries it compares
with are written (`scheduled_runs`). The runs go on `ALVH_RUN_WORKERS` worker processes
(default 2), each as soon as what it reads is written, the oldest sessions first (`run_schedule`);
a layer's reports (attribution's performance, stress, verdict, tearsheet) in one run after all its
partitioned runs, as a UI asset backfill materializes them.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import pandas as pd

from alvh_pipeline.core.calendar import FIRST_PARTITION, all_sessions, sessions_between
from alvh_pipeline.layers import LAYERS, REPORTS_RUN, Layer, Step, layer, table_plan, table_starts
from alvh_pipeline.run_schedule import PlannedRun, execute, oldest_first, planned_runs

if TYPE_CHECKING:
    import dagster as dg

    from alvh_pipeline.lake import Lake

LOG_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def default_range(days: int, today: pd.Timestamp | None = None) -> tuple[str, str]:
    """The last `days` completed sessions before today."""
    today = (today or pd.Timestamp.now(tz="America/New_York")).tz_localize(None).normalize()
    s = sessions_between(today - pd.Timedelta(days=3 * days + 10), today - pd.Timedelta(days=1))
    return s[-days].strftime("%Y-%m-%d"), s[-1].strftime("%Y-%m-%d")


class RangeError(ValueError):
    """A --start/--end range the pipeline will not remap silently."""


def check_range(start: str, end: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Both ends must be NYSE sessions (partitions) and start <= end: a weekend, a holiday or a
    reversed range is refused with the nearest sessions named, never moved silently."""
    s = all_sessions()
    out = []
    for name, value in (("--start", start), ("--end", end)):
        try:
            day = pd.Timestamp(value)
        except ValueError:
            raise RangeError(f"{name} {value!r} is not a date (YYYY-MM-DD)") from None
        if day != day.normalize():
            raise RangeError(f"{name} {value!r} has a time of day; give a session date (YYYY-MM-DD)")
        if day < pd.Timestamp(FIRST_PARTITION) or day > s[-1]:
            raise RangeError(f"{name} {day.date()} is outside the partitions ({FIRST_PARTITION}..{s[-1].date()})")
        if day not in s:
            before, after = s[s < day][-1], s[s > day][0]
            raise RangeError(f"{name} {day.date()} ({day.day_name()}) is not an NYSE session; the nearest sessions "
                             f"are {before.date()} and {after.date()}")
        out.append(day)
    if out[1] < out[0]:
        raise RangeError(f"--end {out[1].date()} is before --start {out[0].date()}")
    return out[0], out[1]


def missing_history(steps: list[Step], lake: Lake, layers: tuple[Layer, ...] = LAYERS) -> list[str]:
    """With --skip-history: the look-back each table is read with (`layers.table_starts`) where the
    lake does not hold it (one line per table, with the range to materialize first)."""
    start = steps[0].start
    producer = {g: entry for entry in layers for g in entry.groups}
    out = []
    for key, first in table_starts(start, layers).items():
        group, table = key.split("/", 1)
        need = sessions_between(first, start - pd.Timedelta(days=1))
        if not len(need) or group == producer[group].groups[0] != producer[group].groups[-1]:
            continue  # nothing before the range; a source's deliveries (raw/*) are not read after it
        gap = need.difference(pd.DatetimeIndex(pd.to_datetime(lake.partitions(group, table, need[0], need[-1]))))
        if len(gap):
            out.append(f"{key} lacks {len(gap)} of the {len(need)} look-back sessions the full plan reads "
                       f"({gap[0].date()}..{gap[-1].date()}): materialize `{producer[group].name}` over "
                       f"{need[0].date()}..{need[-1].date()} first (or run without --skip-history)")
    return out


def print_verdict(lake: Lake) -> None:
    """The answer the product exists for, as the verdict asset wrote it (if it ran)."""
    try:
        md = lake.read_document("attribution", "verdict", "verdict.md").decode()
    except FileNotFoundError:
        return
    print("\nVerdict: can a small account run stat-arb plus a layered VIX hedge without being crushed on "
          "the VIX futures leg?\n")
    print(md)
    try:  # how far the model chains can be trusted: Cboe's indexes replicated on them (benchmarks/comparison)
        table = lake.read_table("benchmarks", "comparison")
    except FileNotFoundError:
        return
    if len(table):
        print("\nCboe benchmarks replicated on this lake's option chains (replicated vs published, %):")
        for _, r in table.iterrows():
            target = (f"tolerance {r['tolerance_pts']:.0f}, out-of-sample" if r["sample"] == "out"
                      else f"in-sample: mean |error| <= {r['tolerance_pts']:.0f} per index")
            print(f"  {r['index']:4s} {r['period']:16s} {r['replicated_pct']:+7.2f} vs {r['published_pct']:+7.2f}  "
                  f"error {r['error_pts']:+6.2f} pts ({target})")


def print_refusal(runs: list[PlannedRun], done: dict, lake: Lake) -> None:
    """After a run that stopped: which runs failed or never ran, and no verdict. The lake's verdict
    is an earlier run's, not this range's answer, so it is named with its date, not printed."""
    failed = [r for r in runs if r in done and not done[r][0]]
    skipped = [r for r in runs if r not in done]
    print(f"\nREFUSED: {len(failed)} run(s) failed ({', '.join(r.label for r in failed)}); "
          f"{len(skipped)} run(s) after them not run. What failed, and why, is printed above each run's end.")
    written = lake.modified("attribution", "verdict", "verdict.md")
    if written is None:
        print("No verdict: none was ever written to this lake.")
    else:
        print(f"No verdict printed: the lake's attribution/verdict is stale, written {written:%Y-%m-%d %H:%M} "
              f"(UTC) by an earlier run; it does not answer this range until its runs pass.")


def run_plan(start: str, end: str, skip_history: bool = False) -> list[Step]:
    """The steps of `cli run`: with `skip_history`, every layer over the range only."""
    if skip_history:
        return [Step(entry, pd.Timestamp(start), pd.Timestamp(end)) for entry in LAYERS]
    return table_plan(start, end, LAYERS)


def run_chunks(step: Step) -> list[tuple[str, str]]:
    """The runs of one step, in order: one per calendar year (at most 253 sessions; a run holds its
    whole range in memory: one 1,051-session features run peaked at 4 GiB). Every layer's runs end
    on the same days, so a run waits only for the years it reads."""
    days = sessions_between(step.start, step.end)
    years = days.year.to_numpy()
    cuts = [0, *(np.flatnonzero(years[1:] != years[:-1]) + 1), len(days)]
    return [(days[a].strftime("%Y-%m-%d"), days[b - 1].strftime("%Y-%m-%d")) for a, b in zip(cuts[:-1], cuts[1:])
            if b > a]


# a layer's assets, those with / without partitions, or a source layer's deliveries (its first group,
# without their checks) / its gate (those checks and the groups after)
RunPart = Literal["all", "partitioned", "reports", "deliveries", "gate"]
DELIVERIES_RUN, GATE_RUN = "/deliveries", "/gate"  # a planned run's layer name + this: that part of a source


def is_source(entry: Layer) -> bool:
    """A layer that reads no table (ingest): its deliveries and its gate can run apart."""
    return not entry.inputs() and len(entry.groups) > 1


def selection(job_name: str, part: str, tables: tuple[str, ...] = ()) -> tuple[set, set | None]:
    """(asset keys, asset check keys or None = the assets' own) of one run of the layer."""
    import dagster as dg

    entry = layer(job_name)
    assets, checks = entry.definitions()
    if part in ("deliveries", "gate"):
        first = {k for a in assets for k in a.keys if k.path[0] == entry.groups[0]}
        if part == "deliveries":
            return first, set()
        return ({k for a in assets for k in a.keys if k.path[0] != entry.groups[0]},
                {k for c in checks for k in c.check_keys if k.asset_key in first})
    keys = {k for a in assets for k in a.keys} if part == "all" else set(entry.asset_keys(part == "partitioned"))
    if tables:
        keys &= {dg.AssetKey(t.split("/")) for t in tables}
    return keys, None


def run_job(job_name: str, start: str, end: str, shared_terminal: bool = False, part: RunPart = "all",
            tables: tuple[str, ...] = (), recover_first: bool = True) -> bool:
    """One run of the layer's job over [start, end], in this process, on DAGSTER_HOME's instance;
    `part`: "all" assets, only the "partitioned" ones, only the "reports" (no partitions, over
    every day the layer's tables hold), a source layer's "deliveries" or its "gate"; `tables`
    ("layer/table"): only those of the layer's assets; `shared_terminal`: other runs print at the
    same time (progress as lines naming the range); `recover_first`: first close killed runs and
    their staging (`recover_killed_runs`; `cli run` does it once before all its runs)."""
    import uuid

    from alvh_pipeline.definitions import defs
    from alvh_pipeline.progress import RunProgress
    from alvh_pipeline.recovery import HOST_TAG, this_host

    t0 = time.time()
    _freeze_imports()
    job = defs.resolve_job_def(job_name)
    if part not in get_args(RunPart):
        raise ValueError(f"part={part!r}: one of {get_args(RunPart)}")
    keys, check_keys = selection(job_name, part, tables)
    if not keys:
        raise ValueError(f"layer {job_name} has no {part} assets" + (f" among {tables}" if tables else ""))
    if part != "all" or tables:
        job = job.get_subset(asset_selection=keys, asset_check_selection=check_keys)
    steps = len(job.graph.nodes)
    instance = _instance()
    if recover_first:
        recover_killed_runs(instance)
    run_id = str(uuid.uuid4())
    tags = {HOST_TAG: this_host()}  # lets recovery fail this run if its process is killed
    if part == "reports":
        partitions, what = 0, "reports over every day the layer's tables hold"
    else:
        partitions, what = len(sessions_between(start, end)), f"sessions {start}..{end}"
        tags |= {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
        what += f" ({partitions})"
    print(f"\n{job_name}: {what}, {steps} steps", flush=True)
    name = job_name + (f" {part}" if part in ("deliveries", "gate") else "")
    label = (f"{job_name} reports" if part == "reports" else f"{name} {start}..{end}") if shared_terminal else name
    with RunProgress(instance, run_id, label, job, partitions, tty=False if shared_terminal else None):
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=LOG_QUIET,
                                        run_id=run_id, tags=tags)
    print(f"{label}: done in {time.time() - t0:.1f}s (run {result.run_id})")
    _release_memory()
    rows = {}
    for ev in result.get_asset_materialization_events():  # one event per partition, same run metadata
        mat = ev.event_specific_data.materialization
        meta = mat.metadata
        rows.setdefault(mat.asset_key.to_user_string(), meta["rows"].value if "rows" in meta else "")
    for key in sorted(rows):
        print(f"  {key:32s} rows={rows[key]}")
    checks = result.get_asset_check_evaluations()
    failed = [c for c in checks if not c.passed]
    print(f"checks: {len(checks) - len(failed)} passed, {len(failed)} failed")
    for c in failed:
        print(f"  FAILED {c.asset_key.to_user_string()}:{c.check_name}: {c.description}")
    return result.success


def recover_killed_runs(instance: dg.DagsterInstance) -> None:
    """Before running anything: close the runs of killed processes (they would hold queue slots)
    and remove what they staged in the lake (`recovery.recover`), saying so."""
    from alvh_pipeline.recovery import recover
    from alvh_pipeline.resources import lake_from_env

    ids, removed = recover(instance, lake_from_env())
    for run_id in ids:
        print(f"run {run_id}: its process was killed; marked FAILURE", file=sys.stderr)
    if removed:
        print(f"removed {len(removed)} staged file(s) of killed writers from the lake", file=sys.stderr)


_INSTANCES: dict[str, dg.DagsterInstance] = {}


def _instance() -> dg.DagsterInstance:
    """DAGSTER_HOME's instance, loaded once per process (0.1 s a load; a worker runs ~50 runs)."""
    import dagster as dg

    from alvh_pipeline.resources import dagster_home

    home = dagster_home()
    if home not in _INSTANCES:
        _INSTANCES[home] = dg.DagsterInstance.get()
    return _INSTANCES[home]


_FROZEN = [False]


def _freeze_imports() -> None:
    """Once per process, before its first run: move what the imports built (the definitions,
    ~280,000 objects) out of the garbage collector's reach. They live as long as the process, and
    every full collection (after each run, `_release_memory`, and the automatic ones inside it)
    would walk them again: 0.16 s and more a collection."""
    import gc

    if not _FROZEN[0]:
        gc.collect()
        gc.freeze()
        _FROZEN[0] = True


def _release_memory() -> None:
    """After a run, in a long-lived worker: hand the run's freed Arrow buffers back to the system
    (pyarrow's pool keeps them otherwise), so the next run's peak does not stack on this one's."""
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()


def scheduled_runs(steps: list[Step]) -> list[PlannedRun]:
    """The plan's runs: each layer's chunks (a source's as deliveries, then gate), waiting for the
    runs of the layers it reads; then (a layer with reports) one run of its reports, after its own
    runs and the reports of the layers before."""
    by_layer: dict[str, list[Step]] = {}
    for s in steps:
        by_layer.setdefault(s.layer.name, []).append(s)
    writer = {}  # lake layer (group) -> the planned runs' layer name that writes it
    entries, reports = [], []
    for name, parts in by_layer.items():
        entry = parts[0].layer
        chunks = [(a, b, s.tables) for s in parts for a, b in run_chunks(s)]
        reads = {i.layer for inputs in entry.inputs().values() for i in inputs}
        after = tuple(sorted({writer[g] for g in reads if g in writer}))
        if is_source(entry):
            entries += [(name + DELIVERIES_RUN, False, chunks, ()),
                        (name + GATE_RUN, False, chunks, (name + DELIVERIES_RUN,))]
            writer |= {g: name + (DELIVERIES_RUN if g == entry.groups[0] else GATE_RUN) for g in entry.groups}
        else:
            entries.append((name, entry.runs_in_order, chunks, after))
            writer |= {g: name for g in entry.groups}
        if entry.asset_keys(partitioned=False):
            first = min(s.start for s in parts)
            entries.append((name + REPORTS_RUN, False, [(f"{first:%Y-%m-%d}", f"{parts[-1].end:%Y-%m-%d}")],
                            (name, *reports)))
            reports.append(name + REPORTS_RUN)
    return planned_runs(entries)


def run_part(run: PlannedRun) -> tuple[str, RunPart]:
    """(layer, part) of a planned run: its name's suffix, else the partitioned assets of a layer
    with reports, or the whole layer."""
    for suffix, part in ((REPORTS_RUN, "reports"), (DELIVERIES_RUN, "deliveries"), (GATE_RUN, "gate")):
        if run.layer.endswith(suffix):
            return run.layer.removesuffix(suffix), part
    return run.layer, "partitioned" if layer(run.layer).asset_keys(partitioned=False) else "all"


def run_planned(run: PlannedRun) -> tuple[bool, None]:
    """`run_schedule`'s work: the run, in a worker process when there are several."""
    import multiprocessing

    name, part = run_part(run)
    return run_job(name, run.first, run.last, multiprocessing.parent_process() is not None, part, run.tables,
                   recover_first=False), None


SWEEP_RUN_SCENARIOS = 6  # scenarios per sweep run: the grid's market groups, cut to balance two workers


def sweep_runs() -> list[PlannedRun]:
    """The sweep's runs: contiguous ranges of the grid that quote the same market, at most
    SWEEP_RUN_SCENARIOS each."""
    from alvh_pipeline.core import scenarios

    groups = scenarios.market_groups([s.name for s in scenarios.DEFAULT_GRID])
    chunks = [g[i:i + SWEEP_RUN_SCENARIOS] for g in groups for i in range(0, len(g), SWEEP_RUN_SCENARIOS)]
    return planned_runs([("sweep", False, [(c[0], c[-1]) for c in chunks])])


def run_sweep_part(run: PlannedRun) -> tuple[bool, None]:
    """One run of the `sweep` job over the scenario partitions run.first..run.last."""
    import uuid

    import dagster as dg

    from alvh_pipeline.definitions import SWEEP_JOB, defs
    from alvh_pipeline.recovery import HOST_TAG, this_host

    t0 = time.time()
    tags = {HOST_TAG: this_host(), "dagster/asset_partition_range_start": run.first,
            "dagster/asset_partition_range_end": run.last}
    result = defs.resolve_job_def(SWEEP_JOB).execute_in_process(
        instance=dg.DagsterInstance.get(), raise_on_error=False, run_config=LOG_QUIET, run_id=str(uuid.uuid4()),
        tags=tags)
    print(f"sweep {run.first}..{run.last}: {'done' if result.success else 'FAILED'} in {time.time() - t0:.1f}s",
          flush=True)
    return result.success, None


def sweep(workers: int) -> bool:
    """Every configuration of the grid over the lake's books (runs on `workers` processes), then
    the robustness report; prints its lines."""
    from alvh_pipeline.definitions import SWEEP_REPORT_JOB

    runs = sweep_runs()
    print(f"sweep: {sum(1 for _ in runs)} runs over the grid, {workers} at a time", flush=True)
    done = execute(runs, run_sweep_part, min(workers, len(runs)))
    if len(done) != len(runs) or not all(ok for ok, _ in done.values()):
        return False
    import dagster as dg

    from alvh_pipeline.definitions import defs
    from alvh_pipeline.resources import lake_from_env

    report = defs.resolve_job_def(SWEEP_REPORT_JOB).execute_in_process(instance=dg.DagsterInstance.get(),
                                                                       raise_on_error=False, run_config=LOG_QUIET)
    if not report.success:
        print("sweep report: FAILED", file=sys.stderr)
        return False
    table = lake_from_env().read_table("sweep", "robustness")
    print("\nrobustness over the grid:")
    for _, r in table.iterrows():
        print(f"- {r['claim']}: {r['summary']}")
    # the verdict again, now with a line per claim from the grid (same books)
    if not run_job("attribution", "", "", part="reports"):
        return False
    print_verdict(lake_from_env())
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="alvh_pipeline.cli")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="materialize a range of sessions through every layer, with look-back")
    r.add_argument("--days", type=int, default=21, help="the last N completed sessions (default 21)")
    r.add_argument("--start")
    r.add_argument("--end")
    r.add_argument("--skip-history", action="store_true",
                   help="the lake already holds every layer's look-back: run the range only")
    w = sub.add_parser("sweep", help="the sensitivity grid over the lake's books (make run first), then its report")
    w.add_argument("--workers", type=int, default=0, help="processes (default: ALVH_RUN_WORKERS or 2)")
    args = p.parse_args(argv)
    from alvh_pipeline.resources import dagster_home, lake_from_env, run_workers

    if args.cmd == "sweep":
        return 0 if sweep(args.workers or run_workers()) else 1

    if bool(args.start) != bool(args.end):
        p.error("give both --start and --end, or neither (then --days)")
    start, end = (args.start, args.end) if args.start else default_range(args.days)
    try:
        check_range(start, end)
    except RangeError as exc:
        print(f"error: {exc}; nothing was run", file=sys.stderr)
        return 2
    from alvh_pipeline.lake import LakeUnreachable

    try:
        lake_from_env().check_reachable()
    except LakeUnreachable as exc:
        print(f"error: {exc}; nothing was run", file=sys.stderr)
        return 2
    steps = run_plan(start, end, args.skip_history)
    if args.skip_history:
        gaps = missing_history(steps, lake_from_env())
        if gaps:
            print("error: --skip-history, but the lake lacks the look-back:\n  " + "\n  ".join(gaps), file=sys.stderr)
            return 2
    import dagster as dg

    recover_killed_runs(dg.DagsterInstance.get())
    runs = scheduled_runs(steps)
    workers = min(run_workers(), len(runs))
    print(f"{len(runs)} runs over {steps[0].start.date()}..{steps[-1].end.date()}, {workers} at a time", flush=True)
    done = execute(runs, run_planned, workers, key=oldest_first)
    ok = len(done) == len(runs) and all(succeeded for succeeded, _ in done.values())

    lake = lake_from_env()
    root = lake.uri
    if ok:
        print_verdict(lake)
    else:
        print_refusal(runs, done, lake)
    layers = ", ".join(g for entry in LAYERS for g in entry.groups)
    print(f"\nresults: {root}/<layer>/<table>/date=YYYY-MM-DD/part-0.parquet (layers: {layers}, quarantine)")
    print(f"  e.g. duckdb -c \"select * from '{root}/signals/statarb/*/*.parquet' where action = 'entry'\"")
    print(f"Dagster instance: {dagster_home()}; UI: make ui -> http://127.0.0.1:3000, open attribution/verdict "
          f"first (its metadata holds the table), then attribution/tearsheet")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
