"""The sensitivity sweep (issue 18): every configuration of `core.scenarios.DEFAULT_GRID` (33) over
the replay lake's books (2007-06..2009-06, `make run`), through Dagster as `make sweep` runs it
(`cli sweep`: runs of one market each on 2 worker processes, then the robustness report).

    ALVH_LAKE_URI=data_lake/replay .venv/bin/python bench/sweep.py

Prints the robustness lines, the outcomes, the wall time, the cost per configuration and per
session per configuration (both modes), the peak RSS of any process; the last line is one JSON
object. Targets: the grid <= 10 minutes on 2 cores, peak RSS <= 2 GiB."""

import json
import os
import resource
import subprocess
import sys
import time

LAKE = os.environ.setdefault("ALVH_LAKE_URI", os.path.join(os.path.dirname(__file__), "..", "data_lake", "replay"))


def main() -> None:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "alvh_pipeline.cli", "sweep"], env=os.environ)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"cli sweep failed ({proc.returncode})")
    from alvh_pipeline.assets.sweep import books_range, read_outcomes
    from alvh_pipeline.resources import lake_from_env

    lake = lake_from_env()
    outcomes = read_outcomes(lake)
    sessions = len(books_range(lake))
    cols = ["scenario", "steward_status", "steward_worst_2008_drawdown", "promoter_status",
            "promoter_vx_alone_calls_2008", "irr_steward", "irr_promoter"]
    print(outcomes[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    peak_kib = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    n = len(outcomes)
    out = {"configurations": n, "sessions": sessions, "wall_seconds": round(wall, 1),
           "seconds_per_configuration": round(wall / n, 2),
           "seconds_per_session_per_configuration": round(wall / n / sessions, 4),
           "peak_rss_mib": round(peak_kib / 1024, 1), "target_wall_met": wall <= 600,
           "target_rss_met": peak_kib / 1024 <= 2048}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
