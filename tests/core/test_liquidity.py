"""Depth quick ratio, QQQ/IWM participation and the liquidity-evaporation warning
(alvh_pipeline.core.liquidity)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core.liquidity import (
    depth_quick_ratio,
    liquidity_evaporation,
    trailing_zscore,
    volume_participation,
)
from alvh_pipeline.sources import synthetic as syn


def _futures(days: pd.DatetimeIndex, seed: int = 1, shock_day: int | None = None) -> pd.DataFrame:
    """Three months of VX quotes per day with noisy spreads and sizes; optional stress shock."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in (1, 2, 3):
        n = len(days)
        settle = 18.0 + m + 0.3 * rng.standard_normal(n)
        half = 0.05 * m * np.exp(0.1 * rng.standard_normal(n))
        size = (300 / m * np.exp(0.1 * rng.standard_normal((2, n)))).astype(np.int64)
        if shock_day is not None:
            half[shock_day] *= 4.0
            size[:, shock_day] //= 5
        rows.append(pd.DataFrame({
            "date": days, "contract": f"VX{m}", "month_index": m, "settle": settle,
            "bid": settle - half, "ask": settle + half, "bid_size": size[0], "ask_size": size[1],
        }))
    return pd.concat(rows, ignore_index=True)


DAYS = pd.bdate_range("2022-01-03", periods=120)


def test_depth_quick_ratio_hand_values():
    days = DAYS[:2]
    fut = pd.DataFrame({
        "date": np.repeat(days, 3), "month_index": [1, 2, 3] * 2,
        "bid_size": [100, 40, 10, 50, 30, 5], "ask_size": [80, 60, 20, 70, 10, 5],
    })
    # day 0: min(100, 80) + min(40, 60) = 120 ; day 1: 50 + 10 = 60 ; order 40 contracts
    q = depth_quick_ratio(fut, order_contracts=40, months=(1, 2))
    np.testing.assert_allclose(q.to_numpy(), [3.0, 1.5])
    q3 = depth_quick_ratio(fut, order_contracts=pd.Series([130.0, 60.0], index=days), months=(1, 2, 3))
    np.testing.assert_allclose(q3.to_numpy(), [1.0, 65.0 / 60.0])
    # a month not quoted that day gives NaN, not a smaller depth
    q_gap = depth_quick_ratio(fut[~((fut.date == days[1]) & (fut.month_index == 2))], 40)
    assert q_gap.iloc[0] == 3.0 and np.isnan(q_gap.iloc[1])
    with pytest.raises(ValueError):
        depth_quick_ratio(fut, order_contracts=0)


def _bars(days, qqq, iwm):
    return pd.DataFrame({
        "date": np.concatenate([days, days, days]),
        "symbol": ["QQQ"] * len(days) + ["IWM"] * len(days) + ["SPY"] * len(days),
        "volume": np.concatenate([qqq, iwm, np.full(len(days), 7)]).astype(np.int64),
    })


def test_volume_participation_hand_values():
    days = DAYS[:25]
    qqq = np.full(25, 100)
    iwm = np.full(25, 50)
    qqq[20], iwm[20] = 150, 30  # day 20: QQQ 1.5x, IWM 0.6x its prior 20-day average
    qqq[21] = 90  # day 21: avg of days 1..20 = (19*100 + 150)/20 = 102.5 -> 90/102.5
    out = volume_participation(_bars(days, qqq, iwm), window=20)
    assert list(out.columns) == ["QQQ", "IWM", "participation_ok"]
    assert out.iloc[:20, :2].isna().all().all() and not out["participation_ok"].iloc[:20].any()
    assert out["QQQ"].iloc[20] == pytest.approx(1.5) and out["IWM"].iloc[20] == pytest.approx(0.6)
    assert not out["participation_ok"].iloc[20]  # IWM below 0.8
    assert out["QQQ"].iloc[21] == pytest.approx(90 / 102.5)
    assert out["IWM"].iloc[21] == pytest.approx(50 / 49.0)  # (19*50 + 30)/20 = 49
    assert out["participation_ok"].iloc[21]
    strict = volume_participation(_bars(days, qqq, iwm), window=20, threshold=1.0)
    assert not strict["participation_ok"].iloc[21]  # QQQ 0.878 < 1


def test_volume_participation_on_synthetic_bars():
    days = syn.ground_truth()["regimes"].loc["2010-01-04":"2010-04-30"].index
    bars = syn.generate("equity_bars", days)
    out = volume_participation(bars)
    valid = out.iloc[20:]
    assert valid[["QQQ", "IWM"]].notna().all().all()
    assert 0.7 < valid["QQQ"].median() < 1.3
    # the default threshold passes about half of ordinary days, 1.0 only about one in five
    ok_default = valid["participation_ok"].mean()
    ok_strict = volume_participation(bars, threshold=1.0)["participation_ok"].iloc[20:].mean()
    assert ok_default > 0.4 and ok_strict < 0.35 and ok_strict < ok_default


def test_trailing_zscore_excludes_today():
    x = pd.Series([1.0, 2.0, 3.0, 10.0])
    z = trailing_zscore(x, window=3)
    # baseline 1, 2, 3: mean 2, sample std 1 -> (10 - 2) / 1
    assert z.iloc[3] == pytest.approx(8.0)
    assert z.iloc[:3].isna().all()


def test_liquidity_evaporation_fires_on_shock_only():
    shock = 100
    fut = _futures(DAYS, shock_day=shock)
    out = liquidity_evaporation(fut, window=60)
    f1 = fut[fut.month_index == 1].set_index("date")
    t = DAYS[shock]
    rel = (f1.ask - f1.bid) / ((f1.ask + f1.bid) / 2)
    assert out.loc[t, "rel_spread"] == pytest.approx(rel.loc[t], rel=1e-12)
    base = rel.iloc[shock - 60 : shock]
    assert out.loc[t, "spread_z"] == pytest.approx((rel.loc[t] - base.mean()) / base.std(), rel=1e-9)
    depth = np.log(np.minimum(f1.bid_size, f1.ask_size).astype(float))
    dbase = depth.iloc[shock - 60 : shock]
    assert out.loc[t, "depth_loss_z"] == pytest.approx(-(depth.loc[t] - dbase.mean()) / dbase.std(), rel=1e-9)
    assert out.loc[t, "spread_z"] > 2 and out.loc[t, "depth_loss_z"] > 2
    assert out["warning"].sum() == 1 and out.loc[t, "warning"]
    assert out["spread_z"].iloc[:60].isna().all() and not out["warning"].iloc[:60].any()
    # a spread blow-out with intact depth is not evaporation
    wide_only = fut.copy()
    sel = (wide_only.date == t)
    wide_only.loc[sel, ["bid_size", "ask_size"]] = _futures(DAYS).loc[sel, ["bid_size", "ask_size"]].to_numpy()
    assert not liquidity_evaporation(wide_only).loc[t, "warning"]


def test_no_look_ahead():
    t = 80
    fut = _futures(DAYS)
    later = fut.date > DAYS[t]
    changed = fut.copy()
    changed.loc[later, ["bid_size", "ask_size"]] //= 7
    changed.loc[later, "ask"] += 1.0
    a, b = liquidity_evaporation(fut), liquidity_evaporation(changed)
    pd.testing.assert_frame_equal(a.iloc[: t + 1], b.iloc[: t + 1], check_exact=True)
    assert b["warning"].iloc[t + 1]
    qa, qb = depth_quick_ratio(fut, 100), depth_quick_ratio(changed, 100)
    pd.testing.assert_series_equal(qa.iloc[: t + 1], qb.iloc[: t + 1])
    rng = np.random.default_rng(2)
    qqq, iwm = rng.integers(80, 120, len(DAYS)), rng.integers(40, 60, len(DAYS))
    q2, i2 = qqq.copy(), iwm.copy()
    q2[t + 1 :] *= 5
    i2[t + 1 :] //= 5
    va, vb = volume_participation(_bars(DAYS, qqq, iwm)), volume_participation(_bars(DAYS, q2, i2))
    pd.testing.assert_frame_equal(va.iloc[: t + 1], vb.iloc[: t + 1], check_exact=True)
