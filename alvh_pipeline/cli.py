"""`python -m alvh_pipeline.cli run [--start D --end D | --days N]`: materialize the lineage for a
range of sessions in one run on the project's Dagster instance (DAGSTER_HOME), then print where
the results are and what the checks said."""

import argparse
import os
import sys
import time

import pandas as pd

from alvh_pipeline.core.calendar import sessions_between

LOG_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def default_range(days: int, today: pd.Timestamp | None = None) -> tuple[str, str]:
    """The last `days` completed sessions before today."""
    today = (today or pd.Timestamp.now(tz="America/New_York")).tz_localize(None).normalize()
    s = sessions_between(today - pd.Timedelta(days=3 * days + 10), today - pd.Timedelta(days=1))
    return s[-days].strftime("%Y-%m-%d"), s[-1].strftime("%Y-%m-%d")


def run(job_name: str, start: str, end: str) -> int:
    import dagster as dg

    from alvh_pipeline.definitions import defs
    from alvh_pipeline.lake import lake_root_from_env

    instance = dg.DagsterInstance.get()
    t0 = time.time()
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance, raise_on_error=False, run_config=LOG_QUIET,
        tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
    )
    elapsed = time.time() - t0
    print(f"\n{job_name}: sessions {start}..{end} in {elapsed:.1f}s (run {result.run_id})")
    rows = {}
    for ev in result.get_asset_materialization_events():
        mat = ev.event_specific_data.materialization
        rows[mat.asset_key.to_user_string()] = mat.metadata.get("rows").value if "rows" in mat.metadata else ""
    for key in sorted(rows):
        print(f"  {key:40s} rows={rows[key]}")
    checks = result.get_asset_check_evaluations()
    failed = [c for c in checks if not c.passed]
    print(f"checks: {len(checks) - len(failed)} passed, {len(failed)} failed")
    for c in failed:
        print(f"  FAILED {c.asset_key.to_user_string()}:{c.check_name}: {c.description}")
    for step in result.get_failed_step_keys() if hasattr(result, "get_failed_step_keys") else []:
        print(f"  step failed: {step}")
    root = os.path.abspath(lake_root_from_env())
    print(f"lake: {root}")
    print(f"  e.g. duckdb -c \"select * from '{root}/validated/vix_futures/*/*.parquet'\"")
    print("UI: make ui  ->  http://127.0.0.1:3000")
    return 0 if result.success else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="alvh_pipeline.cli")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="materialize a range of sessions")
    r.add_argument("--job", default="all_layers")
    r.add_argument("--days", type=int, default=10)
    r.add_argument("--start")
    r.add_argument("--end")
    args = p.parse_args(argv)
    start, end = (args.start, args.end) if args.start and args.end else default_range(args.days)
    return run(args.job, start, end)


if __name__ == "__main__":
    sys.exit(main())
