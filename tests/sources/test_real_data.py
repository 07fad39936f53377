"""Real-data loaders vs. their source files (alvh_pipeline.sources.real_data)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alvh_pipeline.core.calendar import all_sessions, listed_vix_futures, vix_expiry
from alvh_pipeline.sources import real_data as rd

# the published CSVs sit in ../shared beside the repository (CI lays a copy there too)
SHARED = Path(os.environ.get("ALVH_CFE_SOURCE_DIR",
                             Path(__file__).resolve().parents[3] / "shared" / "data" / "cfe_vix_futures"))
needs_csv = pytest.mark.skipif(
    not (SHARED / "vix_futures.csv").exists(), reason="source CSVs (../shared/data) not present"
)
MONTHS = {m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}


def _csv_date(s: str) -> pd.Timestamp:
    m, d, y = (int(x) for x in s.split("/"))
    return pd.Timestamp(dt.date(y, m, d))


@pytest.fixture(scope="module")
def csv_rows() -> pd.DataFrame:
    """The CFE CSV parsed independently of the converter: strings, plus key columns."""
    if not (SHARED / "vix_futures.csv").exists():
        pytest.skip("source CSVs not present")
    with open(SHARED / "vix_futures.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert sum(len(r) == 12 and r[11] == "" for r in body) == 156
    body = [r[:11] for r in body]
    df = pd.DataFrame(body, columns=header)
    df["date"] = [_csv_date(s) for s in df["Trade Date"]]
    df["contract"] = [
        "VX" + f[0] + f[-3:-1] for f in df["Futures"]
    ]  # "K (May 04)" -> "VXK04"
    assert all(f[0] == "FGHJKMNQUVXZ"[MONTHS[f[3:6]] - 1] for f in df["Futures"])
    return df


def _num(s: pd.Series) -> np.ndarray:
    return np.array([float(x) if x != "" else np.nan for x in s], dtype="float64")


@pytest.fixture(scope="module")
def cfe_all() -> pd.DataFrame:
    return pd.concat(
        [rd.load_cfe_settlements(), rd.load_cfe_final_settlements()], ignore_index=True
    )


# --- the stored file is the publication, unfixed --------------------------------------------


def test_packaged_parquet_is_the_raw_publication(csv_rows):
    raw = rd.load_cfe_raw()
    assert len(raw) == len(csv_rows) == 20356
    assert (raw["trade_date"].to_numpy() == csv_rows["date"].to_numpy()).all()
    assert (raw["futures"].to_numpy() == csv_rows["Futures"].to_numpy()).all()
    for col, src in [("open", "Open"), ("high", "High"), ("low", "Low"), ("close", "Close"),
                     ("settle", "Settle"), ("change", "Change")]:
        np.testing.assert_array_equal(raw[col].to_numpy("float64"), _num(csv_rows[src]), err_msg=col)
    for col, src in [("total_volume", "Total Volume"), ("efp", "EFP"), ("open_interest", "Open Interest")]:
        assert raw[col].dtype == "int64"
        assert (raw[col].to_numpy() == csv_rows[src].astype("int64").to_numpy()).all(), col


def test_packaged_files_are_small():
    data = Path(rd.__file__).parent / "data"
    assert (data / rd.CFE_FILE).stat().st_size < 1_000_000
    assert (data / rd.TBILL_FILE).stat().st_size < 100_000
    assert (data / "LICENSE-cfe_vix_futures").exists()


# --- CFE loader vs. CSV -----------------------------------------------------------------------


def test_cfe_settles_multiplier_fix_on_every_row(csv_rows, cfe_all):
    traded = csv_rows[_num(csv_rows["Settle"]) > 0]
    assert len(cfe_all) == len(traded) == 20018
    exp = traded.set_index(["date", "contract"]).sort_index()
    got = cfe_all.set_index(["date", "contract"]).sort_index()
    assert got.index.is_unique
    assert got.index.equals(exp.index)
    pre = (exp.index.get_level_values("date") < pd.Timestamp("2007-03-26"))
    assert pre.sum() > 0 and (~pre).sum() > 0
    settle = _num(exp["Settle"])
    want = np.where(pre, settle / 10, settle)
    np.testing.assert_array_equal(got["settle"].to_numpy(), want)
    traded = exp["Total Volume"].astype("int64").to_numpy() > 0
    for col in ("Open", "High", "Low", "Close"):
        raw = _num(exp[col])
        want = np.where((raw > 0) & traded, np.where(pre, raw / 10, raw), np.nan)
        np.testing.assert_array_equal(got[col.lower()].to_numpy(), want, err_msg=col)
    assert (got["volume"].to_numpy() == exp["Total Volume"].astype("int64").to_numpy()).all()
    assert (got["open_interest"].to_numpy() == exp["Open Interest"].astype("int64").to_numpy()).all()


def test_untraded_rows_gone(csv_rows, cfe_all):
    untraded = csv_rows[_num(csv_rows["Settle"]) == 0]
    assert len(untraded) == 338
    keys = set(zip(cfe_all["date"], cfe_all["contract"]))
    assert not keys & set(zip(untraded["date"], untraded["contract"]))
    assert (cfe_all["settle"] > 0).all()


def test_cfe_schema_and_units():
    df = rd.load_cfe_settlements()
    assert list(df.columns) == rd.CFE_COLUMNS
    assert df["date"].dtype == "datetime64[ns]" and df["expiry"].dtype == "datetime64[ns]"
    assert (df["date"] == df["date"].dt.normalize()).all()
    for c in ("year", "month", "volume", "open_interest"):
        assert df[c].dtype == "int64"
    assert df["contract"].str.fullmatch(r"VX[FGHJKMNQUVXZ]\d\d").all()
    assert df["settle"].between(1, 100).all()  # VIX points everywhere after the fix
    assert df["date"].isin(all_sessions()).all()
    ohlc = df[["open", "high", "low", "close"]]
    assert (ohlc.isna().all(axis=1) | ohlc.notna().all(axis=1)).all()
    assert ohlc[df["volume"] == 0].isna().all().all()
    assert not ((df["low"] > df["high"]) | (df["open"] > df["high"]) | (df["close"] < df["low"])).any()
    assert not df.duplicated(["date", "contract"]).any()


def test_2008_high():
    df = rd.load_cfe_settlements()
    y = df[df["date"].dt.year == 2008]
    top = y.loc[y["settle"].idxmax()]
    assert top["settle"] == 67.95
    assert top["date"] == pd.Timestamp("2008-11-17")
    assert top["contract"] == "VXX08"


# --- expiries ---------------------------------------------------------------------------------


def test_expiries_after_every_trade_date():
    df = rd.load_cfe_settlements()
    assert (df["date"] < df["expiry"]).all()
    last = df.groupby("contract")["date"].max()
    exp = df.groupby("contract")["expiry"].first()
    assert (last < exp).all()


def test_expiry_from_calendar_except_overrides(cfe_all):
    per = cfe_all.groupby("contract").agg(
        year=("year", "first"), month=("month", "first"), expiry=("expiry", "first"),
        n_exp=("expiry", "nunique"), last=("date", "max"),
    )
    assert (per["n_exp"] == 1).all()
    cal = pd.Series(vix_expiry(per["year"].to_numpy(), per["month"].to_numpy()), index=per.index)
    differs = per.index[per["expiry"].to_numpy() != cal.to_numpy()]
    assert sorted(differs) == sorted(rd.EXPIRY_OVERRIDES)
    for c, d in rd.EXPIRY_OVERRIDES.items():
        assert per.loc[c, "expiry"] == d and cal[c] - d == pd.Timedelta(days=7)
    # Wednesdays, except two Tuesdays (next SPX expiry Friday a holiday: 2008-03-21, 2014-04-18)
    not_wed = per.index[per["expiry"].dt.day_of_week != 2]
    assert sorted(not_wed) == ["VXG08", "VXH14"]
    assert (per.loc[not_wed, "expiry"].dt.day_of_week == 1).all()
    # every contract that expired within the data ends on its expiry (the final-settlement row)
    expired = per[per["expiry"] <= pd.Timestamp("2014-08-14")]
    assert len(expired) == 119
    assert (expired["last"] == expired["expiry"]).all()


def test_final_settlements():
    fin = rd.load_cfe_final_settlements()
    assert len(fin) == 119 and fin["contract"].is_unique
    assert (fin["date"] == fin["expiry"]).all()
    # untraded on the final day (OHLC blank) except Dec 11, which traded on its settlement day
    traded = fin[fin["volume"] > 0]
    assert list(traded["contract"]) == ["VXZ11"]
    assert fin.drop(traded.index)[["open", "high", "low", "close"]].isna().all().all()
    assert traded[["open", "high", "low", "close"]].notna().all().all()
    assert fin.loc[fin["contract"] == "VXX08", "settle"].item() == 67.22


def test_suspect_settles_are_beyond_m8():
    df = rd.load_cfe_settlements()
    for contract, date, settle in rd.SUSPECT_SETTLES:
        row = df[(df["contract"] == contract) & (df["date"] == date)]
        assert row["settle"].item() == settle
        assert contract not in set(listed_vix_futures(date)["contract"])


# --- T-bill -----------------------------------------------------------------------------------


@needs_csv
def test_tbill_matches_csv():
    src = pd.read_csv(SHARED / "tbill13week.csv", dtype=str)
    s = rd.load_tbill()
    assert s.index.is_monotonic_increasing and s.index.is_unique
    assert s.index.dtype == "datetime64[ns]" and s.dtype == "float64"
    assert len(s) == len(src) == 2419
    want = pd.Series(
        src["Value"].astype(float).to_numpy(), index=pd.DatetimeIndex(src["Date"]).as_unit("ns")
    ).sort_index()
    assert (s.index == want.index).all()
    np.testing.assert_array_equal(s.to_numpy(), want.to_numpy())
    assert s.between(0, 0.06).all()  # a fraction, not percent


# --- arch indices -----------------------------------------------------------------------------


def test_arch_ohlc_exact():
    from arch.data import nasdaq, sp500

    df = rd.load_arch_indices()
    assert list(df.columns) == rd.INDEX_COLUMNS
    assert df["date"].dtype == "datetime64[ns]"
    assert not df[["open", "high", "low", "close"]].isna().any().any()
    for name, module in (("SPX", sp500), ("COMP", nasdaq)):
        src = module.load()
        got = df[df["index"] == name].set_index("date")
        assert len(got) == len(src)
        assert (got.index == src.index).all()
        for col in ("Open", "High", "Low", "Close"):
            np.testing.assert_array_equal(got[col.lower()].to_numpy(), src[col].to_numpy(), err_msg=col)


def test_arch_vix_holidays_dropped():
    from arch.data import vix

    raw = pd.read_csv(gzip.open(Path(vix.__file__).parent / "vix.csv.gz", "rt"), dtype=str)
    dots = raw["vix"] == "."
    assert dots.sum() == 46
    raw_dates = pd.to_datetime(raw["Date"], format="%m/%d/%Y")
    got = rd.load_arch_indices()
    got = got[got["index"] == "VIX"].set_index("date")
    assert len(got) == (~dots).sum() == 1259
    assert not got.index.isin(raw_dates[dots]).any()
    assert (got.index == raw_dates[~dots].to_numpy()).all()
    np.testing.assert_array_equal(got["close"].to_numpy(), raw["vix"][~dots].astype(float).to_numpy())
    assert (got["open"] == got["close"]).all() and (got["high"] == got["close"]).all()
    assert (got["low"] == got["close"]).all()
    assert got.index.isin(all_sessions()).all()


def test_coverage():
    cov = rd.coverage()
    assert list(cov.index) == ["cfe_vix_futures", "tbill_13week", "real_equities", "SPX", "COMP", "VIX"]
    assert cov.loc["real_equities", "first"] == pd.Timestamp("2004-01-02")
    assert cov.loc["real_equities", "last"] == pd.Timestamp("2017-11-10")
    assert cov.loc["cfe_vix_futures", "first"] == pd.Timestamp("2004-03-26")
    assert cov.loc["cfe_vix_futures", "last"] == pd.Timestamp("2014-08-14")
    assert cov.loc["tbill_13week", "first"] == pd.Timestamp("2005-01-03")
    assert cov.loc["tbill_13week", "last"] == pd.Timestamp("2014-08-15")
    assert cov.loc["SPX", "first"] == pd.Timestamp("1999-01-04")
    assert cov.loc["COMP", "last"] == pd.Timestamp("2018-12-31")
    assert cov.loc["VIX", "first"] == pd.Timestamp("2014-01-03")
    assert cov.loc["VIX", "last"] == pd.Timestamp("2019-01-03")


def test_loaders_return_copies():
    a = rd.load_cfe_settlements()
    a["settle"] = 0.0
    assert (rd.load_cfe_settlements()["settle"] > 0).all()


# --- VIX derived from the VX curve -----------------------------------------------------------


def test_vix_from_futures_rule_by_hand():
    d = pd.Timestamp
    cfe = pd.DataFrame({  # unsorted on purpose; the rule sorts by date, then expiry
        "date": [d("2010-01-05"), d("2010-01-04"), d("2010-01-04"), d("2010-01-04"), d("2010-01-06"),
                 d("2010-01-05"), d("2010-01-07"), d("2010-01-07")],
        "expiry": [d("2010-02-17"), d("2010-02-17"), d("2010-01-20"), d("2010-03-17"), d("2010-01-20"),
                   d("2010-01-20"), d("2010-01-20"), d("2010-02-17")],
        "settle": [24.0, 23.5, 21.0, 25.0, 20.0, 22.0, 2.0, 30.0],
    })
    got = rd.vix_from_futures(cfe)
    # 01-04: F1 21.0 in 16 days, F2 23.5 in 44 -> 21 - 2.5·16/28; 01-05: 22 - 2·15/28 (backwardation
    # would add); 01-06 has one contract, 01-07 extrapolates below zero: both left out
    assert list(got.index) == [d("2010-01-04"), d("2010-01-05")]
    np.testing.assert_allclose(got.to_numpy(), [21.0 - 2.5 * 16 / 28, 22.0 - 2.0 * 15 / 28], rtol=1e-15)
    back = rd.vix_from_futures(cfe.assign(settle=np.where(cfe["expiry"] == d("2010-01-20"), 30.0, 26.0)))
    assert back.loc["2010-01-04"] == pytest.approx(30.0 + 4.0 * 16 / 28)  # backwardation: spot above F1


def test_load_vix_derived_on_the_published_curve():
    v = rd.load_vix_derived()
    days = rd.load_cfe_settlements()["date"].unique()
    assert len(v) == len(days) == 2615 and v.index.is_monotonic_increasing
    assert v.index[0] == pd.Timestamp("2004-03-26") and v.index[-1] == pd.Timestamp("2014-08-14")
    assert v.between(9.0, 75.0).all()
    # 2008-11-17: VXX08 67.95 expiring in 2 days, VXZ08 56.25 in 30 -> 67.95 + 11.70·2/28
    assert v.loc["2008-11-17"] == pytest.approx(67.95 + 11.70 * 2 / 28, abs=1e-12)
    # one day before an expiry the front contract is ~the spot: within a point of the next
    # morning's final settlement value on most of the 119 expiries
    fin = rd.load_cfe_final_settlements().set_index("date")["settle"]
    sessions = all_sessions()
    eve = sessions[sessions.searchsorted(fin.index) - 1]
    err = np.abs(v.reindex(eve).to_numpy() - fin.to_numpy())
    assert np.isfinite(err).all() and np.median(err) < 1.0


# --- real equities (packaged copy of ../shared/data/real_equities) ------------------------------

EQ_SHARED = SHARED.parent / "real_equities"
EQ_SHA256 = "4d4cec36a266201636e9ff5e817b921e6d3b949fb93abdfbb14d85b8aa838288"  # scripts/convert_real_equities.py


def test_real_equities_file_is_the_converted_one_and_installed_with_its_licence():
    import hashlib
    from importlib.resources import files

    data = files(rd.DATA_PACKAGE).joinpath("data")
    assert hashlib.sha256(data.joinpath(rd.EQUITIES_FILE).read_bytes()).hexdigest() == EQ_SHA256
    licence = data.joinpath("LICENSE-real_equities").read_text()
    assert "CC0: Public Domain" in licence and "Survivorship" in licence and "guyr18/stock-market-big-data" in licence
    assert data.joinpath("real_equities_manifest.csv").is_file()
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert "sources/data/*" in pyproject["tool"]["setuptools"]["package-data"]["alvh_pipeline"]


def test_real_equities_facts():
    eq = rd.load_real_equities()
    assert list(eq.columns) == rd.EQUITY_COLUMNS and len(eq) == 428_798
    assert eq["symbol"].nunique() == 123 and eq["date"].nunique() == 3491
    assert set(eq["date"]) <= set(all_sessions())
    assert (eq[["open", "high", "low", "close"]] > 0).all().all()
    first = eq.groupby("symbol")["date"].min()
    assert first["SPY"] == first["IWM"] == pd.Timestamp("2005-02-25") and first["QQQ"] == pd.Timestamp("2004-01-02")
    zero = eq[eq["volume"] == 0]
    assert (zero["date"] == pd.Timestamp("2010-04-26")).sum() == 118 and len(zero) == 122
    manifest = pd.read_csv(Path(rd.__file__).with_name("data") / "real_equities_manifest.csv")
    rows = eq.groupby("symbol").size()
    assert (manifest.set_index("symbol")["subset_rows"] == rows.reindex(manifest["symbol"]).to_numpy()).all()


@pytest.mark.skipif(not (EQ_SHARED / "real_equities.csv.gz").exists(), reason="source CSV (../shared/data) not present")
def test_real_equities_equal_the_source_csv():
    src = pd.read_csv(EQ_SHARED / "real_equities.csv.gz", parse_dates=["date"])
    got = rd.load_real_equities()
    assert list(src.columns) == list(got.columns)
    for col in got.columns:
        np.testing.assert_array_equal(got[col].to_numpy(), src[col].to_numpy(), err_msg=col)


def test_arch_files_are_read_as_arch_loads_them():
    """`_arch_data` reads arch's shipped files without importing arch: the same frames as its loaders."""
    from arch.data import nasdaq, sp500, vix

    for name, module in (("sp500", sp500), ("nasdaq", nasdaq), ("vix", vix)):
        ours, theirs = rd._arch_data(name), module.load()
        pd.testing.assert_frame_equal(ours, theirs)
        assert ours.index.equals(theirs.index)
