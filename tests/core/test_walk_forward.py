import numpy as np
import pandas as pd

from alvh_pipeline.core import walk_forward as wf
from alvh_pipeline.core.calendar import sessions_between


def test_reversion_label_by_hand():
    idx = pd.bdate_range("2024-01-01", periods=6)
    # y = 0.01*spread path, x flat at 0: spread_s = log y_s - 0 - 1*log x_s
    lp = pd.DataFrame({"Y": [0.02, 0.018, 0.012, 0.009, 0.02, 0.02], "X": 0.0}, index=idx)
    s = pd.DataFrame({"date": [idx[0], idx[1], idx[4]], "symbol_y": "Y", "symbol_x": "X", "zscore": [2.0, 1.8, 0.9],
                      "intercept": 0.0, "hedge_ratio": 1.0, "spread_std": 0.01})
    lab = wf.reversion_labels(s, lp, horizon=2)
    # day 0: z path 1.8, 1.2 -> min 1.2 > 1.0 -> no; day 1: 1.2, 0.9 <= 0.9 -> yes; day 4: runs past data
    assert lab.tolist()[:2] == [0.0, 1.0] and np.isnan(lab.iloc[2])


def test_gap_in_the_horizon_leaves_the_label_unknown_unless_reverted():
    idx = pd.bdate_range("2024-01-01", periods=5)
    lp = pd.DataFrame({"Y": [0.02, np.nan, 0.019, 0.005, 0.02], "X": 0.0}, index=idx)
    s = pd.DataFrame({"date": [idx[0], idx[1]], "symbol_y": "Y", "symbol_x": "X", "zscore": [2.0, 1.9],
                      "intercept": 0.0, "hedge_ratio": 1.0, "spread_std": 0.01})
    lab = wf.reversion_labels(s, lp, horizon=2)
    assert np.isnan(lab.iloc[0])  # day 1 missing, day 2 at 1.9: not reverted, not known either
    assert lab.iloc[1] == 1.0  # reverted on day 3 despite nothing missing... (z 0.5 <= 0.95)


def _samples(n_days=400, per_day=20, seed=0):
    sessions = sessions_between("2020-01-01", "2022-12-31")
    rng = np.random.default_rng(seed)
    d = np.repeat(sessions[:n_days], per_day)
    X = rng.standard_normal((len(d), len(wf.FEATURES)))
    logit = 2.0 * X[:, 0] - 1.0 * X[:, 4]  # planted: abs_z and pcf_agree carry the signal
    y = (rng.random(len(d)) < 1 / (1 + np.exp(-logit))).astype(float)
    f = pd.DataFrame(X, columns=wf.FEATURES)
    f["date"] = d
    f["label"] = y
    return f, sessions


def test_walk_forward_learns_a_planted_signal_out_of_sample():
    samples, sessions = _samples()
    predict = sessions[200:400]
    preds, reports = wf.walk_forward_predict(samples, predict, sessions)
    assert preds["model_trained"].all()
    aucs = [r.oos_auc for r in reports if np.isfinite(r.oos_auc)]
    assert len(aucs) >= 8 and np.mean(aucs) > 0.75
    for r in reports:  # calibration: predicted and observed rates close per bin
        for b in r.calibration:
            if b["n"] >= 100:
                assert abs(b["mean_predicted"] - b["observed_rate"]) < 0.12


def test_training_is_purged_and_embargoed_pinned_to_dates():
    samples, sessions = _samples(per_day=1)
    # refit 2021-02-01 with H = 10 and a 5-session embargo: the last usable sample is 16 sessions
    # earlier, 2021-01-07 (MLK day 01-18 closed): its label is known at the close of 01-22 and the
    # embargo 01-25..01-29 ends before the refit
    predict = pd.DatetimeIndex(["2021-02-01"])
    _, (report,) = wf.walk_forward_predict(samples, predict, sessions)
    assert report.refit_date == pd.Timestamp("2021-02-01")
    expected = sessions[(sessions >= samples["date"].min()) & (sessions <= "2021-01-07")]
    assert report.n_train == len(expected)
    _, (capped,) = wf.walk_forward_predict(samples, predict, sessions, max_train_sessions=100)
    assert capped.n_train == 100 - wf.HORIZON - wf.EMBARGO


def test_predictions_ignore_everything_after_the_day():
    samples, sessions = _samples()
    predict = sessions[250:300]
    a, _ = wf.walk_forward_predict(samples, predict, sessions)
    future = pd.DatetimeIndex(samples["date"]) > sessions[275]
    perturbed = samples.copy()
    perturbed.loc[future, "label"] = 1 - perturbed.loc[future, "label"]
    perturbed.loc[future, wf.FEATURES] *= -3
    b, _ = wf.walk_forward_predict(perturbed, predict, sessions)
    keep = pd.DatetimeIndex(samples.loc[a.index, "date"]) <= sessions[275]
    pd.testing.assert_frame_equal(a[keep], b[keep])


def test_untrained_without_enough_history():
    samples, sessions = _samples(n_days=30, per_day=5)
    preds, reports = wf.walk_forward_predict(samples, sessions[10:30], sessions)
    assert not preds["model_trained"].any() and preds["p_revert"].isna().all()
    assert reports[0].n_train < wf.MIN_TRAIN


def test_refit_dates_are_month_starts():
    s = sessions_between("2024-01-01", "2024-04-30")
    assert [d.strftime("%m-%d") for d in wf.refit_dates(s)] == ["01-02", "02-01", "03-01", "04-01"]
