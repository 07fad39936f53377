"""The feature-set registry without Dagster: each set computes rows for exactly the asked days
from its declared look-back, and the blocking check's rules catch a missing day, a non-finite
value, an out-of-bounds value and a duplicated key, naming the rows."""

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import feature_sets as fsets
from alvh_pipeline.core.calendar import all_sessions, window_start
from alvh_pipeline.core.market_sim import SimConfig
from alvh_pipeline.sources import synthetic

S = all_sessions()
DAYS = S[(S >= "2023-06-01") & (S <= "2023-06-07")]
CFG = SimConfig(n_equities=20)


@pytest.fixture(scope="module")
def computed():
    out = {}
    for name in ("vol_surface", "term_structure", "liquidity", "macro_regime"):
        fs = fsets.FEATURE_SETS[name]
        history = S[(S >= window_start(DAYS[0], fs.lookback)) & (S <= DAYS[-1])]
        frames = {t: synthetic.generate(t, history, CFG) for t in fs.tables}
        out[name] = fs.compute(frames, DAYS)
    return out


@pytest.mark.parametrize("name", ["vol_surface", "term_structure", "liquidity", "macro_regime"])
def test_a_feature_set_gives_one_row_per_asked_day_and_passes_its_check(computed, name):
    fs = fsets.FEATURE_SETS[name]
    out = computed[name]
    assert pd.DatetimeIndex(out["date"]).equals(DAYS)
    assert fsets.feature_problems(fs, out, DAYS) == []


def test_the_check_rules_catch_each_defect(computed):
    fs = fsets.FEATURE_SETS["vol_surface"]
    good = computed["vol_surface"]
    bad = good.copy()
    bad.loc[1, "iv_atm"] = np.nan  # non-finite and (NaN) not out of bounds
    bad.loc[2, "iv_atm"] = 7.0  # out of bounds [0.01, 3]
    bad = pd.concat([bad.drop(index=4), bad.iloc[[0]]])  # a missing day and a duplicated key
    rules = {(p.rule, p.column): p for p in fsets.feature_problems(fs, bad, DAYS)}
    assert set(rules) == {("rows_every_day", "date"), ("finite", "iv_atm"), ("bounds", "iv_atm"),
                          ("unique_keys", "date")}
    assert rules[("rows_every_day", "date")].partitions == [DAYS[4].strftime("%Y-%m-%d")]
    assert rules[("bounds", "iv_atm")].sample[0]["iv_atm"] == 7.0
    assert rules[("finite", "iv_atm")].partitions == [DAYS[1].strftime("%Y-%m-%d")]


def test_inputs_declare_the_look_back_of_every_table():
    for fs in fsets.FEATURE_SETS.values():
        assert [i.table for i in fs.inputs] == list(fs.tables)
        assert all(i.layer == "validated" and i.first_day(DAYS) == window_start(DAYS[0], fs.lookback)
                   for i in fs.inputs)
    assert fsets.history_start(DAYS[0]) == window_start(DAYS[0], fsets.MAX_LOOKBACK)


def test_pairs_summary_counts_the_last_days_selections():
    fs = fsets.FEATURE_SETS["pairs"]
    out = pd.DataFrame({"date": DAYS[-2:].repeat(2), "selected": [True, True, True, False]})
    assert fs.summary(out, DAYS[-2:]) == {"selected_pairs_last_day": 1}


def test_technicals_and_pair_inputs_share_one_indicator_computation_bit_for_bit(monkeypatch):
    """technicals reads RSI / MACD of the closes as delivered, pair_inputs of the single names'
    closes with short gaps carried; `indicator_panels` computes both in one `windowed` call, which
    must equal computing each panel alone exactly, also for a name with a missing bar."""
    s = all_sessions()
    days = s[(s >= pd.Timestamp("2015-01-02"))][:300]
    rng = np.random.default_rng(3)
    names = {"AAA": "Tech", "BBB": "Tech", "CCC": "Energy", "SPY": "ETF"}
    bars = pd.DataFrame([{"date": d, "symbol": n, "sector": sec, "close": 0.0}
                         for d in days for n, sec in names.items()])
    bars["close"] = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, len(bars))))
    bars = bars[~((bars["symbol"] == "BBB") & (bars["date"] == days[280]))]  # a missing bar, carried in pair_inputs
    frames = {"equity_bars": bars.reset_index(drop=True)}
    dates = days[-10:]
    calls = []
    real = fsets.windowed
    monkeypatch.setattr(fsets, "windowed", lambda *a, **k: calls.append(1) or real(*a, **k))
    raw, carried = fsets.indicator_panels(frames, dates)
    again = fsets.indicator_panels({"equity_bars": bars.copy().reset_index(drop=True)}, dates)
    assert len(calls) == 1 and again[0] is raw  # the second feature set of a run reads the kept result
    span = fsets.all_closes(frames).index[-15:]
    for got, panel in ((raw, fsets.all_closes(frames)), (carried, fsets.stock_closes(frames)[0])):
        alone = real(fsets._indicators, panel, span)
        for k in alone:
            pd.testing.assert_frame_equal(got[k], alone[k], check_exact=True)
    assert not raw["rsi14"]["BBB"].equals(carried["rsi14"]["BBB"])  # the gap makes the two differ


def test_a_range_shorter_than_the_indicator_window_gives_nan_not_an_error():
    """No day with its full window (a lake without the look-back): every indicator NaN for every
    name, so technicals has no rows and its check says the look-back is missing (was a KeyError)."""
    days = all_sessions()[(all_sessions() >= pd.Timestamp("2015-01-02"))][:30]
    out = fsets.windowed(fsets._indicators, pd.DataFrame(1.0 + np.arange(90).reshape(30, 3), index=days,
                                                         columns=list("abc")), days[-5:])
    assert set(out) == {"rsi14", "macd", "macd_signal", "macd_hist"}
    assert all(v.shape == (5, 3) and v.isna().all().all() for v in out.values())
    bars = pd.DataFrame([{"date": d, "symbol": n, "sector": "Tech", "close": 10.0 + i}
                         for i, d in enumerate(days) for n in ("AAA", "BBB")])
    tech = fsets.compute_technicals({"equity_bars": bars}, days[-5:])
    assert tech.empty and fsets.feature_problems(fsets.FEATURE_SETS["technicals"], tech, days[-5:])


@pytest.mark.parametrize("name", sorted(fsets.FEATURE_SETS))
def test_a_day_is_the_same_bits_whatever_day_its_run_starts(name):
    """A feature day must not depend on how a backfill chunks the calendar: the nightly run of one
    day, a year's run and a decade's run each read the look-back before their own first day. The
    last days computed in a run starting there equal, bit for bit, the same days computed in a run
    that starts 37 sessions earlier (rolling sums updated day by day would carry the earlier
    start's rounding into every later window)."""
    fs = fsets.FEATURE_SETS[name]
    short = DAYS[-3:]
    long_start = S[S.get_loc(short[0]) - 37]
    long = S[(S >= long_start) & (S <= short[-1])]
    history = S[(S >= window_start(long[0], fs.lookback)) & (S <= long[-1])]
    whole = {t: synthetic.generate(t, history, CFG) for t in fs.tables}
    first_short = window_start(short[0], fs.lookback)
    own = {t: f[pd.to_datetime(f["date"]) >= first_short].reset_index(drop=True) for t, f in whole.items()}
    in_short = fs.compute(own, short).reset_index(drop=True)
    in_long = fs.compute(whole, long)
    in_long = in_long[pd.to_datetime(in_long["date"]).isin(short)].reset_index(drop=True)
    assert len(in_short) and len(in_short) == len(in_long)
    pd.testing.assert_frame_equal(in_short, in_long, check_exact=True)
