"""Universe-scale benchmark (issue 20, parts 2 and 3): the whole lineage for one year of synthetic
sessions at several universe sizes, through Dagster on a real instance (a temp DAGSTER_HOME with the
shipped dagster.yaml.example), scheduled as `cli run` schedules it.

What runs, per size: `cli.run_plan(first session of --year, last session of --year)`: every layer over
the year, each table before over the look-back the later layers read (the vol surface two years, the
pair features and validated prices one year), cut into `cli.scheduled_runs` runs, on `--workers`
long-lived processes (`run_schedule.execute`, oldest sessions first). The look-back is part of the
work a user asks for when they ask for that year on an empty lake, so it is in the wall time; each
layer's seconds per session divide its own runs' time by the sessions it ran.

Figures per size: wall time, each layer's run seconds and seconds per session, peak RSS (the largest
worker process, kernel ru_maxrss, and the driver), candidate pairs per day (rows of features/pairs:
one per candidate pair per day) and selected pairs per day. Then, per layer, the exponent of its
run time in the number of names between the two largest sizes (1: linear, 2: quadratic).

`--executor celery` (part 3): the same runs launched on the same instance kind with ALVH_EXECUTOR=
celery, every step a Celery task taken by two `dagster-celery` workers (one pool process each) on a
throwaway Redis on 127.0.0.1 (`scripts/servers/redis.py`, as the Celery test); with `--compare DIR`
(a lake of the in-process run of the same size, kept by `--keep`), every file of both lakes is
compared byte for byte.

usage: python bench/universe.py [--names 100,250,500] [--year 2019] [--workers 2] [--keep DIR]
       [--executor in_process|celery] [--compare LAKE]
The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import importlib.util
import json
import math
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/backfill.py: the Dagster run of a planned run

import backfill  # noqa: E402

TARGETS = {"target_wall_s_500": 900, "target_rss_mib_500": 4096}


def year_plan(year: int, sessions: int | None) -> tuple[list[Any], str, str]:
    """The planned runs of one year (the last `sessions` of it when given, for a smoke run)."""
    from alvh_pipeline.cli import run_plan, scheduled_runs
    from alvh_pipeline.core.calendar import all_sessions

    days = all_sessions()
    days = days[days.year == year]
    if sessions:
        days = days[-sessions:]
    start, end = days[0].strftime("%Y-%m-%d"), days[-1].strftime("%Y-%m-%d")
    return scheduled_runs(run_plan(start, end)), start, end


# ---- Celery: each planned run launched through the instance, its steps on the Celery workers -----

def celery_task(run: Any) -> tuple[bool, dict[str, Any]]:
    """One planned run as a Dagster run whose executor is dagster-celery's (ALVH_EXECUTOR=celery in
    this process's environment): `execute_job` of the layer's job, subset as `cli.run_job` subsets it."""
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from alvh_pipeline.cli import LOG_QUIET, run_part, selection
    from alvh_pipeline.recovery import HOST_TAG, this_host

    name, part = run_part(run)
    keys, check_keys = selection(name, part, run.tables)
    repo = ReconstructableRepository.for_module("alvh_pipeline.definitions", "defs", working_directory=str(REPO))
    job = repo.get_reconstructable_job(name).get_subset(asset_selection=keys, asset_check_selection=check_keys)
    tags = {HOST_TAG: this_host()}
    if part != "reports":
        tags |= {"dagster/asset_partition_range_start": run.first, "dagster/asset_partition_range_end": run.last}
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF)
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(job, instance, run_config=LOG_QUIET, tags=tags, raise_on_error=False)
        checks = result.get_asset_check_evaluations()
    after = resource.getrusage(resource.RUSAGE_SELF)
    run_s = time.perf_counter() - t0
    print(f"  celery {run.label}{'' if part in ('all', 'partitioned') else ' ' + part}: {run_s:.1f}s", flush=True)
    return True, {"layer": name, "first": run.first, "last": run.last, "part": part, "run_s": run_s,
                  "cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
                  "peak_rss_mib": 0.0, "process_peak_rss_mib": after.ru_maxrss / 1024, "success": result.success,
                  "checks_passed": sum(c.passed for c in checks),
                  "checks_failed": [f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if not c.passed],
                  "failed_steps": [] if result.success else [run.label]}


def dagster_task(run: Any) -> tuple[bool, dict[str, Any]]:
    from alvh_pipeline.cli import run_part

    ok, payload = backfill.dagster_task(run)
    return ok, {**payload, "first": run.first, "last": run.last, "part": run_part(run)[1]}


def _load_servers() -> Any:
    spec = importlib.util.spec_from_file_location("alvh_servers_redis", REPO / "scripts" / "servers" / "redis.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def celery_cluster(workdir: Path, env: dict[str, str]) -> Any:
    """Redis and two one-process Celery workers with `env`; yields the environment runs launch with."""
    servers = _load_servers()
    with servers.redis_server(workdir / "redis") as redis:
        run_env = {**env, "ALVH_EXECUTOR": "celery", "ALVH_CELERY_BROKER": redis.url}
        config = servers.worker_config(workdir / "celery.yaml", redis.url, redis.url)
        with servers.celery_workers(["w1", "w2"], config, {**os.environ, **run_env}, workdir):
            yield run_env


# ---- one universe size ------------------------------------------------------------------------

def candidate_pairs(lake_root: Path, start: str, end: str) -> dict[str, float]:
    """Candidate and selected pairs per day over the year (features/pairs: one row per candidate)."""
    from alvh_pipeline.lake import Lake

    pairs = Lake.from_uri(str(lake_root)).read_range("features", "pairs", start, end, columns=["date", "selected"])
    per_day = pairs.groupby("date").agg(candidates=("selected", "size"), selected=("selected", "sum"))
    return {"candidate_pairs_per_day": float(per_day["candidates"].median()),
            "selected_pairs_per_day": round(float(per_day["selected"].mean()), 1)}


def sessions_of(runs: list[dict[str, Any]]) -> int:
    """Distinct sessions a layer's runs covered (a source's deliveries and gate cover the same ones)."""
    from alvh_pipeline.core.calendar import sessions_between

    days: set = set()
    for r in runs:
        if r["part"] != "reports":
            days |= set(sessions_between(r["first"], r["last"]))
    return len(days)


def one_size(names: int, year: int, sessions: int | None, workers: int, base: Path, executor: str) -> dict[str, Any]:
    from alvh_pipeline.run_schedule import execute, oldest_first

    runs, start, end = year_plan(year, sessions)
    home, lake = base / f"home_{names}", base / f"lake_{names}"
    home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml.example", home / "dagster.yaml")
    import dagster as dg

    dg.DagsterInstance.from_config(str(home)).dispose()  # created once: two workers creating it race on its schema
    env = dict(ALVH_SOURCE="synthetic", ALVH_N_EQUITIES=str(names), GX_ANALYTICS_ENABLED="False",
               PYTHONWARNINGS="ignore", DAGSTER_HOME=str(home), ALVH_LAKE_URI=str(lake))
    print(f"\n{names} names, {executor}: {len(runs)} runs for {start}..{end} (with look-back: "
          f"{min(r.first for r in runs)}..), {workers} worker processes", flush=True)
    with contextlib.ExitStack() as stack:
        if executor == "celery":
            env = stack.enter_context(celery_cluster(base / f"celery_{names}", env))
        saved = dict(os.environ)
        os.environ.update(env)  # the worker processes start with this environment
        try:
            t0 = time.perf_counter()
            done = execute(runs, celery_task if executor == "celery" else dagster_task, workers, key=oldest_first)
            wall = time.perf_counter() - t0
        finally:
            os.environ.clear()
            os.environ.update(saved)
    payloads = [p for _, p in done.values()]
    per_layer: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(p["layer"] for p in payloads):
        mine = [p for p in payloads if p["layer"] == name]
        n = sessions_of(mine)
        run_s = sum(p["run_s"] for p in mine)
        per_layer[name] = {"runs": len(mine), "sessions": n, "run_s": round(run_s, 1),
                           "s_per_session": round(run_s / n, 4) if n else None,
                           "cpu_s": round(sum(p["cpu_s"] for p in mine), 1),
                           "peak_rss_mib": round(max(p["peak_rss_mib"] for p in mine), 1),
                           "checks_failed": [c for p in mine for c in p["checks_failed"]][:5],
                           "failed_steps": [c for p in mine for c in p["failed_steps"]][:5]}
    out = {"names": names, "executor": executor, "year": [start, end], "runs": len(runs), "completed": len(done),
           "wall_s": round(wall, 1),
           "peak_rss_mib": round(max([p["process_peak_rss_mib"] for p in payloads]
                                     + [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]), 1),
           "peak_rss_scope": ("the run launchers only: the Celery workers' processes are not sampled"
                              if executor == "celery" else "every worker process (kernel ru_maxrss) and the driver"),
           "checks_failed": sum(len(p["checks_failed"]) for p in payloads),
           "per_layer": per_layer}
    if any(p["layer"] == "features" for p in payloads):
        out.update(candidate_pairs(lake, start, end))
    print(f"{names} names: {wall:.1f}s wall, peak RSS {out['peak_rss_mib']:.0f} MiB, "
          f"{out.get('candidate_pairs_per_day')} candidate pairs/day", flush=True)
    for name, r in per_layer.items():
        print(f"  {name:12s} {r['run_s']:7.1f}s in {r['runs']} run(s) over {r['sessions']} sessions, "
              f"{r['s_per_session']} s/session, peak RSS {r['peak_rss_mib']:.0f} MiB"
              + (f", checks failed {r['checks_failed']}" if r["checks_failed"] else "")
              + (f", failed steps {r['failed_steps']}" if r["failed_steps"] else ""), flush=True)
    return out


def scaling(sizes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per layer, the exponent of run time in names between the two largest sizes, and over all."""
    if len(sizes) < 2:
        return {}
    a, b = sizes[-2], sizes[-1]
    out = {}
    for name in b["per_layer"]:
        ta, tb = a["per_layer"].get(name, {}).get("run_s"), b["per_layer"][name]["run_s"]
        t0 = sizes[0]["per_layer"].get(name, {}).get("run_s")
        if not ta or not tb:
            continue
        k = math.log(tb / ta) / math.log(b["names"] / a["names"])
        k_all = math.log(tb / t0) / math.log(b["names"] / sizes[0]["names"]) if t0 else None
        out[name] = {"exponent_last_two": round(k, 2), "exponent_all": None if k_all is None else round(k_all, 2),
                     "kind": "quadratic" if k >= 1.5 else "linear" if k >= 0.6 else "sub-linear (fixed costs)"}
    return out


def compare_all(a: Path, b: Path) -> dict[str, Any]:
    """Every file of both lakes, byte for byte."""
    fa, fb = backfill.lake_files(a), backfill.lake_files(b)
    common = sorted(set(fa) & set(fb))
    differ = [rel for rel in common if not filecmp.cmp(fa[rel], fb[rel], shallow=False)]
    return {"files": len(fa), "same_files": set(fa) == set(fb), "only_here": sorted(set(fa) - set(fb))[:5],
            "only_there": sorted(set(fb) - set(fa))[:5], "n_differ": len(differ), "differ": differ[:5]}


def main() -> None:
    from alvh_pipeline.resources import run_workers

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--names", default="100,250,500", help="universe sizes, comma-separated")
    ap.add_argument("--year", type=int, default=2019)
    ap.add_argument("--sessions", type=int, help="only the last N sessions of the year (smoke runs)")
    ap.add_argument("--workers", type=int, default=run_workers())
    ap.add_argument("--executor", choices=("in_process", "celery"), default="in_process")
    ap.add_argument("--compare", help="with one size: a lake to compare every file with, byte for byte")
    ap.add_argument("--keep", help="keep the Dagster homes and lakes under this folder")
    args = ap.parse_args()
    sizes = [int(n) for n in args.names.split(",")]
    top = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="alvh-universe-"))
    base = top / args.executor
    if base.exists():
        shutil.rmtree(base)  # a kept folder from an earlier run of this executor: start empty
    base.mkdir(parents=True)
    for k in [k for k in os.environ if k.startswith(("ALVH_", "DAGSTER_"))]:
        del os.environ[k]  # only what we set
    print(f"universe: sizes {sizes}, year {args.year}, executor {args.executor}, under {base}; "
          f"load {backfill.load()} on {os.cpu_count()} cores", flush=True)
    load_start = backfill.load()
    results = []
    try:
        for n in sizes:
            results.append(one_size(n, args.year, args.sessions, args.workers, base, args.executor))
        same = compare_all(base / f"lake_{sizes[-1]}", Path(args.compare)) if args.compare else None
    finally:
        if not args.keep:
            shutil.rmtree(top, ignore_errors=True)
    figures: dict[str, Any] = {"sizes": results, "scaling": scaling(results), "workers": args.workers,
                               "cores": os.cpu_count(), "load_1min": [load_start, backfill.load()], **TARGETS}
    if same is not None:
        figures["lakes_vs_compare"] = same
        print(f"lakes: {same['files']} files, same set {same['same_files']}, {same['n_differ']} differ")
    for name, s in figures["scaling"].items():
        print(f"  scaling {name:12s} exponent {s['exponent_last_two']} ({s['kind']}), "
              f"over all sizes {s['exponent_all']}")
    print(json.dumps(figures))
    if same is not None and not (same["same_files"] and not same["n_differ"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
