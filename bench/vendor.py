"""Vendor-file ingest benchmark (issue 19): a year of Cboe DataShop Option EOD Summary files (one zip
per session holding the SPX and VIX chains, written from the replay's model chains by
`sources.vendor_samples`: the layout of a purchased year, ~2,500 SPX and ~200 VIX rows a day)
through the `ingest` job on the `files` source, every other table from the `replay` fallback.

Three timed steps, each in its own process (its peak RSS is its own):
1. write the year's zips (not part of the target; reported);
2. the whole ingest job over the year in one single-run backfill (all nine tables: the two option
   tables from the zips, seven from the replay);
3. the two option tables alone (raw + gate + validated of spx_options and vix_options) over the
   same year on that lake, the vendor path's own cost: target <= 0.2 s per session, peak RSS
   <= 1 GiB (the targets are judged on this step; the whole ingest's figures are context).

usage: python bench/vendor.py [--year 2008]
The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
TARGETS = {"target_option_seconds_per_session": 0.2, "target_rss_mib": 1024}
OPTION_ASSETS = ("raw/spx_options", "raw/vix_options", "validated/spx_options", "validated/vix_options")


def _sessions(year: str):
    from alvh_pipeline.core.calendar import sessions_between

    return sessions_between(f"{year}-01-01", f"{year}-12-31")


def write(year: str, drop: Path) -> dict:
    from alvh_pipeline.core.market_sim import SimConfig
    from alvh_pipeline.sources import replay, vendor_samples

    days = _sessions(year)
    t0 = time.perf_counter()
    cfg = SimConfig()
    files = vendor_samples.write_datashop_days(drop, days, lambda table, ds: replay.generate(table, ds, cfg))
    seconds = time.perf_counter() - t0
    import pandas as pd

    one = pd.read_csv(files[len(files) // 2])  # a mid-year day's file
    return {"write_seconds": round(seconds, 1), "files": len(files),
            "rows_per_file": len(one), "spx_rows_per_file": int((one["underlying_symbol"] == "^SPX").sum()),
            "zip_mib": round(sum(f.stat().st_size for f in files) / 2**20, 1)}


def ingest(year: str, drop: Path, lake: Path, options_only: bool) -> dict:
    import dagster as dg

    from alvh_pipeline.definitions import defs
    from alvh_pipeline.resources import LakeResource, StrategyConfig
    from alvh_pipeline.sources.resource import MarketSource

    days = _sessions(year)
    resources = {"lake": LakeResource(root=str(lake)), "strategy": StrategyConfig(),
                 "source": MarketSource(kind="files", files_root=str(drop), fallback="replay")}
    tags = {"dagster/asset_partition_range_start": days[0].strftime("%Y-%m-%d"),
            "dagster/asset_partition_range_end": days[-1].strftime("%Y-%m-%d")}
    t0 = time.perf_counter()
    if options_only:  # the four option assets and their checks, as the ingest job defines them
        job = defs.resolve_job_def("ingest")
        assets = [a for a in defs.assets if any(k in job.asset_layer.executable_asset_keys for k in a.keys)]
        checks = [c for c in defs.asset_checks if any(k.asset_key in job.asset_layer.executable_asset_keys
                                                       for k in c.check_keys)]
        res = dg.materialize([*assets, *checks], selection=[dg.AssetKey(k.split("/")) for k in OPTION_ASSETS],
                             resources=resources, tags=tags, run_config=QUIET, raise_on_error=False)
    else:
        res = defs.resolve_job_def("ingest").execute_in_process(run_config=QUIET, raise_on_error=False,
                                                                resources=resources, tags=tags)
    seconds = time.perf_counter() - t0
    failed = [c.description for c in res.get_asset_check_evaluations() if not c.passed]
    return {"success": bool(res.success), "failed_checks": failed[:3], "seconds": round(seconds, 1),
            "sessions": len(days), "seconds_per_session": round(seconds / len(days), 3),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--year", default="2008")
    p.add_argument("--step", choices=["write", "all", "options"])
    p.add_argument("--drop")
    p.add_argument("--lake")
    args = p.parse_args()
    if args.step == "write":
        print(json.dumps(write(args.year, Path(args.drop))))
        return
    if args.step:
        print(json.dumps(ingest(args.year, Path(args.drop), Path(args.lake), args.step == "options")))
        return
    work = Path(tempfile.mkdtemp(prefix="alvh-vendor-"))
    drop, lake = work / "drop", work / "lake"
    try:
        written = _child("--step", "write", "--year", args.year, "--drop", str(drop))
        print(f"wrote {written['files']} DataShop zips ({written['zip_mib']} MiB, {written['rows_per_file']} rows "
              f"a day, {written['spx_rows_per_file']} SPX) in {written['write_seconds']} s")
        whole = _child("--step", "all", "--year", args.year, "--drop", str(drop), "--lake", str(lake))
        print(f"whole ingest (options from the zips, 7 tables from the replay): {whole['seconds']} s, "
              f"{whole['seconds_per_session']} s/session, peak {whole['peak_rss_mib']} MiB, success {whole['success']}")
        options = _child("--step", "options", "--year", args.year, "--drop", str(drop), "--lake", str(lake))
        print(f"option tables alone (raw + gate + validated of spx_options, vix_options): {options['seconds']} s, "
              f"{options['seconds_per_session']} s/session, peak {options['peak_rss_mib']} MiB, "
              f"success {options['success']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {"year": args.year, "sessions": options["sessions"], "files": written["files"],
               "rows_per_day": written["rows_per_file"], "write_seconds": written["write_seconds"],
               "whole_ingest_seconds_per_session": whole["seconds_per_session"],
               "whole_ingest_peak_rss_mib": whole["peak_rss_mib"], "whole_ingest_success": whole["success"],
               "option_seconds_per_session": options["seconds_per_session"],
               "option_peak_rss_mib": options["peak_rss_mib"], "option_success": options["success"],
               **TARGETS,
               "meets_targets": bool(options["success"] and options["seconds_per_session"]
                                     <= TARGETS["target_option_seconds_per_session"]
                                     and options["peak_rss_mib"] <= TARGETS["target_rss_mib"])}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
