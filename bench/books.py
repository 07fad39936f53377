"""Books for 10 years of sessions in one run: seconds per session for all three books and both
modes, and peak RSS. The synthetic market is generated chunk by chunk (not timed); the timed work
is what the books asset does per chunk: building the day views (`market_days`) and the simulation
(`simulate`), carried across chunks as the asset does.

The regime signal comes from the core feature sets; the stat-arb signals are a stand-in built from
the market's planted pairs (entry at |z| >= 2 on a 60-session spread z-score, exit at |z| <= 0.5),
labelled as such: the pairs book's cost, not the signal's, is measured here.

usage: python bench/books.py [--years 10] [--start 2010-01-04]
Also timed: the attribution of every chunk (`core.attribution.daily_pnl`) and the tearsheet over the
whole decade; the sizing rule is checked on every day of both modes.
The last line is one JSON object with the figures."""

import argparse
import json
import resource
import sys
import time
import warnings

warnings.filterwarnings("ignore")
CHUNK = 63


def planted_pair_signals(closes, pairs, days):
    import numpy as np
    import pandas as pd

    from alvh_pipeline.core.signal_sets import SIGNAL_COLUMNS

    rows = []
    logp = np.log(closes)
    for p in pairs:
        y, x = sorted((str(p["follower"]), str(p["leader"])))  # candidate order, as the screen keys pairs
        if y not in logp or x not in logp:
            continue
        beta = p["hedge_ratio"] if y == str(p["follower"]) else 1.0 / p["hedge_ratio"]
        spread = logp[y] - beta * logp[x]
        z = (spread - spread.rolling(60).mean()) / spread.rolling(60).std()
        z = z.reindex(days)
        action = np.where(np.abs(z) >= 2, "entry", np.where(np.abs(z) <= 0.5, "exit", "none"))
        rows.append(pd.DataFrame({"date": days, "symbol_y": y, "symbol_x": x, "zscore": z.to_numpy(),
                                  "direction": np.where(action == "entry", -np.sign(z.to_numpy()), 0).astype(int),
                                  "action": action, "conviction": 0.7, "selected": True, "pvalue": 0.01,
                                  "hedge_ratio": beta}))
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=SIGNAL_COLUMNS)
    for c in SIGNAL_COLUMNS:
        if c not in out:
            out[c] = np.nan
    return out[SIGNAL_COLUMNS]


def chunk_frames(chunk, sim):
    import pandas as pd

    from alvh_pipeline.core import books as engine
    from alvh_pipeline.core import feature_sets as fsets
    from alvh_pipeline.core import signal_sets as ss
    from alvh_pipeline.core.calendar import all_sessions, window_start
    from alvh_pipeline.sources import synthetic

    s = all_sessions()
    hist = s[(s >= window_start(chunk[0], 300)) & (s <= chunk[-1])]
    raw = {t: synthetic.generate(t, chunk if t in ("spx_options", "vix_options") else hist, sim)
           for t in ("equity_bars", "index_levels", "vix_futures", "spx_options", "vix_options", "rates", "breadth",
                     "macro_events", "fundamentals")}
    feat_days = s[(s >= window_start(chunk[0], engine.HISTORY_SESSIONS)) & (s <= chunk[-1])]
    feats = {n: fsets.FEATURE_SETS[n].compute({t: raw[t] for t in fsets.FEATURE_SETS[n].tables}, feat_days)
             for n in ("macro_regime", "term_structure", "liquidity", "fundamentals")}
    on_days = {k: v[pd.to_datetime(v["date"]).isin(chunk)] for k, v in feats.items()}
    regime, _ = ss.compute_regime(on_days, chunk)
    closes = raw["equity_bars"].pivot(index="date", columns="symbol", values="close")
    closes.index = pd.DatetimeIndex(closes.index)
    statarb = planted_pair_signals(closes, synthetic.ground_truth(sim)["planted_pairs"], chunk)
    frames = {t: raw[t] for t in ("spx_options", "vix_options", "vix_futures", "index_levels", "equity_bars", "rates")}
    frames.update(regime=regime, statarb=statarb, fundamentals=feats["fundamentals"])
    return frames


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--start", default="2010-01-04")
    args = ap.parse_args()
    from alvh_pipeline.core import books as engine
    from alvh_pipeline.core.calendar import all_sessions
    from alvh_pipeline.core.market_sim import SimConfig
    from alvh_pipeline.resources import StrategyConfig

    s = all_sessions()
    days = s[s >= args.start][: 252 * args.years]
    cfg = StrategyConfig().book_config()
    sim = SimConfig()
    states = {m: engine.fresh_state(m, cfg.account_equity) for m in cfg.modes}
    from alvh_pipeline.core import attribution, book_checks, tearsheet

    timed = {"market_days": 0.0, "simulate": 0.0}
    attribution_seconds, violations = 0.0, 0
    daily_parts, account_parts, alvh_parts = [], [], []
    prev_legs, prev_account = None, None
    gen = 0.0
    rows = {"legs": 0, "trades": 0, "account": 0}
    for i in range(0, len(days), CHUNK):
        chunk = days[i:i + CHUNK]
        t0 = time.perf_counter()
        frames = chunk_frames(chunk, sim)
        gen += time.perf_counter() - t0
        t0 = time.perf_counter()
        views = engine.market_days(frames, chunk)
        timed["market_days"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        states, legs, trades, account = engine.simulate(views, states, cfg)
        timed["simulate"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        daily_parts.append(attribution.daily_pnl(legs, trades, account, initial_legs=prev_legs,
                                                 initial_account=prev_account, initial_equity=cfg.account_equity))
        attribution_seconds += time.perf_counter() - t0
        last = legs["date"].max() if len(legs) else None
        prev_legs = legs[legs["date"] == last] if last is not None else None
        prev_account = account[account["date"] == account["date"].max()]
        account_parts.append(account)
        alvh_parts.append(legs[legs["book"] == "alvh"])
        violations += len(book_checks.sizing_rule_failures(legs[legs["book"] == "alvh"], legs[legs["book"] == "condor"],
                                                           chunk, cfg.hedge_cap, cfg.stress_move_vix_points))
        rows["legs"] += len(legs)
        rows["trades"] += len(trades)
        rows["account"] += len(account)
        print(f"{chunk[-1].date()}: {i + len(chunk)} sessions, books {sum(timed.values()):.1f}s, "
              f"generation {gen:.1f}s", file=sys.stderr, flush=True)
    import pandas as pd

    daily = pd.concat(daily_parts, ignore_index=True)
    t0 = time.perf_counter()
    png = tearsheet.figure_png(daily, pd.concat(account_parts, ignore_index=True), pd.concat(alvh_parts))
    tearsheet_seconds = time.perf_counter() - t0
    n = len(days)
    total = sum(timed.values())
    figures = {
        "sessions": n, "first": str(days[0].date()), "last": str(days[-1].date()), "modes": list(cfg.modes),
        "books_seconds": round(total, 2), "seconds_per_session": round(total / n, 4),
        "market_days_per_session": round(timed["market_days"] / n, 4),
        "simulate_per_session": round(timed["simulate"] / n, 4),
        "target_seconds_per_session": 0.05,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "target_peak_rss_mib": 1024, "generation_seconds_untimed": round(gen, 1), "rows": rows,
        "final_equity": {m: round(float(st.cash + (engine.mark_value(st.legs).sum() if len(st.legs) else 0.0)), 2)
                         for m, st in states.items()},
        "statarb_signals": "stand-in from planted pairs (bench only)",
        "attribution_seconds_per_session": round(attribution_seconds / n, 4), "target_attribution": 0.02,
        "max_abs_attribution_residual": float(daily["attribution_residual"].abs().max()),
        "tearsheet_seconds": round(tearsheet_seconds, 2), "target_tearsheet_seconds": 10,
        "tearsheet_png_kib": round(len(png) / 1024, 1),
        "sizing_rule_violation_chunks": violations,
        "margin_calls": {m: int(daily.loc[daily["mode"] == m, "margin_calls"].sum()) for m in cfg.modes},
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
