"""The verdict: steward vs promoter per stress window, and a plain sentence per claim of the
method (`reference/methodology.txt`), with its numbers and the data's provenance.

Claims tested:
1. "stewards survive 2008-style vol shocks with drawdowns under 9 %": on each 2008 window the
   books cover, the steward's maximum drawdown is shallower than 9 % and it met no margin call.
2. "promoters frequently breach margin on the VIX futures leg alone": on the 2008 windows, the
   promoter met at least two margin calls that the VIX-futures leg alone caused (its requirement
   covers the whole shortfall), or does so in the synthetic shock.
3. "the IRR of the entire structure, not raw P&L, is the decision metric": the IRR of each mode
   over the whole materialized range, reported side by side (a comparison, not a pass/fail).
A claim whose windows the books did not cover says so ("not evaluated"), never "holds".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alvh_pipeline.core.stress import CRISIS_2008

STEWARD_MAX_DRAWDOWN = -0.09
CLAIM_STEWARD = "stewards survive 2008-style vol shocks with drawdowns under 9 %"
CLAIM_PROMOTER = "promoters frequently breach margin on the VIX futures leg alone"
FREQUENT = 2  # margin calls on the VIX-futures leg alone that count as "frequently"
VERDICT_COLUMNS = ["window", "mode", "evaluated", "max_drawdown", "margin_breached", "margin_calls",
                   "margin_calls_vx_alone", "irr", "provenance"]


def verdict_table(stress: pd.DataFrame, shock: pd.DataFrame) -> pd.DataFrame:
    """One row per window and mode: max drawdown, margin breached (yes/no) and how often, IRR."""
    s = stress.copy()
    for c in ("max_drawdown", "margin_calls", "margin_calls_vx_alone", "irr"):
        if c not in s:
            s[c] = np.nan
    s["margin_breached"] = s["margin_calls"].fillna(0) > 0
    rows = s[["window", "mode", "evaluated", "max_drawdown", "margin_breached", "margin_calls",
              "margin_calls_vx_alone", "irr", "provenance"]]
    k = pd.DataFrame({"window": shock["window"], "mode": shock["mode"], "evaluated": True,
                      "max_drawdown": shock["drawdown"], "margin_breached": shock["margin_call"],
                      "margin_calls": shock["margin_call"].astype(int),
                      "margin_calls_vx_alone": shock["margin_call_vx_alone"].astype(int), "irr": np.nan,
                      "provenance": shock["provenance"]}) if len(shock) else pd.DataFrame(columns=VERDICT_COLUMNS)
    return pd.concat([rows, k], ignore_index=True)[VERDICT_COLUMNS]


def label_provenance(provenance: pd.Series, options_fit: str) -> pd.Series:
    """The books' provenance labels as a reader of the verdict needs them: model options carry how
    far the calibrated chains can be trusted (`options_fit`, e.g. "model calibrated (CNDR 2008 error
    -1.0 pts)"), synthetic equities say they are the planted-pair universe."""
    out = provenance.astype(str).str.replace(r"options=([a-z+]*model[a-z+]*)", lambda m: f"options={options_fit}"
                                             if m.group(1) == "model" else f"options={m.group(1)} ({options_fit})",
                                             regex=True)
    return out.str.replace(r"equities=([a-z+]*synthetic[a-z+]*)", r"equities=\1 (planted pairs)", regex=True)


def _pct(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f} %"


def claims(table: pd.DataFrame, irr_by_mode: dict[str, float]) -> pd.DataFrame:
    """One row per claim: holds / does not hold / not evaluated, the sentence, its provenance."""
    crisis = table[table["window"].isin(CRISIS_2008) & table["evaluated"].astype(bool)]
    steward = crisis[crisis["mode"] == "steward"]
    promoter = crisis[crisis["mode"] == "promoter"]
    prov = "; ".join(sorted(set(crisis["provenance"].astype(str)))) or "no 2008 window materialized"
    out = []
    if len(steward):
        worst = float(steward["max_drawdown"].min())
        calls = int(steward["margin_calls"].sum())
        ok = worst > STEWARD_MAX_DRAWDOWN and calls == 0
        out.append((CLAIM_STEWARD, "holds" if ok else "does not hold",
                    f"steward max drawdown {_pct(worst)} over {', '.join(steward['window'])}; {calls} margin call(s)",
                    prov))
    else:
        out.append((CLAIM_STEWARD, "not evaluated",
                    "the books do not cover a 2008 window (run the replay source over 2007-06..2009-06)", prov))
    shock = table[table["window"].str.startswith("synthetic shock") & (table["mode"] == "promoter")]
    if len(promoter):
        vx_calls = int(promoter["margin_calls_vx_alone"].sum())
        shock_call = bool(shock["margin_calls_vx_alone"].sum()) if len(shock) else False
        ok = vx_calls >= FREQUENT or shock_call
        out.append((CLAIM_PROMOTER, "holds" if ok else "does not hold",
                    f"promoter margin calls caused by the VIX-futures leg alone: {vx_calls} in the 2008 windows "
                    f"(all calls: {int(promoter['margin_calls'].sum())}); in the synthetic shock: "
                    f"{'yes' if shock_call else 'no'}", prov))
    else:
        out.append((CLAIM_PROMOTER, "not evaluated",
                    "the books do not cover a 2008 window", prov))
    s, p = irr_by_mode.get("steward", np.nan), irr_by_mode.get("promoter", np.nan)
    better = "steward" if np.nan_to_num(s, nan=-np.inf) >= np.nan_to_num(p, nan=-np.inf) else "promoter"
    out.append(("IRR of the whole structure is the decision metric", "reported",
                f"IRR steward {_pct(s)} vs promoter {_pct(p)}: {better} ranks first", "all materialized days"))
    return pd.DataFrame(out, columns=["claim", "status", "numbers", "provenance"])


def verdict_markdown(table: pd.DataFrame, claim_rows: pd.DataFrame) -> str:
    lines = ["| window | mode | max drawdown | margin breached (vx alone) | IRR | provenance |",
             "|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        if not r["evaluated"]:
            lines.append(f"| {r['window']} | {r['mode']} | not evaluated | | | {r['provenance']} |")
            continue
        breached = f"{'yes' if r['margin_breached'] else 'no'} ({int(r['margin_calls'])}, " \
                   f"{int(r['margin_calls_vx_alone'])})"
        lines.append(f"| {r['window']} | {r['mode']} | {_pct(r['max_drawdown'])} | {breached} | {_pct(r['irr'])} | "
                     f"{r['provenance']} |")
    lines.append("")
    for _, c in claim_rows.iterrows():
        lines.append(f"- **{c['claim']}**: {c['status']}. {c['numbers']}. Data: {c['provenance']}.")
    return "\n".join(lines)
