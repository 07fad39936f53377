"""`python -m alvh_pipeline.cli run [--start D --end D | --days N]`: materialize the lineage for a
range of sessions on the project's Dagster instance (DAGSTER_HOME), then print where the results
are and what the checks said.

One single run per layer of `layers.LAYERS`, in lineage order, each over the range the layer after
it reads (`layers.plan`): the last layer over the requested range, the ones before over that plus
their look-back (signals: a year of vol surface and the model's training window; features: a year
of validated prices).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import pandas as pd

from alvh_pipeline.core.calendar import sessions_between
from alvh_pipeline.layers import LAYERS, Step, plan

LOG_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def default_range(days: int, today: pd.Timestamp | None = None) -> tuple[str, str]:
    """The last `days` completed sessions before today."""
    today = (today or pd.Timestamp.now(tz="America/New_York")).tz_localize(None).normalize()
    s = sessions_between(today - pd.Timedelta(days=3 * days + 10), today - pd.Timedelta(days=1))
    return s[-days].strftime("%Y-%m-%d"), s[-1].strftime("%Y-%m-%d")


def run_plan(start: str, end: str, skip_history: bool = False) -> list[Step]:
    """The runs of `cli run`: with `skip_history`, every layer over the range only."""
    steps = plan(start, end, LAYERS)
    if skip_history:
        steps = [Step(s.layer, pd.Timestamp(start), pd.Timestamp(end)) for s in steps]
    return steps


def run_job(job_name: str, start: str, end: str) -> bool:
    import dagster as dg

    from alvh_pipeline.definitions import defs

    t0 = time.time()
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=dg.DagsterInstance.get(), raise_on_error=False, run_config=LOG_QUIET,
        tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
    )
    print(f"\n{job_name}: sessions {start}..{end} in {time.time() - t0:.1f}s (run {result.run_id})")
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="alvh_pipeline.cli")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="materialize a range of sessions through every layer, with look-back")
    r.add_argument("--days", type=int, default=21, help="the last N completed sessions (default 21)")
    r.add_argument("--start")
    r.add_argument("--end")
    r.add_argument("--skip-history", action="store_true",
                   help="the lake already holds every layer's look-back: run the range only")
    args = p.parse_args(argv)
    start, end = (args.start, args.end) if args.start and args.end else default_range(args.days)
    ok = True
    for step in run_plan(start, end, args.skip_history):
        ok = ok and run_job(step.layer.name, step.start.strftime("%Y-%m-%d"), step.end.strftime("%Y-%m-%d"))
    from alvh_pipeline.resources import dagster_home, lake_root

    root = os.path.abspath(lake_root())
    layers = ", ".join(g for entry in LAYERS for g in entry.groups)
    print(f"\nresults: {root}/<layer>/<table>/date=YYYY-MM-DD/part-0.parquet (layers: {layers}, quarantine)")
    print(f"  e.g. duckdb -c \"select * from '{root}/signals/statarb/*/*.parquet' where action = 'entry'\"")
    print(f"Dagster instance: {dagster_home()}; UI: make ui -> http://127.0.0.1:3000")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
