"""Trailing-window statistics (core.rolling): pandas' rolling values to rounding, NaN and
min_periods as pandas treats them, and a day's value the same bits whatever row the series
starts on (pandas' running sums are not)."""

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import rolling
from alvh_pipeline.core.calendar import all_sessions


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    values = np.cumsum(rng.normal(0.0, 1.0, (400, 6)), axis=0) * 1e-3 + rng.normal(0, 1e-2, (400, 6))
    values[rng.random(values.shape) < 0.05] = np.nan  # missing values, skipped as pandas skips them
    values[:30, 2] = np.nan  # a column that starts late
    return pd.DataFrame(values, index=pd.RangeIndex(400), columns=list("abcdef"))


@pytest.mark.parametrize("window, min_periods", [(20, 20), (60, 40), (252, 100), (5, 1)])
def test_equal_to_pandas_rolling_to_rounding(panel, window, min_periods):
    roll = panel.rolling(window, min_periods=min_periods)
    mean, std = rolling.window_mean_std(panel, window, min_periods)
    pd.testing.assert_frame_equal(mean, roll.mean(), check_exact=False, rtol=1e-12, atol=1e-15)
    pd.testing.assert_frame_equal(std, roll.std(), check_exact=False, rtol=1e-10, atol=1e-15)
    _, std0 = rolling.window_mean_std(panel, window, min_periods, ddof=0)
    pd.testing.assert_frame_equal(std0, roll.std(ddof=0), check_exact=False, rtol=1e-10, atol=1e-15)
    pd.testing.assert_frame_equal(rolling.window_sum(panel, window, min_periods), roll.sum(),
                                  check_exact=False, rtol=1e-12, atol=1e-15)
    z = rolling.trailing_zscore(panel["a"], window, min_periods)
    base = panel["a"].shift(1).rolling(window, min_periods=min_periods)
    pd.testing.assert_series_equal(z, (panel["a"] - base.mean()) / base.std(), check_exact=False, rtol=1e-9)


def test_a_value_depends_on_its_window_only_to_the_bit(panel):
    """The same rows with 137 earlier rows dropped: every value whose window lies inside both is
    identical (pandas' own rolling sums differ in the last bits here)."""
    window, later = 60, panel.iloc[137:]
    mean_all, std_all = rolling.window_mean_std(panel, window, 40)
    mean_late, std_late = rolling.window_mean_std(later, window, 40)
    tail = panel.index[137 + window:]
    pd.testing.assert_frame_equal(mean_all.loc[tail], mean_late.loc[tail], check_exact=True)
    pd.testing.assert_frame_equal(std_all.loc[tail], std_late.loc[tail], check_exact=True)
    product = rolling.window_product(1 + panel["b"].fillna(0.0), window)
    assert product.loc[tail].equals(rolling.window_product(1 + later["b"].fillna(0.0), window).loc[tail])
    pandas_all = panel.rolling(window, min_periods=40).mean().loc[tail]
    pandas_late = later.rolling(window, min_periods=40).mean().loc[tail]
    assert not pandas_all.equals(pandas_late)  # the defect this module removes, still in pandas


def test_windows_without_enough_values_are_nan_and_a_constant_window_has_zero_deviation():
    x = pd.Series([np.nan, 1.0, 1.0, 1.0, np.nan, 2.0])
    mean, std = rolling.window_mean_std(x, 3, min_periods=2)
    assert np.isnan(mean[:2]).all() and mean[2] == 1.0 and std[3] == 0.0
    assert mean[5] == 1.5 and std[5] == pytest.approx(np.sqrt(0.5))
    count, total = rolling.window_count_sum(x, 3)
    assert count.tolist() == [0, 1, 2, 3, 2, 2] and total.tolist() == [0, 1, 2, 3, 2, 3]
    assert np.isnan(rolling.window_product(x, 2)[[0, 1, 4, 5]]).all() and rolling.window_product(x, 2)[3] == 1.0


def test_dated_rows_are_blocked_on_the_trading_calendar(panel):
    """A frame of sessions: the blocks sit at fixed sessions, so a read that starts on another day
    gives the same bits for every full window, also with a window that is not a divisor of the gap."""
    days = all_sessions()[all_sessions() >= pd.Timestamp("2015-01-02")][:400]
    dated = panel.set_index(days)
    for window, skip in ((252, 101), (21, 5), (60, 1)):
        later = dated.iloc[skip:]
        tail = days[skip + window:]
        for got_all, got_late in zip(rolling.window_mean_std(dated, window, 10),
                                     rolling.window_mean_std(later, window, 10)):
            pd.testing.assert_frame_equal(got_all.loc[tail], got_late.loc[tail], check_exact=True)
        pd.testing.assert_frame_equal(rolling.window_sum(dated, window).loc[tail],
                                      rolling.window_sum(later, window).loc[tail], check_exact=True)
    z = rolling.trailing_zscore(dated["a"], 60, 30)
    assert z.loc[days[200:]].equals(rolling.trailing_zscore(dated["a"].iloc[77:], 60, 30).loc[days[200:]])
