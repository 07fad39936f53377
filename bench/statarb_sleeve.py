"""The stat-arb sleeve's figures of one or more lakes side by side (a markdown table), read from
what `make run` wrote: attribution/daily_pnl (pnl_statarb, equity), books/trades (the sleeve's
orders), features/pairs (the BH selection) and validated/equity_bars (which universe it ran on).

    .venv/bin/python bench/statarb_sleeve.py LABEL=LAKE [LABEL=LAKE ...] [--start 2007-07-02] [--end 2009-03-31]

Per lake and mode: the equities' provenance, stat-arb P&L (USD and % of the mode's equity on the
window's first day), annualised Sharpe of the sleeve's daily P&L over the previous close's equity
(every session, flat days included), the largest drawdown of the cumulative sleeve P&L (USD, % of
that starting equity), pairs traded (distinct pairs opened; round trips opened; closes by reason),
and the mean number of BH-selected pairs a day. Planted-pair recall is computed only on days whose
equity rows are synthetic (`pairs.selection_quality(synthetic_days=...)`): "n/a" on real names.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alvh_pipeline.core.pairs import selection_quality  # noqa: E402
from alvh_pipeline.lake import Lake  # noqa: E402
from alvh_pipeline.sources import synthetic  # noqa: E402


def sleeve_figures(lake: Lake, start: str, end: str) -> pd.DataFrame:
    pnl = lake.read_range("attribution", "daily_pnl", start, end, ["date", "mode", "pnl_statarb", "equity",
                                                                           "equity_change"])
    trades = lake.read_range("books", "trades", start, end, ["date", "mode", "book", "position_id", "reason"])
    trades = trades[trades["book"] == "statarb"]
    pairs = lake.read_range("features", "pairs", start, end, ["date", "symbol_y", "symbol_x", "selected"])
    bars = lake.read_range("validated", "equity_bars", start, end, ["date", "provenance"])
    labels = "+".join(sorted(set(bars["provenance"].astype(str))))
    synthetic_days = pd.DatetimeIndex(pd.to_datetime(bars.loc[bars["provenance"] == "synthetic", "date"]).unique())
    planted = [(p["leader"], p["follower"]) for p in synthetic.ground_truth()["planted_pairs"]]
    quality = selection_quality(pairs.assign(date=pd.to_datetime(pairs["date"])), planted, synthetic_days)
    recall = f"{quality['recall'].mean():.2f}" if quality["applicable"].any() else "n/a (real names)"
    rows = []
    for mode, g in pnl.sort_values("date").groupby("mode"):
        p = g["pnl_statarb"].to_numpy(float)
        equity = g["equity"].to_numpy(float)
        start_equity = equity[0] - float(g["equity_change"].iloc[0])  # the close before the window
        prev = np.r_[start_equity, equity[:-1]]
        r = p / prev
        cum = np.cumsum(p)
        peak = np.maximum.accumulate(np.r_[0.0, cum])[1:]
        dd = cum - peak
        t = trades[trades["mode"] == mode]
        opens = t[t["reason"] == "statarb open"]
        closes = t[t["reason"].str.startswith("statarb close")].drop_duplicates(["date", "position_id", "reason"])
        rows.append({
            "mode": mode, "equities": labels,
            "stat-arb P&L (USD)": round(float(cum[-1]), 0),
            "stat-arb P&L (% equity)": round(100 * float(cum[-1]) / start_equity, 2),
            "Sharpe (ann.)": round(float(r.mean() / r.std(ddof=1) * np.sqrt(252)), 2) if r.std() > 0 else np.nan,
            "max drawdown (USD)": round(float(dd.min()), 0),
            "max drawdown (% equity)": round(100 * float(dd.min()) / start_equity, 2),
            "pairs traded": int(opens["position_id"].nunique()),
            "round trips opened": int(opens.drop_duplicates(["date", "position_id"]).shape[0]),
            "closes exit / broken": "{} / {}".format(*(int((closes["reason"] == f"statarb close_{k}").sum())
                                                       for k in ("exit", "broken"))),
            "BH-selected pairs / day": round(float(pairs.groupby("date")["selected"].sum().mean()), 1),
            "planted-pair recall": recall,
            "sessions": len(g),
        })
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lakes", nargs="+", help="LABEL=LAKE_ROOT")
    ap.add_argument("--start", default="2007-07-02")
    ap.add_argument("--end", default="2009-03-31")
    args = ap.parse_args(argv)
    frames = []
    for item in args.lakes:
        label, root = item.split("=", 1)
        frames.append(sleeve_figures(Lake(root), args.start, args.end).assign(lake=label))
    table = pd.concat(frames, ignore_index=True)
    wide = table.set_index(["lake", "mode"]).T
    wide.columns = [f"{lake} ({mode})" for lake, mode in wide.columns]
    print(f"stat-arb sleeve, {args.start}..{args.end}\n")
    print(wide.to_markdown())


if __name__ == "__main__":
    main()
