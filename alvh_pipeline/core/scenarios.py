"""The sensitivity sweep's configurations and what varies between them (issue 18): the answer over
the assumptions that move it. Pure numpy/pandas.

A `Scenario` changes the books' settings (condor risk per cycle, hedge cap, promoter leverage,
condor exits) and the market the books trade in (bid/ask widths, SPX skew). The market changes are
applied to the days' quotes, not to the lake: every scenario reads the same validated, feature and
signal rows.

- `spread_multiplier` m: every option and VX futures quote keeps its mid and gets m x its
  half-width (a bid below 0 is floored at 0).
- `skew_scale` s: each SPX (date, expiry)'s implied vols move to σ_ATM + s (σ − σ_ATM), σ_ATM the
  vol of the strike nearest the forward; mids are repriced with Black on the same forward and
  discount, and keep their half-widths. s = 1 leaves the chain as calibrated.

The default grid (`DEFAULT_GRID`, 33 configurations): the full factorial of condor risk per cycle
(5 / 10 / 20 % of equity) x bid/ask multiplier (0.5 / 1 / 2) x condor exits (held to expiry /
managed) at the defaults of the rest, then each of skew 0.8 / 1.2, cap 0.15, promoter leverage
1x and fills at the next session at each condor risk level.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from itertools import product

import numpy as np
import pandas as pd

from alvh_pipeline.core.option_marks import mark_inputs
from alvh_pipeline.core.pricing import black

FACTORS = ("condor_risk_per_cycle", "hedge_cap", "spread_multiplier", "skew_scale", "gross_limit", "condor_exits",
           "fill_timing")
FACTOR_LABELS = {"condor_risk_per_cycle": "condor risk per cycle", "hedge_cap": "the hedge cap",
                 "spread_multiplier": "the bid/ask multiplier", "skew_scale": "the skew level",
                 "gross_limit": "promoter leverage", "condor_exits": "condor exits (expiry vs managed)",
                 "fill_timing": "fills at the decision close vs the next session"}


@dataclass(frozen=True)
class Scenario:
    condor_risk_per_cycle: float = 0.10
    hedge_cap: float = 0.20
    spread_multiplier: float = 1.0
    skew_scale: float = 1.0
    gross_limit: float = 2.0
    condor_exits: str = "expiry"
    fill_timing: str = "close"

    @property
    def name(self) -> str:
        """A partition key: short, stable, readable (e.g. risk10-cap20-ba1-skew1-lev2-expiry)."""
        return (f"risk{round(100 * self.condor_risk_per_cycle)}-cap{round(100 * self.hedge_cap)}-"
                f"ba{self.spread_multiplier:g}-skew{self.skew_scale:g}-lev{self.gross_limit:g}-{self.condor_exits}"
                + ("" if self.fill_timing == "close" else f"-fill{self.fill_timing}"))

    def settings(self) -> dict[str, float | str]:
        return asdict(self)


def default_grid() -> list[Scenario]:
    """The 33 configurations (module doc), ordered so those quoting the same market (bid/ask
    multiplier, skew) are neighbours: a run over a range of them marks the quotes once."""
    base = Scenario()
    risks, exits = (0.05, 0.10, 0.20), ("expiry", "managed")
    grid = [replace(base, condor_risk_per_cycle=r, condor_exits=e) for r, e in product(risks, exits)]
    for change in ({"hedge_cap": 0.15}, {"gross_limit": 1.0}, {"fill_timing": "next"}):
        grid += [replace(base, condor_risk_per_cycle=r, **change) for r in risks]
    for m in (0.5, 2.0):
        grid += [replace(base, condor_risk_per_cycle=r, spread_multiplier=m, condor_exits=e)
                 for r, e in product(risks, exits)]
    for k in (0.8, 1.2):
        grid += [replace(base, condor_risk_per_cycle=r, skew_scale=k) for r in risks]
    return grid


def market_groups(names: list[str]) -> list[list[str]]:
    """Consecutive runs of `names` (in grid order) that quote the same market."""
    groups: list[list[str]] = []
    for name in names:
        s = by_name(name)
        if groups and market_key(by_name(groups[-1][-1])) == market_key(s):
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


def market_key(s: Scenario) -> tuple[float, float]:
    return (s.spread_multiplier, s.skew_scale)


DEFAULT_GRID = default_grid()


def by_name(name: str, grid: list[Scenario] = DEFAULT_GRID) -> Scenario:
    for s in grid:
        if s.name == name:
            return s
    raise KeyError(f"no scenario {name!r} in the grid")


# ---- the market a scenario trades in -------------------------------------------------------------

def widen(quotes: pd.DataFrame, multiplier: float, mid: np.ndarray | None = None) -> pd.DataFrame:
    """`quotes` with each bid / ask at mid ∓ multiplier x its half-width (bid floored at 0)."""
    if multiplier == 1.0 or not len(quotes):
        return quotes
    bid, ask = quotes["bid"].to_numpy(float), quotes["ask"].to_numpy(float)
    mid = 0.5 * (bid + ask) if mid is None else mid
    half = 0.5 * (ask - bid) * multiplier
    return quotes.assign(bid=np.maximum(mid - half, 0.0), ask=mid + half)


def reskew(chain: pd.DataFrame, scale: float) -> pd.DataFrame:
    """An SPX chain (one or many days) with its skew scaled (module doc); half-widths kept."""
    if scale == 1.0 or not len(chain):
        return chain
    m = mark_inputs(chain, "spx")
    vol = m["vol"]
    key = pd.MultiIndex.from_arrays([m["date"], m["expiry"]])
    codes, _ = key.factorize()
    distance = np.abs(m["strike"] - m["forward"])
    order = np.lexsort((distance, codes))  # per (date, expiry): nearest the forward first
    first = order[np.r_[True, codes[order][1:] != codes[order][:-1]]]
    atm = np.full(codes.max() + 1, np.nan)
    atm[codes[first]] = vol[first]
    atm = atm[codes]
    new_vol = np.maximum(atm + scale * (vol - atm), 0.01)
    right = np.where(m["call"], "C", "P")
    price = black(m["forward"], m["strike"], np.maximum(m["t"], 1e-9), new_vol, m["discount"], right)
    ok = np.isfinite(price) & np.isfinite(vol)
    bid, ask = chain["bid"].to_numpy(float), chain["ask"].to_numpy(float)
    half = 0.5 * (ask - bid)
    new_mid = np.where(ok, price, 0.5 * (bid + ask))
    return chain.assign(bid=np.where(ok, np.maximum(new_mid - half, 0.0), bid), ask=np.where(ok, new_mid + half, ask))


def market_frames(frames: dict[str, pd.DataFrame], scenario: Scenario) -> dict[str, pd.DataFrame]:
    """The books' input frames (`books.market_days`' `frames`) as the scenario's market quotes them."""
    out = dict(frames)
    out["spx_options"] = widen(reskew(frames["spx_options"], scenario.skew_scale), scenario.spread_multiplier)
    out["vix_options"] = widen(frames["vix_options"], scenario.spread_multiplier)
    fut = frames["vix_futures"]
    if len(fut):
        out["vix_futures"] = widen(fut, scenario.spread_multiplier, mid=fut["settle"].to_numpy(float))
    return out


# ---- robustness -----------------------------------------------------------------------------------

def sensitivity(outcomes: pd.DataFrame, metric: str, status: str) -> pd.DataFrame:
    """Per factor, over every pair of scenarios that differ in that factor alone: how often the
    claim's `status` column flips, and the mean absolute change of `metric`. `outcomes`: one row per
    scenario with the FACTORS columns, `metric` and `status`. Sorted most sensitive first (flips,
    then the metric's change)."""
    rows = []
    for f in FACTORS:
        others = [g for g in FACTORS if g != f]
        flips, changes, pairs = 0, [], 0
        for _, group in outcomes.groupby(others, sort=False, dropna=False):
            if group[f].nunique() < 2:
                continue
            values = group[metric].to_numpy(float)
            states = group[status].astype(str).to_numpy()
            i, j = np.triu_indices(len(group), k=1)
            pairs += len(i)
            flips += int((states[i] != states[j]).sum())
            changes += np.abs(values[i] - values[j]).tolist()
        rows.append({"factor": f, "label": FACTOR_LABELS[f], "pairs": pairs, "flips": flips,
                     "mean_abs_change": float(np.nanmean(changes)) if np.isfinite(changes).any() else np.nan})
    table = pd.DataFrame(rows)
    return table.sort_values(["flips", "mean_abs_change"], ascending=False, na_position="last", kind="stable")


def scenario_columns() -> list[str]:
    return [f.name for f in fields(Scenario)]


# ---- one scenario's answer, and the grid's ------------------------------------------------------

OUTCOME_METRICS = {  # claim -> (the number that decides it, what "holds" means for the IRR line)
    "steward": "steward_worst_2008_drawdown",
    "promoter": "promoter_vx_alone_calls_2008",
    "irr": "irr_steward_minus_promoter",
}


def outcome(scenario: Scenario, table: pd.DataFrame, claim_rows: pd.DataFrame, irr: dict[str, float]) -> dict:
    """One scenario's row: its settings, each claim's status and deciding number, IRRs, and the
    full-replay drawdowns. `table` = `verdict.verdict_table`, `claim_rows` = `verdict.claims`."""
    from alvh_pipeline.core import verdict  # the verdict's claim names and windows

    crisis = table[table["window"].isin(verdict.CRISIS_2008) & table["evaluated"].astype(bool)]
    steward, promoter = crisis[crisis["mode"] == "steward"], crisis[crisis["mode"] == "promoter"]
    full = table[table["window"].astype(str).str.startswith("full replay") & table["evaluated"].astype(bool)]
    status = dict(zip(claim_rows["claim"], claim_rows["status"]))
    s, p = irr.get("steward", np.nan), irr.get("promoter", np.nan)
    return {
        "scenario": scenario.name, **scenario.settings(),
        "steward_status": status.get(verdict.CLAIM_STEWARD, ""),
        "promoter_status": status.get(verdict.CLAIM_PROMOTER, ""),
        # an undefined IRR (cash flows that never change sign) ranks nothing, as in `verdict.claims`
        "irr_status": verdict.CANNOT_BE_TESTED if not (np.isfinite(s) and np.isfinite(p))
        else "steward first" if s >= p else "promoter first",
        OUTCOME_METRICS["steward"]: float(steward["max_drawdown"].min()) if len(steward) else np.nan,
        OUTCOME_METRICS["promoter"]: float(promoter["margin_calls_vx_alone"].max()) if len(promoter) else np.nan,
        "promoter_vx_futures_days_2008": float(promoter["vx_futures_days"].max()) if len(promoter) else np.nan,
        "irr_steward": s, "irr_promoter": p, OUTCOME_METRICS["irr"]: s - p,
        **{f"full_replay_drawdown_{m}": float(full.loc[full["mode"] == m, "max_drawdown"].min())
           if (full["mode"] == m).any() else np.nan for m in ("steward", "promoter")},
    }


def robustness(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per claim over the grid: in how many configurations it holds (the IRR line: the steward ranks
    first), in how many it cannot be tested, and the factor it is most sensitive to (`sensitivity`)."""
    from alvh_pipeline.core import verdict

    rows = []
    for claim, key, status, holds in (
            (verdict.CLAIM_STEWARD, "steward", "steward_status", verdict.HOLDS),
            (verdict.CLAIM_PROMOTER, "promoter", "promoter_status", verdict.HOLDS),
            (verdict.CLAIM_IRR, "irr", "irr_status", "steward first")):
        sens = sensitivity(outcomes, OUTCOME_METRICS[key], status)
        top = sens.iloc[0] if len(sens) and (sens.iloc[0]["flips"] > 0 or sens.iloc[0]["mean_abs_change"] > 0) \
            else None
        n = len(outcomes)
        k = int((outcomes[status] == holds).sum())
        untestable = int((outcomes[status] == verdict.CANNOT_BE_TESTED).sum())
        what = "the steward's IRR ranks first" if key == "irr" else "holds"
        summary = f"{what} in {k} of {n} configurations"
        if untestable:
            summary += f" (cannot be tested in {untestable})"
        if top is not None:
            summary += f"; most sensitive to {top['label']}"
        rows.append({"claim": claim, "holds": k, "cannot_be_tested": untestable, "configurations": n,
                     "most_sensitive_to": top["label"] if top is not None else "", "summary": summary,
                     "metric": OUTCOME_METRICS[key],
                     "status_flips": int(top["flips"]) if top is not None else 0})
    return pd.DataFrame(rows)
