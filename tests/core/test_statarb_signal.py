import numpy as np
import pandas as pd

from alvh_pipeline.core.statarb_signal import SignalParams, agreement, conviction


def _row(**kw):
    base = dict(zscore=2.5, selected=True, pvalue=0.001, pcf_z=1.0, rsi_div_change_5d=-5.0, macd_div_change_5d=-0.01,
                curvature_z=0.0, selected_prev=True)
    base.update(kw)
    return base


def test_entry_requires_all_three_inputs():
    confirmed = _row(zscore=-2.5, pcf_z=-1.0, rsi_div_change_5d=5, macd_div_change_5d=1)
    f = pd.DataFrame([_row(), _row(pcf_z=-1.0), _row(curvature_z=3.0), _row(zscore=1.5), confirmed])
    out = agreement(f)
    assert out["action"].tolist() == ["entry", "none", "none", "none", "entry"]
    assert out["direction"].tolist() == [-1, 0, 0, 0, 1]
    assert out.loc[0, "n_agree"] == 5  # 3 votes + RSI + MACD confirmations


def test_broken_cointegration_never_signals_and_stops_once():
    f = pd.DataFrame([_row(selected=False), _row(pvalue=0.5), _row(selected=False, selected_prev=False)])
    out = agreement(f)
    assert (out["direction"] == 0).all()
    assert out["action"].tolist() == ["stop", "stop", "none"]


def test_exit_and_stop_levels():
    out = agreement(pd.DataFrame([_row(zscore=0.3), _row(zscore=-4.5)]), SignalParams())
    assert out["action"].tolist() == ["exit", "stop"]


def test_conviction_bounds():
    c = conviction(np.array([1, -1, 0, 1]), np.array([0.9, np.nan, 0.99, 0.99]), np.array([2, 0, 2, 2]))
    assert c.tolist() == [0.9, 0.4, 0.0, 0.99]
    assert ((c >= 0) & (c <= 1)).all()
