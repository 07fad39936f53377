"""Benchmark of the vectorised all-pairs Engle-Granger screen (alvh_pipeline.core.cointegration).

    .venv/bin/python bench/cointegration.py [--lags 1] [--sample 200] [--big 2000]

Prints human-readable figures, then as LAST line one JSON object with all figures:
500 names x 252 days wall time (best of 3) of the two-way screen the pipeline runs (both
regression directions, ``engle_granger_both_directions`` + ``pick_direction``) and of the one-way
screen, per-pair speed-up vs a Python loop of statsmodels
``coint(y, x, trend="c", maxlag=k, autolag=None)`` on a sample of pairs (timed in this run, one
direction each), the largest |ADF stat difference| vs statsmodels on that sample in each
direction, and for 2,000 names the two-way wall time (best of 3) and peak RSS increase,
measured in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alvh_pipeline.core.cointegration import (  # noqa: E402
    engle_granger_all_pairs,
    engle_granger_both_directions,
    pick_direction,
)

T = 252


def panel(n_names: int, seed: int = 0) -> np.ndarray:
    """Random-walk log prices with a common factor and a few planted cointegrated pairs."""
    rng = np.random.default_rng(seed)
    f = np.cumsum(0.01 * rng.standard_normal(T))
    P = (
        rng.uniform(2.0, 6.0, n_names)
        + np.outer(f, rng.uniform(0.5, 1.5, n_names))
        + np.cumsum(0.015 * rng.standard_normal((T, n_names)), axis=0)
    )
    for y in range(0, min(n_names, 40), 2):  # plant y = a + b x + AR(1)
        u = np.zeros(T)
        eps = 0.01 * rng.standard_normal(T)
        for t in range(1, T):
            u[t] = 0.87 * u[t - 1] + eps[t]
        P[:, y] = 0.1 + 1.1 * P[:, y + 1] + u
    return P


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def best_of(fn, reps: int = 3) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def two_way(P: np.ndarray, lags: int):
    """What the daily pair screen runs: both directions, then one row per pair."""
    fwd, rev = engle_granger_both_directions(P, lags=lags)
    return pick_direction(fwd, rev), fwd, rev


def child(n_names: int, lags: int) -> None:
    """Runs in a fresh interpreter: wall time and peak RSS increase of the big screen."""
    P = panel(n_names, seed=1)
    two_way(P[:, :50], lags)  # warm imports / BLAS threads
    base = _rss_bytes()
    secs, res = best_of(lambda: two_way(P, lags))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(
        json.dumps(
            {
                "pairs": len(res[0]),
                "seconds": secs,
                "peak_mib": (peak - base) / 2**20,
                "peak_rss_mib": peak / 2**20,
            }
        )
    )


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info

        info = [
            f"{d.get('internal_api')} {d.get('version')} arch={d.get('architecture')} "
            f"threads={d.get('num_threads')}"
            for d in threadpool_info()
            if d.get("user_api") == "blas"
        ]
        return "; ".join(info) or "no BLAS reported"
    except Exception as exc:  # pragma: no cover - informational only
        return f"threadpoolctl unavailable: {exc}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lags", type=int, default=1)
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--big", type=int, default=2000, help="0 to skip the big case")
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.lags)
        return

    from statsmodels.tsa.stattools import coint

    k = args.lags
    blas = blas_info()
    print(f"BLAS: {blas}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")

    P = panel(args.names)
    two_way(P[:, :50], k)  # warm-up
    secs_one, _ = best_of(lambda: engle_granger_all_pairs(P, lags=k))
    secs, (s, fwd, rev) = best_of(lambda: two_way(P, k))
    n_pairs = len(s)
    print(f"{args.names} names x {T} days, lags={k}: {n_pairs} pairs, both directions in {secs:.4f} s "
          f"(one direction {secs_one:.4f} s; best of 3)")

    rng = np.random.default_rng(42)
    idx = rng.choice(n_pairs, args.sample, replace=False)
    max_diff = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, scr in (("forward", fwd), ("reverse", rev)):
            ref = np.empty(idx.size)
            t0 = time.perf_counter()
            for n, q in enumerate(idx):
                ref[n] = coint(P[:, scr.i[q]], P[:, scr.j[q]], trend="c", maxlag=k, autolag=None)[0]
            loop = time.perf_counter() - t0
            finite = np.isfinite(ref)
            max_diff[name] = float(np.max(np.abs(ref[finite] - scr.adf_stat[idx][finite])))
            assert np.array_equal(np.isinf(ref), np.isinf(scr.adf_stat[idx]))
    per_pair_sm = loop / idx.size  # one coint call = one direction
    per_pair_vec = secs / (2 * n_pairs)  # the two-way screen runs two regressions per pair
    speedup = per_pair_sm / per_pair_vec
    print(
        f"statsmodels coint loop: {per_pair_sm * 1e3:.3f} ms/regression; screen: "
        f"{per_pair_vec * 1e6:.3f} us/regression; speed-up {speedup:,.0f}x; max |ADF diff| on "
        f"{idx.size} pairs: forward {max_diff['forward']:.2e}, reverse {max_diff['reverse']:.2e}; "
        f"reverse kept on {np.mean(~s.y_on_x):.0%} of pairs"
    )

    figures = {
        "lags": k,
        "pairs_500": n_pairs,
        "seconds_500": round(secs, 4),
        "seconds_500_one_direction": round(secs_one, 4),
        "statsmodels_ms_per_pair": round(per_pair_sm * 1e3, 4),
        "speedup_per_pair": round(speedup),
        "max_adf_abs_diff": max(max_diff.values()),
        "max_adf_abs_diff_reverse": max_diff["reverse"],
    }
    if args.big:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(args.big), "--lags", str(k)],
            capture_output=True,
            text=True,
            check=True,
        )
        big = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{args.big} names: {big['pairs']} pairs, both directions in {big['seconds']:.3f} s (best of 3), "
            f"peak RSS increase {big['peak_mib']:.0f} MiB (process peak {big['peak_rss_mib']:.0f} MiB)"
        )
        figures.update(
            {
                "pairs_2000": big["pairs"],
                "seconds_2000": round(big["seconds"], 4),
                "peak_mib_2000": round(big["peak_mib"], 1),
                "peak_rss_mib_2000": round(big["peak_rss_mib"], 1),
            }
        )
    figures["blas"] = blas
    figures["openblas_coretype"] = os.environ.get("OPENBLAS_CORETYPE")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
