"""Exchange calendar and contract expiry rules (alvh_pipeline.core.calendar) vs. real CFE data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core import calendar as cal
from alvh_pipeline.sources.real_data import load_cfe_final_settlements

# Contracts that followed the original 2004 rule (Wednesday before the contract month's
# third Friday), a week before today's rule.
ORIGINAL_2004_RULE = {"VXN04": pd.Timestamp("2004-07-14"), "VXV04": pd.Timestamp("2004-10-13")}


@pytest.fixture(scope="module")
def finals() -> pd.DataFrame:
    return load_cfe_final_settlements()


def test_vix_expiry_equals_cfe_last_trade_dates(finals):
    assert len(finals) == 119  # every contract that expired 2004-05 .. 2014-07
    assert finals["contract"].is_unique
    ours = cal.vix_expiry(finals["year"].to_numpy(), finals["month"].to_numpy())
    published = pd.DatetimeIndex(finals["date"])  # the expiry-day row
    differs = set(finals["contract"][np.asarray(ours != published)])
    assert differs == set(ORIGINAL_2004_RULE)
    for contract, day in ORIGINAL_2004_RULE.items():
        row = finals[finals["contract"] == contract]
        assert pd.Timestamp(row["date"].iloc[0]) == day
        ours_one = cal.vix_expiry(int(row["year"].iloc[0]), int(row["month"].iloc[0]))[0]
        assert ours_one - day == pd.Timedelta(days=7)
    # contract codes agree as well
    np.testing.assert_array_equal(
        cal.contract_code(finals["year"].to_numpy(), finals["month"].to_numpy()), finals["contract"].to_numpy()
    )


def test_vix_expiries_are_wednesdays_except_good_friday_tuesdays(finals):
    exp = cal.vix_expiry(np.repeat(np.arange(2004, 2027), 12), np.tile(np.arange(1, 13), 23))
    assert exp.is_monotonic_increasing and exp.is_unique
    assert cal.is_session(exp).all()
    not_wed = exp[exp.day_of_week != 2]
    assert {d.weekday() for d in not_wed} == {1}  # Tuesdays only
    assert pd.Timestamp("2008-02-19") in not_wed and pd.Timestamp("2014-03-18") in not_wed
    # each sits 30 days before a Thursday SPX expiry (Good Friday), or before a holiday Wednesday
    # (Juneteenth 2024: VXM24 expired Tuesday 2024-06-18)
    good_friday = []
    for d in not_wed:
        spx = d + pd.Timedelta(days=30)
        if spx.weekday() == 3 and not cal.is_session([spx + pd.Timedelta(days=1)])[0]:
            good_friday.append(d)
        else:
            assert not cal.is_session([d + pd.Timedelta(days=1)])[0]
    assert list(not_wed.strftime("%Y-%m-%d")) == [
        "2008-02-19", "2014-03-18", "2019-03-19", "2022-03-15", "2024-06-18", "2025-03-18", "2026-05-19"]
    # Good Friday 2008/2014/2019/2022/2025 and Juneteenth Friday 2026-06-19
    assert len(good_friday) == 6


def test_good_friday_cases():
    assert cal.vix_expiry(2008, 2)[0] == pd.Timestamp("2008-02-19")
    assert cal.vix_expiry(2014, 3)[0] == pd.Timestamp("2014-03-18")
    assert cal.vix_expiry(2008, 2)[0].day_name() == "Tuesday"
    assert cal.vix_expiry(2014, 3)[0].day_name() == "Tuesday"
    # the SPX monthly moved to the Thursday before Good Friday
    assert cal.spx_monthly_expiry(2008, 3)[0] == pd.Timestamp("2008-03-20")
    assert cal.spx_monthly_expiry(2014, 4)[0] == pd.Timestamp("2014-04-17")
    # ordinary months: Wednesday 30 days before the third Friday
    assert cal.vix_expiry(2008, 11)[0] == pd.Timestamp("2008-11-19")
    assert cal.vix_expiry(2023, 12)[0] == pd.Timestamp("2023-12-20")
    assert cal.third_friday(2008, 12)[0] == pd.Timestamp("2008-12-19")


def test_spx_expiries_move_good_friday_weekly_to_thursday():
    exp = cal.spx_expiries("2023-04-03")  # Good Friday 2023-04-07
    assert pd.Timestamp("2023-04-06") in exp
    assert pd.Timestamp("2023-04-07") not in exp
    assert pd.Timestamp("2023-04-21") in exp  # monthly third Friday
    assert (exp > pd.Timestamp("2023-04-03")).all() and exp.is_monotonic_increasing and exp.is_unique
    assert cal.is_session(exp).all()
    # 6 weeklies (Apr 6, 14, 21, 28, May 5, 12) + monthlies May 19, Jun 16, Jul 21, Aug 18
    assert list(exp.strftime("%Y-%m-%d")) == [
        "2023-04-06", "2023-04-14", "2023-04-21", "2023-04-28", "2023-05-05", "2023-05-12",
        "2023-05-19", "2023-06-16", "2023-07-21", "2023-08-18",
    ]
    # 2008: Good Friday is the March monthly -> Thursday 2008-03-20
    exp08 = cal.spx_expiries("2008-03-17")
    assert pd.Timestamp("2008-03-20") in exp08 and pd.Timestamp("2008-03-21") not in exp08


@pytest.mark.parametrize("date", ["2008-11-17", "2008-11-19", "2014-03-18", "2023-12-29", "2004-03-26"])
def test_listed_vix_futures(date):
    d = pd.Timestamp(date)
    listed = cal.listed_vix_futures(d)
    exp = pd.DatetimeIndex(listed["expiry"])
    assert len(listed) == 8
    assert (exp > d).all()
    assert (np.diff(exp.values) > np.timedelta64(0)).all()
    assert list(listed["month_index"]) == list(range(1, 9))
    # consecutive months, the front is the first contract expiring after the date
    months = listed["year"] * 12 + listed["month"]
    assert (np.diff(months) == 1).all()
    y, m = divmod(int(months.iloc[0]) - 2, 12)  # the previous contract month (0-based m)
    assert cal.vix_expiry(y, m + 1)[0] <= d
    assert (exp == cal.vix_expiry(listed["year"].to_numpy(), listed["month"].to_numpy())).all()


def test_listed_vix_futures_on_expiry_day_rolls():
    # 2008-11-19 is VXX08's expiry: it is no longer listed that day, VXZ08 is the front
    assert cal.listed_vix_futures("2008-11-18")["contract"].iloc[0] == "VXX08"
    assert cal.listed_vix_futures("2008-11-19")["contract"].iloc[0] == "VXZ08"
    assert list(cal.listed_vix_futures("2008-11-17")["contract"]) == [
        "VXX08", "VXZ08", "VXF09", "VXG09", "VXH09", "VXJ09", "VXK09", "VXM09"]


def test_weekday_holidays():
    hol = cal.weekday_holidays()
    for d in ("2001-09-11", "2001-09-14", "2012-10-29", "2012-10-30", "2008-12-25", "2004-06-11",
              "2018-12-05", "2007-01-02"):
        assert pd.Timestamp(d) in hol, d
    assert (hol.day_of_week < 5).all()
    assert len(hol.intersection(cal.all_sessions())) == 0
    # 9 or 10 regular holidays a year, more with ad-hoc closures
    per_year = pd.Series(1, index=hol).groupby(hol.year).sum()
    # 8 when New Year's Day falls on a Saturday (not observed), 9-10 otherwise, more with closures
    assert per_year.loc[2005:2024].drop(2012).between(8, 10).all()
    assert per_year.loc[2005] == 8 and per_year.loc[2011] == 8
    assert per_year.loc[2001] == 13 and per_year.loc[2012] == 11 and per_year.loc[2025] == 11
    assert pd.Timestamp("2008-12-24") not in hol  # half day, still a session


def test_sessions_and_business_days():
    s = cal.sessions_between("2008-12-22", "2009-01-02")
    assert list(s.strftime("%m-%d")) == ["12-22", "12-23", "12-24", "12-26", "12-29", "12-30", "12-31", "01-02"]
    assert cal.business_days_between("2008-12-22", "2009-01-02")[0] == 7
    assert cal.previous_session(["2008-12-25"])[0] == pd.Timestamp("2008-12-24")
    assert cal.previous_session(["2008-12-24"], inclusive=False)[0] == pd.Timestamp("2008-12-23")


def test_dates_beyond_the_calendar_end_are_not_silently_clamped():
    """The XNYS calendar ends about a year ahead; a date past its last session must raise like a
    date before its start does, not map to the last session (vix_expiry(2030, 1) was a Monday)."""
    last = cal.all_sessions()[-1]
    with pytest.raises(ValueError):
        cal.previous_session([last + pd.Timedelta(days=40)])
    with pytest.raises(ValueError):
        cal.previous_session(["1990-01-02"])


def test_the_sessions_kept_on_disk_are_exchange_calendars_own_and_a_bad_file_is_rebuilt(tmp_path, monkeypatch):
    """all_sessions reads the day's kept copy of XNYS's sessions (building the calendar costs ~0.8 s
    a process): the copy equals the calendar's sessions, is named by exchange_calendars' version and
    today, and an unreadable copy is rebuilt, not trusted."""
    monkeypatch.setattr(cal.tempfile, "gettempdir", lambda: str(tmp_path))
    built = cal._xnys_sessions()
    path = cal.sessions_cache_path()
    assert path.parent.parent == tmp_path and pd.Timestamp.now().strftime("%Y-%m-%d") in path.name
    assert not path.exists()
    np.testing.assert_array_equal(cal._cached_sessions(), built)  # built, then kept
    assert path.exists()
    np.testing.assert_array_equal(np.load(path), built)
    np.testing.assert_array_equal(cal._cached_sessions(), built)  # read back
    path.write_bytes(b"not an array")
    np.testing.assert_array_equal(cal._cached_sessions(), built)
    np.testing.assert_array_equal(np.load(path), built)  # rewritten whole
    assert not list(path.parent.glob("*.tmp"))
