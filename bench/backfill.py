"""Backfill benchmark (issue 10): every layer of the lineage over years of sessions, synthetic
source, through Dagster on a real instance (a temp DAGSTER_HOME with the shipped
dagster.yaml.example: the project's tuned SQLite event log), against the same work done by invoking
the same asset and asset-check bodies directly (no run, no instance storage, no events).

What runs: `--years` x 252 sessions of ingest ending at `--end`; each later layer over the range
`layers.plan` gives it (the last layer's start is the earliest whose plan starts the first layer
within those sessions: a plan's look-back moves in steps, so the first layer may cover a few
sessions fewer; the figures say how many). The look-back is read, not redone. When the range is
shorter than the lineage's look-back (about 3.2 years), every layer runs over the same range and
the checks that need the look-back fail (reported, not hidden).

How: the plan's runs, cut as each layer's backfill policy cuts them (runs of <= 252 sessions for
day-local layers, one run for the stateful books, and a layer's unpartitioned assets (attribution's
reports) in one run after its partitioned ones, as an asset backfill does), scheduled by
`alvh_pipeline.run_schedule` as `cli run` schedules them: `--workers` long-lived worker processes
(default 2, `ALVH_RUN_WORKERS`), each run as soon as what it reads is written (ingest's runs in
order, features and signals beside them). Dagster side: the layer's job, `execute_in_process` on
`DagsterInstance.get()` with the run config and tags of `cli.run_job`. Direct side: the same runs on
the same schedule, each asset / check definition called with a context holding the partition range
and the definitions' resources, in dependency order, a failed blocking check skipping what is
downstream of it in the same run, as Dagster does. Wall time is the whole schedule's; a layer's
seconds per session are its runs' own time (they overlap other layers'); CPU is each worker's own
(getrusage) per run; a run's peak RSS is sampled while it runs, a process's is the kernel's
ru_maxrss. Both lakes must hold the same files; a sample of partitions is compared byte for byte.
`--worker MODE --layer L --start D --end D` runs one layer's runs one after the other in one
process (for profiling a layer).

usage: python bench/backfill.py [--years 10] [--names 100] [--end 2019-12-31] [--workers 2] [--keep DIR]
       [--skip-direct]
The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import filecmp
import functools
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")
REPO = Path(__file__).resolve().parent.parent
SESSIONS_PER_YEAR = 252
COMPARE_EVERY = 21  # byte-compare every 21st partition of every table (a month apart), plus every unpartitioned file
TARGETS = {"target_wall_s": 600, "target_rss_mib": 1536, "target_overhead": 1.3}


# ---- what to run ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerRange:
    layer: str
    start: str
    end: str
    sessions: int


def lineage_ranges(years: float, end: str) -> tuple[list[LayerRange], str]:
    """Each layer's range: the first layer over `years` x 252 sessions ending at `end`, the later
    ones over what `layers.plan` gives them; the whole lineage over that range when it is shorter
    than the look-back."""
    from alvh_pipeline.cli import check_range
    from alvh_pipeline.core.calendar import all_sessions, sessions_between
    from alvh_pipeline.layers import LAYERS, plan

    last = check_range(end, end)[1]
    s = all_sessions()
    s = s[s <= last]
    n = max(1, round(years * SESSIONS_PER_YEAR))
    want = s[-n]
    candidates = s[s >= want]

    def first_start(i: int):
        return plan(candidates[i], last)[0].start

    if first_start(len(candidates) - 1) < want:
        how = (f"{n} sessions are fewer than the lineage's look-back ({len(s[s >= first_start(len(candidates) - 1)])} "
               f"sessions for a one-day plan): every layer over the same range; checks needing history will fail")
        steps = [(entry.name, want, last) for entry in LAYERS]
    else:
        lo, hi = 0, len(candidates) - 1  # the earliest last-layer start whose plan begins on or after `want`
        while lo < hi:
            mid = (lo + hi) // 2
            if first_start(mid) >= want:
                hi = mid
            else:
                lo = mid + 1
        steps = [(step.layer.name, step.start, step.end) for step in plan(candidates[lo], last)]
        how = f"layers.plan({candidates[lo].date()}, {last.date()}): the plan `cli run` uses"
    out = [LayerRange(name, a.strftime("%Y-%m-%d"), b.strftime("%Y-%m-%d"), len(sessions_between(a, b)))
           for name, a, b in steps]
    return out, how


def chunks(layer_name: str, start: str, end: str) -> list[tuple[str, str]]:
    """The runs the layer's backfill policy makes of [start, end] (`cli.run_chunks`)."""
    from alvh_pipeline.cli import run_chunks

    return run_chunks(_step(layer_name, start, end))


def _step(layer_name: str, start: str, end: str) -> Any:
    import pandas as pd

    from alvh_pipeline.layers import Step, layer

    return Step(layer(layer_name), pd.Timestamp(start), pd.Timestamp(end))


def split_assets(layer_name: str) -> tuple[list, list, list]:
    """(partitioned assets, unpartitioned assets, checks) of a layer."""
    from alvh_pipeline.layers import layer

    assets, checks = layer(layer_name).definitions()
    return ([a for a in assets if a.partitions_def is not None], [a for a in assets if a.partitions_def is None],
            checks)


def runs(layer_name: str, start: str, end: str) -> Iterator[tuple[tuple[str, str] | None, list]]:
    """(partition range or None, assets) per run: the policy's chunks of the partitioned assets,
    then one run of the unpartitioned ones."""
    partitioned, unpartitioned, _ = split_assets(layer_name)
    if partitioned:
        for chunk in chunks(layer_name, start, end):
            yield chunk, partitioned
    if unpartitioned:
        yield None, unpartitioned


@dataclass
class RunTally:
    runs: int = 0
    run_s: float = 0.0
    materialized: int = 0  # asset partitions (an unpartitioned asset counts 1)
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    success: bool = True


# ---- the two workers (each its own process) ---------------------------------------------------

def dagster_run(layer_name: str, chunk: tuple[str, str] | None, assets: list, tally: RunTally,
                checks: list | None = None) -> None:
    """One run of the layer's job on the instance of DAGSTER_HOME, as `cli.run_job` launches it
    (same run config, tags and selection); `chunk` None: the layer's unpartitioned assets;
    `checks`: the checks to run (None: those of `assets`)."""
    import dagster as dg

    from alvh_pipeline.cli import LOG_QUIET
    from alvh_pipeline.definitions import defs
    from alvh_pipeline.recovery import HOST_TAG, this_host

    job = defs.resolve_job_def(layer_name)
    keys = {k for a in assets for k in a.keys}
    if keys != {k for a in split_assets(layer_name)[0] + split_assets(layer_name)[1] for k in a.keys} or checks:
        job = job.get_subset(asset_selection=keys, asset_check_selection=None if checks is None else {
            k for c in checks for k in c.check_keys})
    tags = {HOST_TAG: this_host()}
    if chunk:
        tags.update({"dagster/asset_partition_range_start": chunk[0],
                     "dagster/asset_partition_range_end": chunk[1]})
    t0 = time.perf_counter()
    result = job.execute_in_process(
        instance=dg.DagsterInstance.get(), raise_on_error=False, run_config=LOG_QUIET, run_id=str(uuid.uuid4()),
        tags=tags)
    tally.run_s += time.perf_counter() - t0
    tally.runs += 1
    tally.success &= result.success
    tally.materialized += len(result.get_asset_materialization_events())
    for c in result.get_asset_check_evaluations():
        if c.passed:
            tally.checks_passed += 1
        else:
            tally.checks_failed.append(f"{c.asset_key.to_user_string()}:{c.check_name}")
    tally.skipped += [e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"]
    tally.failed_steps += [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    print(f"  dagster {layer_name} {chunk or 'reports'}: {time.perf_counter() - t0:.1f}s", flush=True)


def dagster_worker(layer_name: str, start: str, end: str) -> RunTally:
    """The layer's runs one after the other in this process (`--worker dagster`)."""
    tally = RunTally()
    for chunk, assets in runs(layer_name, start, end):
        dagster_run(layer_name, chunk, assets, tally)
    return tally


def _ordered(assets: list, checks: list) -> list[tuple[str, Any]]:
    """Assets and their checks in dependency order: an asset after its in-run deps and their
    blocking checks, a check after its asset."""
    owner = {k: a for a in assets for k in a.keys}
    checks_of: dict[Any, list] = {}
    for c in checks:
        for ck in c.check_keys:
            if ck.asset_key in owner:
                checks_of.setdefault(ck.asset_key, [])
                if c not in checks_of[ck.asset_key]:
                    checks_of[ck.asset_key].append(c)
    level: dict[int, int] = {}

    def asset_level(a) -> int:
        if id(a) not in level:
            ups = [owner[d] for d in a.dependency_keys if d in owner and owner[d] is not a]
            # an asset waits for its deps' blocking checks: one level after its deps' checks
            level[id(a)] = max((asset_level(u) + 2 for u in ups), default=0)
        return level[id(a)]

    nodes = [(asset_level(a), i, "asset", a) for i, a in enumerate(assets)]
    # a check of an asset outside the run (a source's gate): before everything, like a level-0 step
    nodes += [(-1, len(nodes) + i, "check", c) for i, c in enumerate(checks)
              if not any(ck.asset_key in owner for ck in c.check_keys)]
    seen: set[int] = set()
    for a in assets:
        for k in a.keys:
            for c in checks_of.get(k, []):
                if id(c) not in seen:
                    seen.add(id(c))
                    nodes.append((asset_level(a) + 1, len(nodes), "check", c))
    return [(kind, d) for _, _, kind, d in sorted(nodes, key=lambda n: (n[0], n[1]))]


def _drain(out: Any) -> list:
    """A direct invocation's results: one object, or everything a generator yields."""
    if isinstance(out, Iterator):  # results are NamedTuples, so "iterable" alone would unpack one
        return list(out)
    return [out]


@functools.cache
def _ephemeral_instance() -> Any:
    import dagster as dg

    return dg.DagsterInstance.ephemeral()  # in memory; direct invocation records nothing in it


def direct_run(layer_name: str, chunk: tuple[str, str] | None, assets: list, tally: RunTally,
               checks: list | None = None) -> None:
    """The same run with the definitions' own functions invoked directly: a context holding the
    run's partition range and the resources the definitions are built with; `checks`: the checks
    to run (None: those of `assets`)."""
    import dagster as dg

    # Dagster's public build_asset_check_context takes no partition range; the partitioned checks
    # read context.partition_keys, which this context class forwards from an op context that has one
    from dagster._core.execution.context.invocation import DirectAssetCheckExecutionContext

    from alvh_pipeline.resources import build_resources

    resources = build_resources()
    instance = _ephemeral_instance()
    if checks is None:
        owned = {k for a in assets for k in a.keys}
        checks = [c for c in split_assets(layer_name)[2] if any(ck.asset_key in owned for ck in c.check_keys)]
    keys_range = dg.PartitionKeyRange(*chunk) if chunk else None
    n_parts = _sessions(*chunk) if chunk else 1
    blocked: set = set()  # asset keys whose blocking check failed in this run
    t0 = time.perf_counter()
    for kind, d in _ordered(assets, checks):
        if kind == "asset":
            if any(k in blocked for k in d.dependency_keys):
                tally.skipped += [k.to_user_string() for k in d.keys]
                blocked |= set(d.keys)  # Dagster skips what is downstream of a skipped step too
                continue
            ctx = dg.build_asset_context(partition_key_range=keys_range, resources=resources, instance=instance)
            try:
                results = _drain(d(ctx))
            except Exception as exc:  # a failed step: Dagster records it and goes on with the others
                tally.failed_steps.append(f"{'/'.join(next(iter(d.keys)).path)}: {type(exc).__name__}")
                tally.success = False
                blocked |= set(d.keys)
                continue
            tally.materialized += len(results) * n_parts
            continue
        if any(ck.asset_key in blocked for ck in d.check_keys):
            continue
        ctx = DirectAssetCheckExecutionContext(
            dg.build_op_context(partition_key_range=keys_range, resources=resources, instance=instance))
        try:
            results = _drain(d(ctx))
        except Exception as exc:
            tally.failed_steps.append(f"{d.check_specs[0].name}: {type(exc).__name__}")
            tally.success = False
            blocked |= {spec.asset_key for spec in d.check_specs if spec.blocking}
            continue
        for r, spec in zip(results, d.check_specs):
            if r.passed:
                tally.checks_passed += 1
                continue
            tally.checks_failed.append(f"{spec.asset_key.to_user_string()}:{spec.name}")
            tally.success = False
            if spec.blocking:
                blocked.add(spec.asset_key)
    tally.run_s += time.perf_counter() - t0
    tally.runs += 1
    print(f"  direct  {layer_name} {chunk or 'reports'}: {time.perf_counter() - t0:.1f}s", flush=True)


def direct_worker(layer_name: str, start: str, end: str) -> RunTally:
    """The layer's runs one after the other in this process (`--worker direct`)."""
    tally = RunTally()
    for chunk, assets in runs(layer_name, start, end):
        direct_run(layer_name, chunk, assets, tally)
    return tally


def _sessions(start: str, end: str) -> int:
    from alvh_pipeline.core.calendar import sessions_between

    return len(sessions_between(start, end))


def worker_main(mode: str, layer_name: str, start: str, end: str) -> None:
    t0 = time.perf_counter()
    work = dagster_worker if mode == "dagster" else direct_worker
    tally = work(layer_name, start, end)
    print(json.dumps({"mode": mode, "layer": layer_name, "process_s": round(time.perf_counter() - t0, 2),
                      **tally.__dict__}))


# ---- the driver -------------------------------------------------------------------------------

# ---- the scheduled lineage: the plan's runs on a pool of worker processes ----------------------

def planned(steps: list[LayerRange]) -> list[Any]:
    """The runs of the lineage as `cli run` schedules them (`cli.scheduled_runs`): each layer's
    policy chunks, then a run of its reports (attribution's) after all of them."""
    from alvh_pipeline.cli import scheduled_runs

    return scheduled_runs([_step(st.layer, st.start, st.end) for st in steps])


class RssSampler:
    """The largest resident set of this process while the block runs (sampled every 20 ms): a
    run's own peak, where the kernel's ru_maxrss is the whole process's."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> RssSampler:
        self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def _task(mode: str, run: Any) -> tuple[bool, dict[str, Any]]:
    import resource

    from alvh_pipeline.cli import run_part, selection

    layer_name, part = run_part(run)
    keys, check_keys = selection(layer_name, part, run.tables)
    partitioned, unpartitioned, all_checks = split_assets(layer_name)
    assets = [a for a in partitioned + unpartitioned if set(a.keys) & keys]
    checks = None if check_keys is None else [c for c in all_checks if set(c.check_keys) <= check_keys]
    chunk = None if part == "reports" else (run.first, run.last)
    tally = RunTally()
    before = resource.getrusage(resource.RUSAGE_SELF)
    with RssSampler() as rss:
        (dagster_run if mode == "dagster" else direct_run)(layer_name, chunk, assets, tally, checks)
    after = resource.getrusage(resource.RUSAGE_SELF)
    # every run reports success to the scheduler: a failed check is a figure here, not a reason to stop
    return True, {"layer": layer_name, "sessions": _sessions(*chunk) if chunk else 0,
                  "cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
                  "peak_rss_mib": rss.peak / 2**20, "process_peak_rss_mib": after.ru_maxrss / 1024,
                  "pid": os.getpid(), **tally.__dict__}


def dagster_task(run: Any) -> tuple[bool, dict[str, Any]]:
    return _task("dagster", run)


def direct_task(run: Any) -> tuple[bool, dict[str, Any]]:
    return _task("direct", run)


@dataclass
class Lineage:
    wall_s: float
    runs: list[dict[str, Any]]

    def layer(self, name: str) -> dict[str, Any]:
        mine = [r for r in self.runs if r["layer"] == name]
        return {"runs": len(mine), "sessions": sum(r["sessions"] for r in mine),
                "run_s": sum(r["run_s"] for r in mine), "cpu_s": sum(r["cpu_s"] for r in mine),
                "peak_rss_mib": max(r["peak_rss_mib"] for r in mine),
                "checks_passed": sum(r["checks_passed"] for r in mine),
                "checks_failed": [c for r in mine for c in r["checks_failed"]],
                "failed_steps": [c for r in mine for c in r["failed_steps"]]}

    @property
    def cpu_s(self) -> float:
        return sum(r["cpu_s"] for r in self.runs)

    @property
    def peak_rss_mib(self) -> float:
        return max(r["process_peak_rss_mib"] for r in self.runs)


def run_lineage(mode: str, runs: list[Any], env: dict[str, str], workers: int) -> Lineage:
    """Every run of the lineage on `workers` processes, as `cli run` schedules them; wall time from
    the first launch to the last run's end."""
    from alvh_pipeline.run_schedule import execute

    os.environ.update(env)  # the worker processes start with this environment
    t0 = time.perf_counter()
    done = execute(runs, dagster_task if mode == "dagster" else direct_task, workers)
    wall = time.perf_counter() - t0
    return Lineage(wall, [payload for _, payload in done.values()])


def lake_files(root: Path) -> dict[str, Path]:
    """The lake's files, without the history cache and staging (derived, per process and inode)."""
    return {str(p.relative_to(root)): p for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).parts[0] not in ("_history", "_staging")}


def compare_lakes(a: Path, b: Path) -> dict[str, Any]:
    """Same files in both lakes; a sample of them (every COMPARE_EVERY-th partition of each table,
    every unpartitioned file) byte for byte."""
    fa, fb = lake_files(a), lake_files(b)
    by_table: dict[str, list[str]] = {}
    for rel in sorted(fa):
        parts = rel.split("/")
        table = "/".join(p for p in parts if not p.startswith("date="))
        by_table.setdefault(table, []).append(rel)
    sample = [rel for rels in by_table.values() for rel in rels[::COMPARE_EVERY] if rel in fb]
    differ = [rel for rel in sample if not filecmp.cmp(fa[rel], fb[rel], shallow=False)]
    return {"files": len(fa), "only_dagster": sorted(set(fa) - set(fb))[:10],
            "only_direct": sorted(set(fb) - set(fa))[:10],
            "same_files": set(fa) == set(fb), "compared": len(sample), "differ": differ[:10], "n_differ": len(differ)}


def load() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    from alvh_pipeline.resources import run_workers

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--years", type=float, default=10)
    ap.add_argument("--names", type=int, default=100)
    ap.add_argument("--end", default="2019-12-31")
    ap.add_argument("--workers", type=int, default=run_workers(), help="runs at once (default: cli run's)")
    ap.add_argument("--keep", help="keep the Dagster home and both lakes under this folder")
    ap.add_argument("--skip-direct", action="store_true", help="Dagster only (no overhead figure)")
    ap.add_argument("--worker", choices=("dagster", "direct"), help=argparse.SUPPRESS)
    ap.add_argument("--layer", help=argparse.SUPPRESS)
    ap.add_argument("--start", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main(args.worker, args.layer, args.start, args.end)
        return

    steps, how = lineage_ranges(args.years, args.end)
    runs = planned(steps)
    base = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="alvh-backfill-"))
    home, lakes = base / "dagster_home", {m: base / f"lake_{m}" for m in ("dagster", "direct")}
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml.example", home / "dagster.yaml")
    modes = ("dagster",) if args.skip_direct else ("dagster", "direct")
    for k in [k for k in os.environ if k.startswith(("ALVH_", "DAGSTER_"))]:
        del os.environ[k]  # only what we set
    env = dict(ALVH_SOURCE="synthetic", ALVH_N_EQUITIES=str(args.names), GX_ANALYTICS_ENABLED="False",
               PYTHONWARNINGS="ignore", DAGSTER_HOME=str(home))
    print(f"backfill: {steps[0].sessions} sessions of {steps[0].layer} ending {args.end}, {args.names} names, "
          f"synthetic; {how}")
    for st in steps:
        print(f"  {st.layer:12s} {st.start}..{st.end} ({st.sessions} sessions, "
              f"{len(chunks(st.layer, st.start, st.end))} partitioned run(s))")
    print(f"{len(runs)} runs on {args.workers} worker processes (run_schedule, as `cli run`); "
          f"DAGSTER_HOME={home} (dagster.yaml.example); lakes under {base}; load {load()} on {os.cpu_count()} cores",
          flush=True)
    load_start = load()
    measured: dict[str, Lineage] = {}
    same: dict[str, Any] | None = None
    try:
        for mode in modes:
            m = measured[mode] = run_lineage(mode, runs, {**env, "ALVH_LAKE_URI": str(lakes[mode])}, args.workers)
            print(f"\n{mode}: {m.wall_s:.1f}s wall, cpu {m.cpu_s:.1f}s, peak RSS {m.peak_rss_mib:.0f} MiB", flush=True)
            for st in steps:
                r = m.layer(st.layer)
                print(f"  {st.layer:12s} {r['run_s']:7.1f}s in {r['runs']} run(s), "
                      f"{r['run_s'] / st.sessions:.4f} s/session, cpu {r['cpu_s']:.1f}s, "
                      f"peak RSS {r['peak_rss_mib']:.0f} MiB, checks {r['checks_passed']} passed / "
                      f"{len(r['checks_failed'])} failed"
                      + (f", failed steps {r['failed_steps'][:3]}" if r["failed_steps"] else ""), flush=True)
        same = compare_lakes(lakes["dagster"], lakes["direct"]) if "direct" in modes else None
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    dag = measured["dagster"]
    per_layer: dict[str, dict[str, Any]] = {}
    for st in steps:
        d = dag.layer(st.layer)
        row = {"range": [st.start, st.end], "sessions": st.sessions, "runs": d["runs"],
               "run_s": round(d["run_s"], 2), "s_per_session": round(d["run_s"] / st.sessions, 4),
               "cpu_s": round(d["cpu_s"], 2), "peak_rss_mib": round(d["peak_rss_mib"], 1),
               "checks_failed": d["checks_failed"][:10], "failed_steps": d["failed_steps"][:10]}
        if "direct" in modes:
            x = measured["direct"].layer(st.layer)
            row.update(direct_run_s=round(x["run_s"], 2), direct_s_per_session=round(x["run_s"] / st.sessions, 4),
                       direct_cpu_s=round(x["cpu_s"], 2), direct_peak_rss_mib=round(x["peak_rss_mib"], 1),
                       overhead_in_runs=round(d["run_s"] / x["run_s"], 3) if x["run_s"] else None)
        per_layer[st.layer] = row
    figures: dict[str, Any] = {
        "sessions": steps[0].sessions, "names": args.names, "end": args.end, "plan": how,
        "workers": args.workers, "runs": len(runs), "wall_s": round(dag.wall_s, 1), "per_layer": per_layer,
        "peak_rss_mib_max": round(max(m.peak_rss_mib for m in measured.values()), 1),
        "cpu_s": round(dag.cpu_s, 1), "checks_failed": sum(len(r["checks_failed"]) for r in dag.runs),
        "cores": os.cpu_count(), "load_1min": [load_start, load()], **TARGETS,
    }
    if "direct" in modes:
        direct = measured["direct"]
        figures.update(direct_wall_s=round(direct.wall_s, 1), overhead=round(dag.wall_s / direct.wall_s, 3),
                       direct_cpu_s=round(direct.cpu_s, 1), overhead_cpu=round(dag.cpu_s / direct.cpu_s, 3),
                       direct_checks_failed=sum(len(r["checks_failed"]) for r in direct.runs), lakes=same)
    print(f"\nDagster: {dag.wall_s:.1f}s wall for the lineage (target {TARGETS['target_wall_s']}s), peak RSS "
          f"{figures['peak_rss_mib_max']:.0f} MiB (target {TARGETS['target_rss_mib']})")
    if "direct" in modes:
        print(f"direct:  {figures['direct_wall_s']}s wall; overhead {figures['overhead']}x wall, "
              f"{figures['overhead_cpu']}x CPU (target {TARGETS['target_overhead']}x)")
        print(f"lakes: {same['files']} files, same set: {same['same_files']}, {same['compared']} compared byte for "
              f"byte, {same['n_differ']} differ {same['differ'][:3]}")
    print(json.dumps(figures))
    if same is not None and not (same["same_files"] and not same["n_differ"]):
        sys.exit(1)  # not the same work: the overhead figure would compare different things


if __name__ == "__main__":
    main()
