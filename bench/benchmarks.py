"""Cboe CNDR / PUT / BXM replicated by their published rules on the replay's model chains (the
calibrated `core.chain_model`) over the real SPX / VIX paths 2004-2014, against Cboe's published
calendar-year returns. In-sample (the calibration's years): 2004-06, 2010-14; out-of-sample:
2007, 2008, 2009 and CNDR over 2007-06-29..2009-06-30.

    .venv/bin/python bench/benchmarks.py

Prints the comparison table and the targets met; the last line is one JSON object with a key per
index-year, "<INDEX>_<YEAR>_error_pts" = replicated minus published, percentage points."""

import json
import time
import warnings

warnings.filterwarnings("ignore")


def main() -> None:
    from alvh_pipeline.assets.benchmarks import calibration_report, tolerance_failures
    from alvh_pipeline.core import benchmarks as bm

    t0 = time.perf_counter()
    table, values = calibration_report()
    seconds = time.perf_counter() - t0
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    ins = table[table["sample"] == "in"]
    mae = ins.assign(a=ins["error_pts"].abs()).groupby("index")["a"].mean()
    print("in-sample mean absolute error, pts:", mae.round(2).to_dict(), "(target <= 2)")
    cndr = values[values["index"] == "CNDR"].set_index("date")["value"]
    dd = bm.max_drawdown(cndr[(cndr.index >= "2008-01-01") & (cndr.index <= "2008-12-31")])
    print(f"CNDR deepest 2008 fall (month-end marks): {dd:.1f} % (published, daily: -10.6 %)")
    failures = tolerance_failures(table)
    for f in failures:
        print("MISSED:", f.rule, f.why, [(r["index"], r["period"], round(r["error_pts"], 2)) for r in f.sample])
    out = {f"{r['index']}_{r['period']}_error_pts": round(float(r["error_pts"]), 2) for _, r in table.iterrows()}
    out.update({f"{k}_in_sample_mae_pts": round(float(v), 2) for k, v in mae.items()})
    out.update({"CNDR_2008_max_drawdown_pct": round(dd, 2), "targets_met": not failures,
                "seconds": round(seconds, 1)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
