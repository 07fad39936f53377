"""The `replay` source (alvh_pipeline.sources.replay) equals its real sources exactly where it
claims provenance "real", follows the stated rule where it claims "derived" (VIX from the real VX
curve, with its measured error), and labels everything else "model"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from arch.data import nasdaq, sp500, vix

from alvh_pipeline.core import calendar as cal
from alvh_pipeline.core import chain_model
from alvh_pipeline.core import market_sim as ms
from alvh_pipeline.core.vol_surface import spx_surface
from alvh_pipeline.quality.validate import validate_frame
from alvh_pipeline.schemas import CONTRACTS, RAW_TABLES
from alvh_pipeline.sources import real_data, replay

RNG = np.random.default_rng(5)
SPAN_SESSIONS = cal.sessions_between("1999-01-04", "2018-12-31")
SAMPLED = pd.DatetimeIndex(np.sort(RNG.choice(SPAN_SESSIONS, 40, replace=False))).append(
    pd.DatetimeIndex(["1999-01-04", "2008-10-10", "2008-11-17", "2014-01-03", "2018-12-31"])
).sort_values().unique()


def _arch(module, column: str) -> pd.Series:
    s = module.load()[column]
    s.index = pd.DatetimeIndex(s.index).as_unit("ns")
    return s


@pytest.fixture(scope="module")
def levels() -> pd.DataFrame:
    return replay.generate("index_levels", SAMPLED)


@pytest.mark.parametrize(("name", "module"), [("SPX", sp500), ("COMP", nasdaq)])
def test_index_levels_equal_arch(levels, name, module):
    rows = levels[levels["index"] == name].set_index("date")
    assert len(rows) == len(SAMPLED)
    assert (rows["provenance"] == "real").all()
    for col in ("open", "high", "low", "close"):
        ref = _arch(module, col.capitalize()).reindex(pd.DatetimeIndex(rows.index))
        assert ref.notna().all()
        np.testing.assert_array_equal(rows[col].to_numpy(), ref.to_numpy())  # exact
    if name == "SPX":
        assert rows.loc["2008-10-10", "close"] == pytest.approx(899.22, abs=0.005)


CFE_FIRST, REAL_VIX_FIRST = pd.Timestamp("2004-03-26"), pd.Timestamp("2014-01-03")


def test_vix_real_from_2014_derived_from_futures_before_model_earlier(levels):
    v = levels[levels["index"] == "VIX"].set_index("date")
    when = pd.DatetimeIndex(v.index)
    real, derived = when >= REAL_VIX_FIRST, (when >= CFE_FIRST) & (when < REAL_VIX_FIRST)
    model = when < CFE_FIRST
    assert real.sum() >= 5 and derived.sum() >= 15 and model.sum() >= 5
    assert (v["provenance"][real] == "real").all()
    assert (v["provenance"][derived] == "derived").all()
    assert (v["provenance"][model] == "model").all()
    ref = _arch(vix, "vix").reindex(pd.DatetimeIndex(v.index[real]))
    np.testing.assert_array_equal(v["close"][real].to_numpy(), ref.to_numpy())  # exact
    assert v.loc["2014-01-03", "close"] == 13.76
    # derived: the VX-curve rule to the cent, a close only (open = high = low = close)
    rule = real_data.load_vix_derived().reindex(pd.DatetimeIndex(v.index[derived]))
    np.testing.assert_allclose(v["close"][derived].to_numpy(), rule.round(2).to_numpy(), rtol=0, atol=1e-9)
    for col in ("open", "high", "low"):
        np.testing.assert_array_equal(v[col][derived | real].to_numpy(), v["close"][derived | real].to_numpy())
    assert v.loc["2008-10-10", "close"] > 40.0  # peak of the 2008 crisis
    # before the CFE data the model VIX is a plausible level (EWMA of real SPX variance, floored at 8%)
    assert v["close"][model].between(8.0, 120.0).all()


def _err(est: pd.Series, ref: pd.Series) -> pd.Series:
    e = (est.reindex(ref.index) - ref).dropna()
    assert len(e) == len(ref)
    return e


def test_derived_vix_error_figures():
    """The derived VIX against every real reference: the VX final settlement values (= VIX's
    special opening quotation on each expiry day; out of sample, the rule reads only date < expiry
    rows) and the real VIX close where both exist; the model it replaces, for comparison."""
    derived = real_data.load_vix_derived()
    fin = real_data.load_cfe_final_settlements().set_index("date")["settle"]
    assert len(fin) == 119
    state, prov, ohlc = replay.replay_state(ms.SimConfig())
    spx = ohlc[ohlc["index"] == "SPX"].set_index("date")["close"]
    model = pd.Series(replay.model_vix(spx.to_numpy()), index=pd.DatetimeIndex(spx.index))

    e = _err(derived, fin)  # measured: mean |e| 1.296, max 6.09 on 2008-10-22, bias +0.34
    assert 1.0 < e.abs().mean() < 1.45, e.abs().mean()
    assert 5.5 < e.abs().max() < 6.5 and e.abs().idxmax() == pd.Timestamp("2008-10-22")
    m = _err(model, fin)  # the model: mean 3.63, max 16.87 on 2008-10-22
    assert m.abs().mean() > 3.4 and m.abs().max() > 16.0 and m.abs().idxmax() == pd.Timestamp("2008-10-22")
    assert e.abs().mean() < 0.4 * m.abs().mean()

    real_vix = _arch(vix, "vix").dropna()
    overlap = real_vix[real_vix.index <= derived.index.max()]
    assert len(overlap) == 155  # 2014-01-03 .. 2014-08-14
    o = _err(derived, overlap)  # measured: mean |e| 0.650, max 1.96 on 2014-07-31, bias +0.42
    assert 0.5 < o.abs().mean() < 0.75 and o.abs().max() < 2.1
    assert 0.3 < o.mean() < 0.55  # the linear extrapolation sits slightly above the spot in contango

    # the published replay path: derived up to the real VIX, so the 2014 seam no longer jumps
    # (model 9.90 -> real 13.76 before; derived 13.59 -> 13.76 now)
    path = pd.Series(np.round(ms.vix_future_fair(state.variance, 0.0, state.config), 2), index=state.dates)
    assert prov.loc["2014-01-02"] == "derived" and prov.loc["2014-01-03"] == "real"
    assert abs(path.loc["2014-01-03"] - path.loc["2014-01-02"]) < 0.5
    assert path.loc["2014-01-02"] == pytest.approx(13.59, abs=0.005)
    pub = _err(path[prov == "derived"], fin[fin.index < REAL_VIX_FIRST])  # 112 pre-2014 expiry days
    assert pub.abs().mean() < 1.45 and pub.abs().max() < 6.5


def test_option_chains_follow_the_vix_path():
    """One VIX path sets the state variance, so the SPX chain's 30-day ATM vol sits at the same
    ratio to the published VIX (chain_model's calibrated atm_to_vix) whatever its provenance."""
    days = ["2003-06-02", "2005-06-15", "2008-10-22", "2013-12-31", "2016-03-01"]
    lv = replay.generate("index_levels", days)
    v = lv[lv["index"] == "VIX"].set_index("date")
    assert list(v["provenance"]) == ["model", "derived", "derived", "derived", "real"]
    atm = spx_surface(replay.generate("spx_options", days))["iv_atm"]
    ratio = 100 * atm.to_numpy() / v["close"].to_numpy()
    np.testing.assert_allclose(ratio, chain_model.CALIBRATED.atm_to_vix, atol=0.01)
    assert v.loc["2008-10-22", "close"] == pytest.approx(56.95, abs=0.005)  # derived, not the model's


def test_vix_all_real_days_2014_2018_equal_arch():
    days = cal.sessions_between("2014-01-03", "2018-12-31")
    v = replay.generate("index_levels", days)
    v = v[v["index"] == "VIX"].set_index("date")
    ref = _arch(vix, "vix").reindex(pd.DatetimeIndex(v.index))
    assert len(v) == 1257 and ref.notna().all()
    assert (v["provenance"] == "real").all()
    np.testing.assert_array_equal(v["close"].to_numpy(), ref.to_numpy())


# ---- VIX futures --------------------------------------------------------------------------------

CFE_DAYS = pd.DatetimeIndex(["2004-03-26", "2005-06-15", "2006-01-03", "2007-03-23", "2007-03-26",
                             "2008-10-10", "2008-11-17", "2010-05-07", "2012-12-31", "2014-08-14"])


@pytest.fixture(scope="module")
def replay_futures() -> pd.DataFrame:
    return replay.generate("vix_futures", CFE_DAYS)


@pytest.fixture(scope="module")
def cfe_front8() -> pd.DataFrame:
    """The CFE rows of each sampled day, front month first, the first 8 listed (M1..M8)."""
    cfe = real_data.load_cfe_settlements()
    cfe = cfe[cfe["date"].isin(CFE_DAYS)].sort_values(["date", "expiry"])
    return cfe.groupby("date").head(8).reset_index(drop=True)


def test_vix_futures_settles_equal_cfe(replay_futures, cfe_front8):
    f = replay_futures
    assert (f["provenance"] == "real").all()
    m = cfe_front8.merge(f, on=["date", "contract"], how="left", suffixes=("_cfe", ""))
    assert m["settle"].notna().all()
    assert (pd.DatetimeIndex(m["expiry"]) == pd.DatetimeIndex(m["expiry_cfe"])).all()
    bad = m[m["settle"] != m["settle_cfe"]]
    sample = bad[['date', 'contract', 'settle_cfe', 'settle']].head()
    assert bad.empty, f"{len(bad)} of {len(m)} settles differ, e.g.\n{sample}"


def test_vix_futures_known_settles(replay_futures):
    f = replay_futures.set_index(["date", "contract"])["settle"]
    assert f.loc[(pd.Timestamp("2008-11-17"), "VXX08")] == 67.95  # front month, Nov 2008
    assert f.loc[(pd.Timestamp("2008-11-17"), "VXZ08")] == 56.25
    front = replay_futures[replay_futures["month_index"] == 1].set_index("date")["contract"]
    assert front.loc["2008-11-17"] == "VXX08"
    # before 2007-03-26 CFE quoted 10x the index: published 120.20 / 138.80 / 153.80 / 163.00
    raw = real_data.load_cfe_raw()
    raw = raw[raw["trade_date"] == pd.Timestamp("2006-01-03")].set_index("futures")["settle"]
    published = {"VXF06": 120.20, "VXG06": 138.80, "VXK06": 153.80, "VXQ06": 163.00}
    assert sorted(raw.round(2).tolist()) == sorted(published.values())
    for contract, px in published.items():
        assert f.loc[(pd.Timestamp("2006-01-03"), contract)] == pytest.approx(px / 10, abs=1e-9), contract


def test_vix_futures_at_most_eight_months(replay_futures, cfe_front8):
    """DESIGN §9 / schema: monthly contracts M1..M8 (CFE lists up to 10 on some days)."""
    f = replay_futures
    assert f["month_index"].between(1, 8).all(), f.groupby("date")["month_index"].max().to_dict()
    per_day = f.groupby("date")["contract"].apply(list)
    expected = cfe_front8.groupby("date")["contract"].apply(list)
    assert per_day.to_dict() == expected.to_dict()


def test_vix_futures_outside_cfe_coverage_are_model():
    days = pd.DatetimeIndex(["1999-01-04", "2003-06-02", "2004-03-25", "2014-08-15", "2016-03-01", "2018-12-31"])
    f = replay.generate("vix_futures", days)
    assert (f["provenance"] == "model").all()
    assert (f.groupby("date").size() == 8).all()
    assert set(pd.DatetimeIndex(f["date"])) == set(days)
    mixed = replay.generate("vix_futures", ["2014-08-14", "2014-08-15"])
    prov = mixed.groupby("date")["provenance"].unique().apply(list).to_dict()
    assert prov == {pd.Timestamp("2014-08-14"): ["real"], pd.Timestamp("2014-08-15"): ["model"]}


def test_rates_real_tbill_where_covered():
    r = replay.generate("rates", ["2003-06-02", "2008-10-10", "2016-03-01"]).set_index("date")
    assert list(r["provenance"]) == ["model", "real", "model"]
    tb = real_data.load_tbill()
    assert r.loc["2008-10-10", "tbill_3m"] == pytest.approx(tb.loc["2008-10-10"], abs=5e-7)


# ---- span and quality -------------------------------------------------------------------------

@pytest.mark.parametrize("day", ["2020-01-02", "1998-06-01"])
def test_outside_span_raises_naming_the_span(day):
    with pytest.raises(ValueError, match=r"1999-01-04\.\.2018-12-31") as err:
        replay.generate("index_levels", [day])
    assert day in str(err.value)


def test_non_session_raises():
    with pytest.raises(ValueError, match="2008-12-25"):
        replay.generate("vix_futures", ["2008-12-24", "2008-12-25"])


@pytest.mark.parametrize("table", RAW_TABLES)
def test_every_table_passes_quality_on_2008_10_10(table):
    frame = replay.generate(table, ["2008-10-10"])
    assert len(frame) > 0
    assert list(frame.columns) == CONTRACTS[table].column_names
    assert set(frame["provenance"]) <= ({"synthetic"} if table == "equity_bars" else {"real", "derived", "model"})
    report = validate_frame(table, frame, ["2008-10-10"])
    assert report.passed, report.message()
