"""The synthetic market as the books engine sees it, shared by the books and attribution tests:
validated-like synthetic tables, the regime signal from the core feature sets, no stat-arb signals
(the pairs book is exercised end to end in tests/e2e)."""

import pandas as pd

from alvh_pipeline.core import books as engine
from alvh_pipeline.core import feature_sets as fsets
from alvh_pipeline.core import signal_sets as ss
from alvh_pipeline.core.calendar import all_sessions, window_start
from alvh_pipeline.core.market_sim import SimConfig
from alvh_pipeline.sources import synthetic

S = all_sessions()
SIM = SimConfig(n_equities=40)


def market(start: str, end: str) -> list[engine.MarketDay]:
    days = S[(S >= start) & (S <= end)]
    hist = S[(S >= window_start(days[0], 300)) & (S <= days[-1])]
    raw = {t: synthetic.generate(t, days if t in ("spx_options", "vix_options") else hist, SIM)
           for t in ("equity_bars", "index_levels", "vix_futures", "spx_options", "vix_options", "rates", "breadth",
                     "macro_events", "fundamentals")}
    feat_days = S[(S >= window_start(days[0], 30)) & (S <= days[-1])]
    feats = {n: fsets.FEATURE_SETS[n].compute({t: raw[t] for t in fsets.FEATURE_SETS[n].tables}, feat_days)
             for n in ("macro_regime", "term_structure", "liquidity", "fundamentals")}
    on_days = {k: v[pd.to_datetime(v["date"]).isin(days)] for k, v in feats.items()}
    regime, _ = ss.compute_regime(on_days, days)
    frames = {t: raw[t] for t in ("spx_options", "vix_options", "vix_futures", "index_levels", "equity_bars", "rates")}
    frames.update(regime=regime, statarb=pd.DataFrame(columns=ss.SIGNAL_COLUMNS), fundamentals=feats["fundamentals"])
    return engine.market_days(frames, days)
