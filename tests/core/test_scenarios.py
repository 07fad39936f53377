"""The sensitivity grid's parts: 30 distinct configurations with the issue's levels; a wider market
keeps its mids and scales its half-widths; a scaled skew moves each implied vol's distance from the
ATM vol by exactly the scale (recovered by the books' own implied-vol solver); the robustness lines
name the factor a planted outcome depends on."""

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import scenarios as sc
from alvh_pipeline.core import verdict
from alvh_pipeline.core.calendar import all_sessions
from alvh_pipeline.core.market_sim import SimConfig
from alvh_pipeline.core.option_marks import mark_inputs
from alvh_pipeline.sources import synthetic

S = all_sessions()


def test_the_default_grid_spans_the_issues_levels():
    grid = sc.DEFAULT_GRID
    assert len(grid) == 33 and len({s.name for s in grid}) == len(grid)
    levels = {f: {getattr(s, f) for s in grid} for f in sc.FACTORS}
    assert levels["condor_risk_per_cycle"] == {0.05, 0.10, 0.20}
    assert levels["hedge_cap"] == {0.15, 0.20}
    assert levels["spread_multiplier"] == {0.5, 1.0, 2.0}
    assert levels["skew_scale"] == {0.8, 1.0, 1.2}
    assert levels["gross_limit"] == {1.0, 2.0}
    assert levels["condor_exits"] == {"expiry", "managed"}
    assert levels["fill_timing"] == {"close", "next"}
    assert sc.Scenario() in grid  # the default configuration is one of them
    groups = sc.market_groups([s.name for s in grid])
    assert sum(len(g) for g in groups) == len(grid) and len(groups) == 5  # neighbours share a market


@pytest.fixture(scope="module")
def chain():
    day = S[S >= "2024-03-05"][:1]
    return synthetic.generate("spx_options", day, SimConfig(n_equities=10))


def test_a_wider_market_keeps_its_mids(chain):
    wide = sc.widen(chain, 2.0)
    mid0, mid1 = (0.5 * (f["bid"] + f["ask"]) for f in (chain, wide))
    inside = (chain["bid"] - 0.5 * (chain["ask"] - chain["bid"]) >= 0).to_numpy()  # not floored at 0
    np.testing.assert_allclose(mid1[inside], mid0[inside], atol=1e-12)
    np.testing.assert_allclose((wide["ask"] - wide["bid"])[inside], 2 * (chain["ask"] - chain["bid"])[inside],
                               atol=1e-12)
    assert (wide["bid"] >= 0).all() and sc.widen(chain, 1.0) is chain


def test_a_scaled_skew_moves_each_vol_from_atm_by_the_scale(chain):
    assert sc.reskew(chain, 1.0) is chain
    before, after = mark_inputs(chain, "spx"), mark_inputs(sc.reskew(chain, 1.2), "spx")
    liquid = np.isfinite(before["iv"]) & np.isfinite(after["iv"]) & (np.abs(np.log(before["strike"]
                                                                                   / before["forward"])) < 0.15)
    assert liquid.sum() > 20
    frame = pd.DataFrame({"expiry": before["expiry"], "k": before["strike"], "f": before["forward"],
                          "iv0": before["iv"], "iv1": after["iv"]})[liquid]
    for _, g in frame.groupby("expiry"):
        atm = g.iloc[np.argmin(np.abs(g["k"] - g["f"]))]
        np.testing.assert_allclose(g["iv1"] - atm["iv1"], 1.2 * (g["iv0"] - atm["iv0"]), atol=2e-4)
    bid, ask = chain["bid"].to_numpy(), chain["ask"].to_numpy()
    moved = sc.reskew(chain, 0.8)
    kept = moved["bid"].to_numpy() > 0
    np.testing.assert_allclose((moved["ask"] - moved["bid"]).to_numpy()[kept], (ask - bid)[kept], atol=1e-9)


def _planted_outcomes() -> pd.DataFrame:
    """The steward's drawdown depends on condor risk alone (deeper than 9 % at 20 %)."""
    rows = []
    for s in sc.DEFAULT_GRID:
        dd = -0.5 * s.condor_risk_per_cycle - 0.001 * s.spread_multiplier
        rows.append({**s.settings(), "scenario": s.name, "steward_worst_2008_drawdown": dd,
                     "steward_status": verdict.HOLDS if dd > -0.09 else verdict.DOES_NOT_HOLD,
                     "promoter_vx_alone_calls_2008": 0.0, "promoter_status": verdict.CANNOT_BE_TESTED,
                     "irr_steward_minus_promoter": 0.01 * (s.gross_limit - 1.5),
                     "irr_status": "steward first" if s.gross_limit < 1.5 else "promoter first"})
    return pd.DataFrame(rows)


def test_robustness_names_the_factor_the_outcome_depends_on():
    outcomes = _planted_outcomes()
    table = sc.robustness(outcomes).set_index("claim")
    steward = table.loc[verdict.CLAIM_STEWARD]
    expected = int((outcomes["condor_risk_per_cycle"] < 0.2).sum())
    assert steward["holds"] == expected and steward["configurations"] == len(sc.DEFAULT_GRID)
    assert steward["most_sensitive_to"] == "condor risk per cycle"
    assert steward["summary"] == (f"holds in {expected} of {len(sc.DEFAULT_GRID)} configurations; "
                                  "most sensitive to condor risk per cycle")
    promoter = table.loc[verdict.CLAIM_PROMOTER]
    assert promoter["holds"] == 0 and promoter["cannot_be_tested"] == len(sc.DEFAULT_GRID)
    assert f"cannot be tested in {len(sc.DEFAULT_GRID)}" in promoter["summary"] and promoter["most_sensitive_to"] == ""
    assert table.loc[verdict.CLAIM_IRR, "most_sensitive_to"] == "promoter leverage"
    line = verdict.robustness_text(table.reset_index().iloc[0])
    assert line == steward["summary"]


def test_an_undefined_irr_is_never_ranked_over_the_grid():
    """A configuration whose IRR does not exist (an equity that ends below zero: flows that never
    change sign) cannot rank the steward first; the decade sweep printed "ranks first in 33 of 33"
    beside the verdict's "cannot be ranked" because NaN vs NaN compared as -inf >= -inf."""
    table = pd.DataFrame({"window": [], "mode": [], "evaluated": []})
    claim_rows = pd.DataFrame({"claim": [], "status": []})
    scenario = sc.DEFAULT_GRID[0]
    rows = [sc.outcome(scenario, table, claim_rows, irr) for irr in (
        {"steward": np.nan, "promoter": np.nan}, {"steward": 0.05, "promoter": np.nan},
        {"steward": 0.05, "promoter": 0.01}, {"steward": -0.02, "promoter": 0.01})]
    assert [r["irr_status"] for r in rows] == [verdict.CANNOT_BE_TESTED, verdict.CANNOT_BE_TESTED,
                                                "steward first", "promoter first"]
    outcomes = pd.DataFrame([{**r, "steward_status": verdict.DOES_NOT_HOLD, "promoter_status": verdict.DOES_NOT_HOLD,
                              "steward_worst_2008_drawdown": -0.2, "promoter_vx_alone_calls_2008": 0.0}
                             for r in rows])
    irr = sc.robustness(outcomes).set_index("claim").loc[verdict.CLAIM_IRR]
    assert irr["holds"] == 1 and irr["cannot_be_tested"] == 2
    assert irr["summary"].startswith("the steward's IRR ranks first in 1 of 4 configurations (cannot be tested in 2)")
