"""Ingest benchmark: raw + GE check + validated of all nine tables on the synthetic source
(100 equities) through Dagster, for one session and for a year in one single-run backfill.
Prints seconds per trading day and peak memory; the last line is one JSON object."""

import json
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def run(defs, root, **kw) -> float:
    from alvh_pipeline.resources import LakeResource
    from alvh_pipeline.sources.resource import MarketSource

    job = defs.resolve_job_def("ingest")
    t0 = time.perf_counter()
    res = job.execute_in_process(run_config=QUIET, raise_on_error=True,
                                 resources={"lake": LakeResource(root=root),
                                            "source": MarketSource(n_equities=100)}, **kw)
    assert res.success and all(c.passed for c in res.get_asset_check_evaluations())
    return time.perf_counter() - t0


def main() -> None:
    from alvh_pipeline.core.calendar import sessions_between
    from alvh_pipeline.definitions import defs

    year = sys.argv[1] if len(sys.argv) > 1 else "2023"
    root = tempfile.mkdtemp(prefix="alvh-bench-")
    try:
        warm = run(defs, root, partition_key=f"{year}-01-03")  # first run pays imports, GE and the market build
        single = min(run(defs, root, partition_key=d) for d in (f"{year}-06-01", f"{year}-06-02"))
        days = sessions_between(f"{year}-01-01", f"{year}-12-31")
        tags = {"dagster/asset_partition_range_start": days[0].strftime("%Y-%m-%d"),
                "dagster/asset_partition_range_end": days[-1].strftime("%Y-%m-%d")}
        year_s = run(defs, root, tags=tags)
        lake_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs) / 2**20
    finally:
        shutil.rmtree(root, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "first_run_seconds": round(warm, 2),
        "seconds_single_day_run": round(single, 3),
        "year_sessions": len(days),
        "year_backfill_seconds": round(year_s, 2),
        "seconds_per_day_in_backfill": round(year_s / len(days), 3),
        "peak_rss_mib": round(peak, 1),
        "lake_mib_written": round(lake_mb, 1),
        "cores": os.cpu_count(),
    }
    print(f"one session (9 tables raw + GE + validated), warm: {single:.2f} s")
    print(f"{len(days)} sessions of {year} in one backfill run: {year_s:.1f} s = {year_s / len(days):.3f} s/day")
    print(f"peak RSS {peak:.0f} MiB, lake written {lake_mb:.0f} MiB")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
