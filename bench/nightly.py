"""Nightly latency benchmark (issue 20, part 4): one new session through every layer the way the
`nightly` schedule launches it, timed from the schedule's tick to the `attribution/verdict`
materialization. Target: <= 20 s.

What runs (as in production):
- a Dagster instance in a temp DAGSTER_HOME whose dagster.yaml is this tree's
  `dagster.yaml.example` (SQLite storage with the project's event log, the run queue, run
  monitoring), and a copy of a lake holding every layer's look-back (default `data_lake/replay`,
  which `make run` fills; copied as hard links, never written: the lake replaces files, it never
  changes one) with `ALVH_SOURCE=replay`;
- what the instance holds on any night but the first after a deploy: a materialization of the one
  report that does not depend on the session, benchmarks/calibration (reused by the run while its
  inputs are unchanged); made before the clock starts (`dagster asset materialize`). `--cold`
  leaves it out: the first night after a code change, the calibration is computed in the run;
- the night before (`--nights-before 1`, the default): the `all_layers` job of the session before
  the measured one, run to completion before the clock starts (in process, the job the schedule
  launches). A lake the nightly keeps up to date holds yesterday's run and what it left: the
  look-back caches of the short runs' reads (`Lake.read_range(reuse=True)`), which hold the years
  of daily files a night reads again plus one. `--nights-before 0` measures the first night after
  `make run`'s backfill, which reads them whole and builds those caches;
- the project's `nightly` schedule (definitions.py, unchanged) turned on with `dagster schedule
  start nightly -w workspace.yaml`, and a `dagster-daemon run -w workspace.yaml` process: the
  daemon starts its own code server for the project's `workspace.yaml` (on a Unix socket: the
  figures list any TCP port a process of the daemon's session listens on), its scheduler ticks at
  18:30 New York, evaluates the schedule on the code server (RunRequest for the session), submits
  the `all_layers` run to the run queue, the queue daemon dequeues it and the project's run
  launcher (`alvh_pipeline.launcher.WarmRunLauncher`) starts the run worker as a fork of the
  daemon's warm process (Dagster, the project and GE imported when the daemon started; while it
  warms, or after a source change, Dagster's DefaultRunLauncher has the code server spawn a fresh
  interpreter), which runs every step in process (`ALVH_EXECUTOR` unset = `in_process`). The sensors
  that run by default (layer_automation, drop_folder, close_orphaned_runs) run beside it, as they
  would at 18:30. The daemon is stopped with SIGTERM (Dagster's clean shutdown, its code server
  with it) and anything left in its session is killed; the figures say what was left.

What differs from production, and only this: the clock of the two processes that decide the tick.
The schedule is due at 18:30 New York of the session (default: the first session after the lake's
last, 2009-07-01 for the replay lake of 2004-03-29..2009-06-30), and a bench cannot wait for it.
`dagster schedule start` and `dagster-daemon` run here through `--shifted-clock`, which moves
Dagster's own clock (`dagster._time`, the hook Dagster's `freeze_time` test helper patches) back by
a fixed offset so that 18:30:00 of the session falls `--lead` seconds after the daemon setup starts;
it still runs at one second per second. Everything else (the code server, the run worker, the
lake, the event log's step timestamps) runs on the real clock. Timestamps the daemon writes (the
tick, the run's queue events) are mapped back by the offset, so every figure is on one clock.

Measured: tick_to_verdict_s = the verdict's ASSET_MATERIALIZATION event - the real instant of the
tick (the scheduled 18:30:00, as the daemon's minute loop wakes at it). Broken down from the run's
event log: schedule evaluation and run creation (tick -> RUN_ENQUEUED), the run queue (->
RUN_STARTING: the queue daemon's next pass, `run_queue.dequeue_interval_seconds`), the run worker's
process start and Dagster import (-> "Started process for run"), the code location load in that
process (project imports, definitions; -> RUN_START), executor setup (-> first STEP_START), then
each layer's steps (STEP_START -> STEP_SUCCESS, summed per layer: ingest = raw + GE gate +
validated, features, signals, books, benchmarks, attribution = daily_pnl and its check, reports =
performance / stress / verdict up to its materialization), and what lies between steps (events,
step hand-over). What follows the verdict (its check, the tearsheet, the run's end) is reported,
not counted. The machine's load is in the figures: on a shared 2-core machine it moves them.

usage: python bench/nightly.py [--lake data_lake/replay] [--session D] [--cold] [--nights-before 1] [--lead 45]
                              [--keep DIR]
       python bench/nightly.py --analyze DIR   (the figures of a run kept with --keep DIR)
The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

warnings.filterwarnings("ignore")
REPO = Path(__file__).resolve().parent.parent
WORKSPACE = REPO / "workspace.yaml"  # the project's: python_module alvh_pipeline.definitions, as `make ui`
TARGET_S = 20.0
SCHEDULE = "nightly"
TICK_TIME = "18:30"  # the nightly schedule's cron: 30 18 * * 1-5, America/New_York
TIMEZONE = "America/New_York"
TIMEOUT_S = 600  # the run must end within this after the tick
REFERENCE = {"cli_run_skip_history_wall_s": 38.5}  # `cli run --start D --end D --skip-history`, six runs


# ---- the shifted clock (the daemon's and the schedule switch's) --------------------------------

def shifted_clock_main(offset: float, tool: str, argv: list[str]) -> None:
    """Run Dagster's `tool` CLI ("daemon": dagster-daemon, "dagster": dagster) in this process with
    Dagster's clock `offset` seconds behind the real one. Dagster reads the time through
    `dagster._time._mockable_get_current_*` (what its `freeze_time` patches); they are looked up at
    each call, so replacing them moves every scheduler, sensor and queue decision of this process."""
    import datetime as dt

    import dagster._time as dagster_time

    def timestamp() -> float:
        return time.time() - offset

    def now() -> dt.datetime:
        return dt.datetime.fromtimestamp(timestamp(), tz=dt.UTC)

    dagster_time._mockable_get_current_timestamp = timestamp
    dagster_time._mockable_get_current_datetime = now
    if tool == "daemon":
        from dagster._daemon.cli import main as cli_main

        sys.argv = ["dagster-daemon", *argv]
    else:
        from dagster._cli import main as cli_main

        sys.argv = ["dagster", *argv]
    sys.exit(cli_main())


def _shifted(offset: float, tool: str, *argv: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--shifted-clock", repr(offset), tool, *argv]


# ---- processes: start, watch, stop -------------------------------------------------------------

def session_pids(sid: int) -> list[int]:
    """Every live process of session `sid` (the daemon's: it starts one, its children inherit it)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # field 6 of stat: session id
            out.append(int(entry.name))
    return sorted(out)


def listening(pids: Iterable[int]) -> list[str]:
    """The TCP addresses `pids` listen on (from /proc/net/tcp*): the brief allows 127.0.0.1 only."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
                out.append(_address(f[1]))
    return sorted(out)


def _address(hex_addr: str) -> str:
    host, port = hex_addr.split(":")
    if len(host) == 8:
        host = ".".join(str(int(host[i:i + 2], 16)) for i in (6, 4, 2, 0))
    return f"{host}:{int(port, 16)}"


def stop(proc: subprocess.Popen, grace_s: float = 30.0) -> list[int]:
    """SIGTERM the daemon (it shuts its daemons and its code server down), then anything of its
    session still alive after `grace_s` is killed. Returns what had to be killed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    deadline = time.time() + 10
    while session_pids(proc.pid) and time.time() < deadline:
        time.sleep(0.2)
    leftover = session_pids(proc.pid)
    for pid in leftover:  # only processes of the session this bench created
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return leftover


# ---- the instance: readiness, the run, its events ----------------------------------------------

def wait_for_daemon(instance: Any, proc: subprocess.Popen, tick_real: float) -> float:
    """Until the scheduler and the run queue daemons have each written a heartbeat (the daemon has
    loaded the code location and started its loops); refused if that comes after the tick."""
    while True:
        beats = instance.get_daemon_heartbeats()
        if {"SCHEDULER", "QUEUED_RUN_COORDINATOR"} <= set(beats):
            return time.time()
        if proc.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited ({proc.returncode}) before it was ready")
        if time.time() > tick_real:
            raise RuntimeError("the daemon was not ready before the tick: raise --lead")
        time.sleep(0.25)


def wait_for_run(instance: Any, proc: subprocess.Popen, tick_real: float) -> Any:
    """The run the schedule launched, once it has ended."""
    import dagster as dg

    finished = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    while True:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/schedule_name": SCHEDULE}))
        if runs and runs[0].status in finished:
            return runs[0]
        if proc.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited ({proc.returncode}) before the run ended")
        if time.time() > tick_real + TIMEOUT_S:
            raise RuntimeError(f"no finished run {TIMEOUT_S}s after the tick")
        time.sleep(0.5)


@dataclass(frozen=True)
class Event:
    t: float  # real epoch seconds
    kind: str  # DagsterEventType value, or "" for a plain log line
    step: str | None
    message: str
    asset: str | None
    passed: bool | None  # an asset check's evaluation


def run_events(instance: Any, run_id: str, to_real: Any) -> list[Event]:
    out = []
    for entry in instance.all_logs(run_id):
        ev = entry.dagster_event
        asset = passed = None
        if ev is not None and ev.event_type_value == "ASSET_MATERIALIZATION":
            asset = ev.event_specific_data.materialization.asset_key.to_user_string()
        if ev is not None and ev.event_type_value == "ASSET_CHECK_EVALUATION":
            data = ev.event_specific_data
            asset, passed = f"{data.asset_key.to_user_string()}:{data.check_name}", data.passed
        message = (ev.message if ev else None) or entry.user_message or ""
        out.append(Event(to_real(entry.timestamp), ev.event_type_value if ev else "",
                         (ev.step_key if ev else None) or entry.step_key, message, asset, passed))
    return sorted(out, key=lambda e: e.t)


# ---- the figures --------------------------------------------------------------------------------

def step_layers() -> dict[str, str]:
    """Step key (op name) -> the layer it belongs to (attribution's unpartitioned assets and their
    checks: "reports"), from the project's definitions."""
    from alvh_pipeline.definitions import defs
    from alvh_pipeline.layers import LAYERS

    graph = defs.resolve_asset_graph()
    of_group = {g: entry.name for entry in LAYERS for g in entry.groups}
    reports = {k for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is None
               and of_group.get(graph.get(k).group_name or "") == "attribution"}

    def layer_of(key: Any) -> str:
        return "reports" if key in reports else of_group.get(graph.get(key).group_name or "", "other")

    out: dict[str, str] = {}
    for assets_def in graph.assets_defs:
        if not assets_def.is_executable:
            continue
        keys = list(assets_def.keys) or [ck.asset_key for ck in assets_def.check_keys]
        out[assets_def.node_def.name] = layer_of(keys[0])
    return out


LAYER_ORDER = ("ingest", "features", "signals", "books", "benchmarks", "attribution", "reports")


def phases(events: list[Event], tick: float, verdict_key: str) -> dict[str, Any]:
    """The tick -> verdict time cut into consecutive phases, and each layer's steps."""
    def first(kind: str, contains: str = "") -> float:
        return next(e.t for e in events if e.kind == kind and contains in e.message)

    enqueued, starting = first("PIPELINE_ENQUEUED"), first("PIPELINE_STARTING")  # Dagster logs no DEQUEUED
    process = first("ENGINE_EVENT", "Started process for run")
    run_start = first("PIPELINE_START")
    verdict = next(e.t for e in events if e.kind == "ASSET_MATERIALIZATION" and e.asset == verdict_key)
    run_end = max(e.t for e in events)
    starts = {e.step: e.t for e in events if e.kind == "STEP_START"}
    ends = {e.step: e.t for e in events if e.kind in ("STEP_SUCCESS", "STEP_FAILURE")}
    first_step = min(starts.values())
    layer_of = step_layers()
    steps = []
    for step, t0 in sorted(starts.items(), key=lambda kv: kv[1]):
        t1 = min(ends.get(step, run_end), verdict) if t0 < verdict else t0
        steps.append({"step": step, "layer": layer_of.get(step, "other"), "start_s": round(t0 - tick, 3),
                      "seconds": round(t1 - t0, 3), "after_verdict": t0 >= verdict})
    per_layer = {name: round(sum(s["seconds"] for s in steps if s["layer"] == name and not s["after_verdict"]), 3)
                 for name in (*LAYER_ORDER, "other")}
    in_steps = sum(per_layer.values())
    ahead = {
        "schedule_eval_and_run_creation": enqueued - tick,
        "run_queue": starting - enqueued,  # until the queue daemon's next pass launches it
        # launcher -> the run worker's first event: a fork of the warm process (else code server -> spawned
        # interpreter, importing Dagster)
        "process_start_and_dagster_import": process - starting,
        "code_location_load": run_start - process,  # the run's code origin (imported already when warm)
        "executor_setup": first_step - run_start,
    }
    layers = {k: v for k, v in per_layer.items() if k not in ("attribution", "reports")}
    layers["attribution"] = round(per_layer["attribution"] + per_layer["reports"], 3)  # incl. the reports
    return {
        "tick_to_verdict_s": round(verdict - tick, 3),
        "ahead_of_steps": {k: round(v, 3) for k, v in ahead.items()},
        "layers_s": layers,
        "per_layer": per_layer,
        "between_steps": round((verdict - first_step) - in_steps, 3),
        "after_verdict": {"steps": [s["step"] for s in steps if s["after_verdict"]],
                          "verdict_to_run_end_s": round(run_end - verdict, 3)},
        "tick_to_run_end_s": round(run_end - tick, 3),
        "steps": steps,
    }


def print_figures(f: dict[str, Any]) -> None:
    total = f["tick_to_verdict_s"]
    print(f"\ntick -> attribution/verdict: {total:.1f}s (target {TARGET_S:.0f}s: "
          f"{'met' if total <= TARGET_S else 'NOT met'}); run end {f['tick_to_run_end_s']:.1f}s after the tick")
    rows = [*f["ahead_of_steps"].items(), *((f"layer {k}", v) for k, v in f["per_layer"].items() if v),
            ("between steps", f["between_steps"])]
    for name, seconds in rows:
        print(f"  {name:36s} {seconds:6.2f}s  {100 * seconds / total:5.1f} %")
    print(f"  after the verdict (not counted): {', '.join(f['after_verdict']['steps'])}: "
          f"{f['after_verdict']['verdict_to_run_end_s']:.1f}s")
    print("  slowest steps: " + ", ".join(f"{s['step']} {s['seconds']:.2f}s"
                                          for s in sorted(f["steps"], key=lambda s: -s["seconds"])[:8]))


# ---- the driver ---------------------------------------------------------------------------------

def tick_timestamp(session: str) -> float:
    """18:30 New York on `session`: when the nightly schedule is due."""
    hour, minute = (int(x) for x in TICK_TIME.split(":"))
    day = datetime.strptime(session, "%Y-%m-%d")
    return day.replace(hour=hour, minute=minute, tzinfo=ZoneInfo(TIMEZONE)).timestamp()


def new_session(lake: Path, session: str | None) -> str:
    """`session`, or the first NYSE session after the last one the lake holds (validated/index_levels);
    refused when the lake already holds it: that would time a re-run, not a new day."""
    from alvh_pipeline.core.calendar import all_sessions

    held = sorted(p.name.removeprefix("date=") for p in (lake / "validated" / "index_levels").glob("date=*"))
    if not held:
        raise SystemExit(f"{lake} holds no validated/index_levels: not a lake with the look-back")
    if session is None:
        s = all_sessions()
        session = s[s > held[-1]][0].strftime("%Y-%m-%d")
    if session in held:
        raise SystemExit(f"{lake} already holds {session}: give a session after {held[-1]}")
    return session


def environment(home: Path, lake: Path) -> dict[str, str]:
    """This process's environment without ALVH_* / DAGSTER_* settings, plus the bench's (the
    Makefile's GX and warnings settings, as `make ui`), with this tree's code first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALVH_", "DAGSTER_"))}
    return {**env, "DAGSTER_HOME": str(home), "ALVH_SOURCE": "replay", "ALVH_LAKE_URI": str(lake),
            "GX_ANALYTICS_ENABLED": "False", "PYTHONWARNINGS": "ignore::DeprecationWarning",
            "PYTHONPATH": str(REPO)}  # the code of the tree this bench is in (a checkout of another commit too)


def load() -> float:
    return round(os.getloadavg()[0], 2)


def warm_up(env: dict[str, str]) -> float:
    """What the instance holds on any night but the first after a deploy: a materialization of the
    reports that do not depend on the session (benchmarks/calibration, reused while its inputs are
    unchanged). Materialized here, before the clock starts; `--cold` leaves it out."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "alvh_pipeline.definitions",
                    "--select", "benchmarks/calibration"], env=env, cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def night_before(env: dict[str, str], session: str) -> float:
    """The `all_layers` run of `session`, as the schedule's run worker executes it (in process, the
    project's job), before the clock starts: what yesterday's nightly left in the lake."""
    t0 = time.perf_counter()
    code = ("import sys, dagster as dg; from alvh_pipeline.definitions import defs\n"
            "with dg.DagsterInstance.get() as instance:\n"
            "    ok = defs.resolve_job_def('all_layers').execute_in_process(partition_key=sys.argv[1], "
            "instance=instance, raise_on_error=False).success\n"
            "sys.exit(0 if ok else 1)")
    done = subprocess.run([sys.executable, "-c", code, session], env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the night before ({session}) failed:\n{done.stderr[-4000:]}")
    return time.perf_counter() - t0


def launch(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    """The lake copy, the instance, the schedule turned on, the daemon until the run has ended;
    returns what `figures` needs (also written to <base>/nightly.json, for `--analyze`)."""
    home, lake, log_path = base / "dagster_home", base / "lake", base / "daemon.log"
    new_session(Path(args.lake), None if args.nights_before else args.session)  # refuses a lake without data
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml.example", home / "dagster.yaml")
    t0 = time.perf_counter()
    # hard links: the lake only ever replaces a file (temp file + rename), so the source is never
    # changed, and the files keep their identities as the lake in place does from one night to the
    # next (the reports' history cache, built by the run that filled the lake, stays valid);
    # a plain copy where links cannot be made (another filesystem)
    if subprocess.run(["cp", "-al", str(Path(args.lake).resolve()), str(lake)], capture_output=True).returncode:
        shutil.rmtree(lake, ignore_errors=True)
        subprocess.run(["cp", "-r", str(Path(args.lake).resolve()), str(lake)], check=True)
    copy_s = time.perf_counter() - t0
    env = environment(home, lake)
    os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "ALVH_SOURCE", "ALVH_LAKE_URI")})
    warm_s = None if args.cold else warm_up(env)
    nights_before = []
    for _ in range(args.nights_before):
        day = new_session(lake, None)
        nights_before.append({"session": day, "seconds": round(night_before(env, day), 1)})
        print(f"the night before: all_layers {day} in {nights_before[-1]['seconds']}s", flush=True)
    args.session = new_session(lake, args.session)
    fake_tick = tick_timestamp(args.session)
    tick_real = time.time() + args.lead
    offset = tick_real - fake_tick  # fake clock = real - offset: 18:30:00 falls `lead` seconds from now
    print(f"nightly: session {args.session}, lake copy of {args.lake} in {copy_s:.1f}s; DAGSTER_HOME={home} "
          f"(dagster.yaml.example); the tick (18:30 New York) in {args.lead:.0f}s; load {load()} on "
          f"{os.cpu_count()} cores", flush=True)
    subprocess.run(_shifted(offset, "dagster", "schedule", "start", SCHEDULE, "-w", str(WORKSPACE)), env=env,
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    import dagster as dg

    with open(log_path, "w") as log:
        daemon = subprocess.Popen(_shifted(offset, "daemon", "run", "-w", str(WORKSPACE)), env=env, cwd=REPO,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    addresses: list[str] = []
    try:
        with dg.DagsterInstance.get() as instance:
            ready = wait_for_daemon(instance, daemon, tick_real)
            print(f"daemon ready {tick_real - ready:.1f}s before the tick (pid {daemon.pid})", flush=True)
            load_at_tick = load()
            addresses = listening(session_pids(daemon.pid))
            run = wait_for_run(instance, daemon, tick_real)
            addresses = sorted(set(addresses) | set(listening(session_pids(daemon.pid))))
    except BaseException:
        print(log_path.read_text()[-4000:], file=sys.stderr)
        raise
    finally:
        leftover = stop(daemon)
    setup = {"session": args.session, "run_id": run.run_id, "offset": offset, "fake_tick": fake_tick,
             "warm_up_s": None if warm_s is None else round(warm_s, 1), "nights_before": nights_before,
             "lake_copy_s": round(copy_s, 1), "lead_s": args.lead, "load_1min": [load_at_tick, load()],
             "cores": os.cpu_count(), "listening": addresses, "killed_at_stop": leftover,
             "left_running": session_pids(daemon.pid)}
    (base / "nightly.json").write_text(json.dumps(setup))
    return setup


def figures(setup: dict[str, Any]) -> dict[str, Any]:
    """The figures of the run `setup` names, from the instance of DAGSTER_HOME."""
    import dagster as dg

    offset, fake_tick = setup["offset"], setup["fake_tick"]

    def to_real(ts: float) -> float:  # what the shifted daemon wrote is on its clock
        return ts + offset if ts < fake_tick + 365 * 86400 else ts

    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(setup["run_id"])
        events = run_events(instance, run.run_id, to_real)
    scheduled = datetime.fromisoformat(run.tags[".dagster/scheduled_execution_time"]).timestamp()
    out = phases(events, to_real(scheduled), "attribution/verdict")
    checks = [e for e in events if e.passed is not None]
    return {
        "session": setup["session"], "run_id": run.run_id, "run_status": run.status.value,
        "partition": run.tags.get("dagster/partition"), "job": run.job_name, **out,
        # a fork of the daemon's warm process (alvh_pipeline.launcher), or a fresh interpreter
        "run_worker": "warm fork" if "alvh/run_worker_pid" in run.tags else "spawned by the code server",
        "checks_passed": sum(bool(e.passed) for e in checks),
        "checks_failed": [e.asset for e in checks if not e.passed],
        **{k: setup.get(k) for k in ("warm_up_s", "lake_copy_s", "lead_s", "load_1min", "cores", "listening",
                                     "killed_at_stop", "left_running")},
        "executor": os.environ.get("ALVH_EXECUTOR", "in_process"),
        "target_s": TARGET_S, "met": out["tick_to_verdict_s"] <= TARGET_S, **REFERENCE,
    }


def report(f: dict[str, Any]) -> None:
    print_figures(f)
    print(f"run {f['run_status']} ({f['job']}, partition {f['partition']}, run worker: {f['run_worker']}); "
          f"checks {f['checks_passed']} passed, "
          f"{len(f['checks_failed'])} failed {f['checks_failed'][:5]}; listening on "
          f"{f['listening'] or 'no TCP port'}; left running {f['left_running']}")
    print(json.dumps({**f, "steps": [{k: s[k] for k in ("step", "layer", "seconds")} for s in f["steps"]]}))


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--shifted-clock":
        shifted_clock_main(float(sys.argv[2]), sys.argv[3], sys.argv[4:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--session", help="the new session (default: the first after the lake's last; the lake must "
                                      "hold its look-back)")
    ap.add_argument("--lake", default=str(REPO / "data_lake" / "replay"), help="copied, never written")
    ap.add_argument("--lead", type=float, default=45.0,
                    help="seconds from the start to the tick: time to turn the schedule on and start the daemon")
    ap.add_argument("--cold", action="store_true",
                    help="the first night after a deploy: no earlier materialization of the session-independent "
                         "reports on the instance (benchmarks/calibration is computed in the measured run)")
    ap.add_argument("--nights-before", type=int, default=1,
                    help="nightly runs of the sessions before the measured one, before the clock starts (what a "
                         "lake kept up to date by the schedule holds); 0: the first night after the backfill")
    ap.add_argument("--keep", help="keep the Dagster home, the lake copy and the daemon's log under this folder")
    ap.add_argument("--analyze", help="only print the figures of a run kept with --keep in this folder")
    args = ap.parse_args()
    if args.analyze:
        base = Path(args.analyze).resolve()
        os.environ["DAGSTER_HOME"] = str(base / "dagster_home")
        report(figures(json.loads((base / "nightly.json").read_text())))
        return
    base = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="alvh-nightly-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        out = figures(launch(args, base))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    report(out)
    if out["run_status"] != "SUCCESS" or out["left_running"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
