"""Feature and signal benchmark: seconds per trading day of every features/* and signals/* asset
over a year in single-run backfills (synthetic source, 100 equities): features over the year plus
the year of feature history the signals read, then signals over the year. The validated look-back
is written straight from the synthetic source first (ingest has its own benchmark).
The last line is one JSON object."""

import json
import resource
import shutil
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def main() -> None:
    from alvh_pipeline.core.calendar import all_sessions
    from alvh_pipeline.definitions import defs
    from alvh_pipeline.lake import Lake
    from alvh_pipeline.layers import plan
    from alvh_pipeline.resources import LakeResource
    from alvh_pipeline.schemas import CONTRACTS, RAW_TABLES
    from alvh_pipeline.sources import synthetic
    from alvh_pipeline.sources.resource import MarketSource

    year = int(sys.argv[1]) if len(sys.argv) > 1 else 2022
    s = all_sessions()
    days = s[s.year == year]
    first = {step.layer.name: step.start for step in plan(days[0], days[-1])}
    feature_days = s[(s >= first["features"]) & (s <= days[-1])]
    history = s[(s >= first["ingest"]) & (s <= days[-1])]
    root = tempfile.mkdtemp(prefix="alvh-bench-features-")
    try:
        lake = Lake(root)
        t0 = time.perf_counter()
        for t in RAW_TABLES:
            frame = synthetic.generate(t, history)
            lake.write_range("validated", t, frame.sort_values(list(CONTRACTS[t].keys)), history, CONTRACTS[t].schema)
        prep = time.perf_counter() - t0
        steps, totals = {}, {}
        for job, run_days in (("features", feature_days), ("signals", days)):
            t0 = time.perf_counter()
            res = defs.resolve_job_def(job).execute_in_process(
                run_config=QUIET, raise_on_error=True,
                resources={"lake": LakeResource(root=root), "source": MarketSource()},
                tags={"dagster/asset_partition_range_start": run_days[0].strftime("%Y-%m-%d"),
                      "dagster/asset_partition_range_end": run_days[-1].strftime("%Y-%m-%d")})
            totals[job] = (time.perf_counter() - t0, len(run_days))
            assert res.success and all(c.passed for c in res.get_asset_check_evaluations())
            for ev in res.all_events:
                if ev.event_type_value == "STEP_SUCCESS":
                    steps[ev.step_key] = ev.event_specific_data.duration_ms / 1000.0 / len(run_days)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    per_asset = {k: round(v, 4) for k, v in sorted(steps.items()) if "check" not in k}
    per_day = {job: t / n for job, (t, n) in totals.items()}
    figures = {
        "sessions": len(days),
        "features_sessions": totals["features"][1],
        "seconds_per_day_features": round(per_day["features"], 4),
        "seconds_per_day_signals": round(per_day["signals"], 4),
        "seconds_per_day_all_features_and_signals": round(per_day["features"] + per_day["signals"], 4),
        "seconds_per_day_by_step": per_asset,
        "validated_prep_seconds": round(prep, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    for job, (t, n) in totals.items():
        print(f"{job}: {n} sessions in {t:.1f} s = {t / n:.3f} s/day")
    for k, v in per_asset.items():
        print(f"  {k:40s} {v:.4f} s/day")
    print(json.dumps(figures))

if __name__ == "__main__":
    main()
