"""Refit the chain model's free parameters (`core.chain_model.FITTED`) to Cboe's CNDR / PUT / BXM
calendar-year returns on the in-sample years only (2004-06, 2010-14; `core.chain_calibration`),
on the replay's real SPX / VIX paths. Prints every trial, then the fitted values to paste into
`chain_model.CALIBRATED` and the in-sample errors; the last line is one JSON object.

    .venv/bin/python bench/calibrate_chains.py [--max-evaluations 300]

Computes no 2007-2009 return (only 2009-12-18..31 enter, as the start of 2010's first cycle):
those years are the out-of-sample test (bench/benchmarks.py)."""

import argparse
import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")


def main() -> None:
    from alvh_pipeline.core import chain_calibration as cc
    from alvh_pipeline.core import chain_model as cm
    from alvh_pipeline.sources import replay

    ap = argparse.ArgumentParser()
    ap.add_argument("--max-evaluations", type=int, default=300)
    args = ap.parse_args()

    def inputs_for(dates, params):
        return replay.benchmark_inputs(dates, params)

    t0 = time.perf_counter()
    best, trials = cc.fit(inputs_for, cm.ChainParams(), args.max_evaluations,
                          log=lambda line: print(line, flush=True))
    errors = cc.in_sample_errors(best, inputs_for)
    print(errors.to_string(index=False))
    mae = errors.assign(abs_err=errors["error_pts"].abs()).groupby("index")["abs_err"].mean()
    fitted = {n: round(getattr(best, n), 4) for n in cm.FITTED}
    print("fitted:", fitted, file=sys.stderr)
    sse = float((errors["error_pts"] ** 2).sum())
    print(json.dumps({"fitted": fitted, "in_sample_mae_pts": mae.round(2).to_dict(), "sse": round(sse, 2),
                      "objective": float(trials["objective"].min()), "evaluations": len(trials),
                      "seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
