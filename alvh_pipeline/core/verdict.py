"""The verdict: steward vs promoter per stress window (and over the full replay), and a plain
sentence per claim of the method (`reference/methodology.txt`), with its numbers and the data's
provenance.

Each claim is one of three things: it holds, it does not hold, or it cannot be tested, and then
the claim says why (the books do not cover a 2008 window; the promoter holds no VX futures in this
configuration; the books do not report VX futures holdings). A claim the books cannot test is never
reported as holding. Claims tested:
1. "stewards survive 2008-style vol shocks with drawdowns under 9 %": on each 2008 window the
   books cover, the steward's maximum drawdown (peak inside the window, trough followed past its
   end: `stress.window_stats`) is shallower than 9 % and it met no margin call.
2. "promoters frequently breach margin on the VIX futures leg alone": on the 2008 windows, the
   promoter met at least two margin calls that the VIX-futures leg alone caused (its requirement
   covers the whole shortfall), or does so in the synthetic shock. Testable only if the promoter
   held VX futures at the close on some session of those windows.
3. "the IRR of the entire structure, not raw P&L, is the decision metric": the IRR of each mode
   over the whole materialized range, reported side by side (a comparison, not a pass/fail:
   status "reported").
The 2008 windows nest (Sep-Dec 2008 inside 2007-10..2009-03), so a count of calls over them is the
largest evaluated window's, never a sum that would count one call twice.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from alvh_pipeline.core import provenance as provenance_labels
from alvh_pipeline.core.stress import CRISIS_2008

STEWARD_MAX_DRAWDOWN = -0.09
CLAIM_STEWARD = "stewards survive 2008-style vol shocks with drawdowns under 9 %"
CLAIM_PROMOTER = "promoters frequently breach margin on the VIX futures leg alone"
CLAIM_IRR = "IRR of the whole structure is the decision metric"
FREQUENT = 2  # margin calls on the VIX-futures leg alone that count as "frequently"
HOLDS, DOES_NOT_HOLD, CANNOT_BE_TESTED, REPORTED = "holds", "does not hold", "cannot be tested", "reported"
STATUSES = (HOLDS, DOES_NOT_HOLD, CANNOT_BE_TESTED, REPORTED)
NO_2008_WINDOW = "the books do not cover a 2008 window; run the replay over 2007-06..2009-06"
NO_VX_FUTURES = "promoter holds no VX futures in this configuration"
VX_FUTURES_UNKNOWN = "the books do not report VX futures holdings"
CLAIM_COLUMNS = ["claim", "status", "numbers", "reason", "provenance"]
VERDICT_COLUMNS = ["window", "mode", "evaluated", "max_drawdown", "drawdown_peak", "drawdown_trough",
                   "drawdown_recovered", "trough_after_window_end", "margin_breached", "margin_calls",
                   "margin_calls_vx_alone", "vx_futures_days", "irr", "provenance"]


def verdict_table(stress: pd.DataFrame, shock: pd.DataFrame) -> pd.DataFrame:
    """One row per window (the full replay included) and mode: max drawdown with its peak, trough
    and recovery dates, margin breached (yes/no) and how often, sessions holding VX futures, IRR;
    then the synthetic shock's rows."""
    s = stress.copy()
    for c in VERDICT_COLUMNS:
        if c not in s:
            s[c] = np.nan
    s["margin_breached"] = s["margin_calls"].fillna(0) > 0
    rows = s[VERDICT_COLUMNS]
    k = pd.DataFrame({"window": shock["window"], "mode": shock["mode"], "evaluated": True,
                      "max_drawdown": shock["drawdown"], "drawdown_peak": None, "drawdown_trough": None,
                      "drawdown_recovered": None, "trough_after_window_end": np.nan,
                      "margin_breached": shock["margin_call"],
                      "margin_calls": shock["margin_call"].astype(int),
                      "margin_calls_vx_alone": shock["margin_call_vx_alone"].astype(int),
                      "vx_futures_days": np.nan, "irr": np.nan,
                      "provenance": shock["provenance"]}) if len(shock) else pd.DataFrame(columns=VERDICT_COLUMNS)
    return pd.concat([rows, k], ignore_index=True)[VERDICT_COLUMNS]


FILLS = {"close": "fills=at the decision close's bid/ask", "next": "fills=at the next session's bid/ask"}


def label_provenance(provenance: pd.Series, options_fit: str, fill_timing: str | None = None) -> pd.Series:
    """The books' provenance labels as a reader of the verdict needs them: model options carry how
    far the calibrated chains can be trusted (`options_fit`, e.g. "model calibrated (CNDR 2008 error
    -1.0 pts)"), synthetic equities say they are the planted-pair universe, real rows name their
    source ("options=real (Cboe DataShop)", `core.provenance`); with `fill_timing`, when
    the books' trades filled (a model choice, not data: `BookConfig.fill_timing`)."""
    model_options = r"options=([a-z0-9_:+]*model[a-z0-9_:+]*)"
    out = provenance.astype(str).str.replace(model_options, lambda m: f"options={options_fit}" if m.group(1) == "model"
                                             else f"options={m.group(1)} ({options_fit})", regex=True)
    out = out.str.replace(r"equities=([a-z0-9_:+]*synthetic[a-z0-9_:+]*)", r"equities=\1 (planted pairs)", regex=True)
    out = provenance_labels.spell(out)  # real:<source> -> real (<source's name>)
    if fill_timing is None:
        return out
    evaluated = ~out.isin(["not materialized"])
    return out.where(~evaluated, out + " " + FILLS[fill_timing])


def _pct(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f} %"


def _dated(x) -> str | None:
    return x if isinstance(x, str) and x else None


def _span(r: pd.Series, sentence: bool = False) -> str:
    """ "peak → trough" of a row's drawdown (or, in a `sentence`, "from peak to trough"), saying when
    the trough lies after the window's end; "" without a drawdown."""
    peak, trough = _dated(r.get("drawdown_peak")), _dated(r.get("drawdown_trough"))
    if peak is None or trough is None:
        return ""
    after = r.get("trough_after_window_end")
    after = isinstance(after, (bool, np.bool_)) and bool(after)
    if sentence:
        return f"from {peak} to {trough}" + (", after the window's end" if after else "")
    return f"{peak} → {trough}" + (" (after the window's end)" if after else "")


def _steward_claim(steward: pd.DataFrame, prov: str) -> tuple:
    if not len(steward):
        return CLAIM_STEWARD, CANNOT_BE_TESTED, "", NO_2008_WINDOW, prov
    w = steward.loc[steward["max_drawdown"].astype(float).idxmin()]
    worst = float(w["max_drawdown"])
    calls = int(steward["margin_calls"].max())  # the windows nest: the largest window's count
    span = _span(w, sentence=True)
    ok = worst > STEWARD_MAX_DRAWDOWN and calls == 0
    return (CLAIM_STEWARD, HOLDS if ok else DOES_NOT_HOLD,
            f"steward max drawdown {_pct(worst)}{f' ({span})' if span else ''} over {', '.join(steward['window'])}; "
            f"{calls} margin call(s)", "", prov)


def _promoter_claim(promoter: pd.DataFrame, shock: pd.DataFrame, prov: str) -> tuple:
    if not len(promoter):
        return CLAIM_PROMOTER, CANNOT_BE_TESTED, "", NO_2008_WINDOW, prov
    days = pd.to_numeric(promoter["vx_futures_days"], errors="coerce")
    held = "VX futures held at the close on " + ", ".join(
        f"{'an unknown number of' if pd.isna(d) else int(d)} session(s) of {w}"
        for w, d in zip(promoter["window"], days))
    if not (days > 0).any():
        return CLAIM_PROMOTER, CANNOT_BE_TESTED, held, VX_FUTURES_UNKNOWN if days.isna().any() else NO_VX_FUTURES, prov
    vx_calls = int(promoter["margin_calls_vx_alone"].max())  # the windows nest: the largest window's count
    shock_call = bool(shock["margin_calls_vx_alone"].sum()) if len(shock) else False
    ok = vx_calls >= FREQUENT or shock_call
    return (CLAIM_PROMOTER, HOLDS if ok else DOES_NOT_HOLD,
            f"promoter margin calls caused by the VIX-futures leg alone: {vx_calls} in the 2008 windows "
            f"(all calls: {int(promoter['margin_calls'].max())}); in the synthetic shock: "
            f"{'yes' if shock_call else 'no'}; {held}", "", prov)


def robustness_text(r: pd.Series) -> str:
    """ "holds in k of n configurations; most sensitive to X" from a robustness row (columns claim,
    holds, configurations, most_sensitive_to); without a most sensitive parameter, its first part."""
    if isinstance(r.get("summary"), str) and r["summary"]:
        return r["summary"]  # the sweep's own sentence (`scenarios.robustness`)
    text = f"holds in {int(r['holds'])} of {int(r['configurations'])} configurations"
    x = r.get("most_sensitive_to")
    return text + (f"; most sensitive to {x}" if isinstance(x, str) and x.strip() else "")


def claims(table: pd.DataFrame, irr_by_mode: dict[str, float], robustness: pd.DataFrame | None = None
           ) -> pd.DataFrame:
    """One row per claim (`CLAIM_COLUMNS`): its status (holds / does not hold / cannot be tested;
    "reported" for the IRR comparison), the numbers behind it, the reason it cannot be tested ("" when
    it can), the data's provenance. `table` = `verdict_table`. `robustness` (columns claim, holds,
    configurations, most_sensitive_to; e.g. from a parameter sweep) appends "; holds in k of n
    configurations; most sensitive to X" to the numbers of the claim it names."""
    crisis = table[table["window"].isin(CRISIS_2008) & table["evaluated"].astype(bool)]
    prov = "; ".join(sorted(set(crisis["provenance"].astype(str)))) or "no 2008 window materialized"
    shock = table[table["window"].astype(str).str.startswith("synthetic shock") & (table["mode"] == "promoter")]
    s, p = irr_by_mode.get("steward", np.nan), irr_by_mode.get("promoter", np.nan)
    undefined = [m for m, v in (("steward", s), ("promoter", p)) if not np.isfinite(v)]
    if undefined:  # an IRR that does not exist (flows without a sign change: equity ended below zero) ranks nothing
        ranking = (f"cannot be ranked: no IRR for the {' and the '.join(undefined)} (its cash flows never change "
                   f"sign, e.g. an equity that ends below zero)")
    else:
        ranking = f"{'steward' if s >= p else 'promoter'} ranks first"
    out = pd.DataFrame([
        _steward_claim(crisis[crisis["mode"] == "steward"], prov),
        _promoter_claim(crisis[crisis["mode"] == "promoter"], shock, prov),
        (CLAIM_IRR, REPORTED, f"IRR steward {_pct(s)} vs promoter {_pct(p)}: {ranking}", "",
         "all materialized days")], columns=CLAIM_COLUMNS)
    if robustness is not None:
        for _, r in robustness.iterrows():
            at = out["claim"] == r["claim"]
            extra = robustness_text(r)
            out.loc[at, "numbers"] = [f"{n}; {extra}" if n else extra for n in out.loc[at, "numbers"]]
    return out


def verdict_markdown(table: pd.DataFrame, claim_rows: pd.DataFrame) -> str:
    lines = ["| window | mode | max drawdown | peak → trough | margin breached (vx alone) | IRR | provenance |",
             "|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        if not r["evaluated"]:
            lines.append(f"| {r['window']} | {r['mode']} | {CANNOT_BE_TESTED} (not materialized) | | | | "
                         f"{r['provenance']} |")
            continue
        breached = f"{'yes' if r['margin_breached'] else 'no'} ({int(r['margin_calls'])}, " \
                   f"{int(r['margin_calls_vx_alone'])})"
        lines.append(f"| {r['window']} | {r['mode']} | {_pct(r['max_drawdown'])} | {_span(r)} | {breached} | "
                     f"{_pct(r['irr'])} | {r['provenance']} |")
    lines.append("")
    for _, c in claim_rows.iterrows():
        if c["status"] == CANNOT_BE_TESTED:
            numbers = f" {c['numbers']}." if c["numbers"] else ""
            lines.append(f"- **{c['claim']}**: {CANNOT_BE_TESTED}: {c['reason']}.{numbers} Data: {c['provenance']}.")
        else:
            lines.append(f"- **{c['claim']}**: {c['status']}. {c['numbers']}. Data: {c['provenance']}.")
    return "\n".join(lines)


def claim_key(index: int, claim: str) -> str:
    """A metadata key a UI reader understands without opening the Markdown: the claim's number and
    its first words, e.g. `claim_1_stewards_survive_2008_style_vol_shocks`."""
    words = re.findall(r"[a-z0-9]+", claim.lower())[:6]
    return f"claim_{index}_" + "_".join(words)


def claim_metadata(claim_rows: pd.DataFrame) -> dict[str, str]:
    """Per claim: its outcome with the numbers beside it (`claim_key` -> "does not hold: ...")."""
    out = {}
    for i, (_, c) in enumerate(claim_rows.iterrows(), start=1):
        detail = c["reason"] if c["status"] == CANNOT_BE_TESTED and c["reason"] else c["numbers"]
        out[claim_key(i, c["claim"])] = f"{c['status']}: {detail}" if detail else c["status"]
    return out


def trader_figure(metric: str, value: float) -> str:
    """A performance figure as a trader reads it: ratios to 2 decimals, drawdowns and returns as
    percentages to 1 decimal, counts whole (the lake keeps the float)."""
    if metric in ("max_drawdown", "irr", "cagr", "total_return", "volatility"):
        return _pct(value)
    if metric in ("margin_calls",):
        return f"{int(round(value))}"
    return f"{value:.2f}"
