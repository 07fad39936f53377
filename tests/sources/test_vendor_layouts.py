"""Vendor layouts in the `files` source (issue 19), recognised by their header: Cboe's index
histories (`VIX_History.csv`; the older `vixcurrent.csv` with its disclaimer line) map to
`index_levels`; Cboe DataShop's Option EOD Summary (with and without its greeks block, `^SPX` /
`^VIX`, SPXW next to SPX) to `spx_options` and `vix_options`; ORATS' side-by-side strikes and
HistoricalOptionData's rows to `spx_options`. Each passes the same gate as our own files (with the
rate and dividend the vendors leave out completed from the rates table and parity); a value the
mapping cannot place is refused naming the file, the vendor's column and the row; a header that is
no known layout is refused naming the layouts tried; tables the folder lacks come from the
fallback source, labelled."""

import pandas as pd
import pytest

from alvh_pipeline.quality.gate import publish_validated, run_gate
from alvh_pipeline.sources import files, synthetic, vendor_samples, vendors
from alvh_pipeline.sources.resource import MarketSource

DAYS = ["2024-03-04", "2024-03-05", "2024-03-06"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    files.clear_cache()
    yield
    files.clear_cache()


def _cboe_rows(ours: pd.DataFrame, date_format: str = "%m/%d/%Y") -> pd.DataFrame:
    vix = ours[ours["index"] == "VIX"].sort_values("date").reset_index(drop=True)
    return pd.DataFrame({"date": pd.to_datetime(vix["date"]).dt.strftime(date_format),
                         **{c: vix[c].map(lambda v: f"{v:.2f}") for c in ("open", "high", "low", "close")}})


def _write_vix_history(folder, ours) -> None:
    rows = _cboe_rows(ours).rename(columns=str.upper)
    rows.to_csv(folder / "VIX_History.csv", index=False)


def _write_vixcurrent(folder, ours) -> None:
    rows = _cboe_rows(ours).rename(columns={"date": "Date", "open": "VIX Open", "high": "VIX High",
                                            "low": "VIX Low", "close": "VIX Close"})
    text = "Cboe data is compiled for the convenience of site visitors and is furnished without responsibility " \
           "for accuracy\n" + rows.to_csv(index=False)
    (folder / "vixcurrent.csv").write_text(text)


@pytest.mark.parametrize("layout, write", [("cboe_index_history", _write_vix_history),
                                           ("cboe_vixcurrent", _write_vixcurrent)])
def test_a_cboe_vix_history_maps_to_index_levels_and_passes_the_gate(tmp_path, lake, layout, write):
    ours = synthetic.generate("index_levels", DAYS)
    folder = tmp_path / "drop" / "index_levels"
    folder.mkdir(parents=True)
    # the other indexes in our contract's layout, VIX in Cboe's: one table from two files
    ours[ours["index"] != "VIX"].to_csv(folder / "others.csv", index=False)
    write(folder, ours)
    got = files.generate("index_levels", DAYS, tmp_path / "drop")
    vix = got[got["index"] == "VIX"].sort_values("date").reset_index(drop=True)
    want = ours[ours["index"] == "VIX"].sort_values("date").reset_index(drop=True)
    assert len(vix) == 3 and (vix["provenance"] == "real:cboe").all()
    assert vix["date"].dt.strftime("%Y-%m-%d").tolist() == DAYS
    for c in ("open", "high", "low", "close"):
        assert vix[c].tolist() == pytest.approx(want[c].round(2).tolist())
    assert vendors.detect(["DATE", "OPEN", "HIGH", "LOW", "CLOSE"], "index_levels").name == "cboe_index_history"
    for day in DAYS:  # mapped rows are gated as our own: raw -> GE suite and rules -> validated
        lake.write_partition("raw", "index_levels", day, got[got["date"] == pd.Timestamp(day)])
    gate = run_gate(lake, "index_levels", DAYS)
    assert gate.passed, gate.message()
    assert set(publish_validated(lake, "index_levels", DAYS)) == set(DAYS)
    assert layout in {lay.name for lay in vendors.layouts_for("index_levels")}


def test_a_value_the_mapping_cannot_place_is_refused_naming_file_column_and_row(tmp_path):
    ours = synthetic.generate("index_levels", DAYS)
    folder = tmp_path / "index_levels"
    folder.mkdir()
    rows = _cboe_rows(ours).rename(columns=str.upper)
    rows.loc[1, "DATE"] = "31/02/2024"  # no such date in M/D/YYYY
    rows.to_csv(folder / "VIX_History.csv", index=False)
    with pytest.raises(files.FilesSourceError) as err:
        files.generate("index_levels", DAYS, tmp_path)
    text = str(err.value)
    assert "VIX_History.csv" in text and "date" in text and "row 2" in text and "31/02/2024" in text


def test_an_index_history_must_say_its_index(tmp_path):
    ours = synthetic.generate("index_levels", DAYS)
    folder = tmp_path / "index_levels"
    folder.mkdir()
    _cboe_rows(ours).rename(columns=str.upper).to_csv(folder / "history.csv", index=False)
    with pytest.raises(files.FilesSourceError, match=r"history\.csv: a Cboe index history is named <INDEX>_History"):
        files.generate("index_levels", DAYS, tmp_path)


def test_an_unknown_header_is_refused_naming_the_layouts_tried(tmp_path):
    folder = tmp_path / "index_levels"
    folder.mkdir()
    pd.DataFrame({"Date": ["03/04/2024"], "Open": ["1"], "High": ["1"], "Low": ["1"], "Last": ["1"]}).to_csv(
        folder / "VIX_History.csv", index=False)
    with pytest.raises(files.FilesSourceError) as err:
        files.generate("index_levels", DAYS, tmp_path)
    assert "tried: cboe_index_history, cboe_vixcurrent" in str(err.value)


def test_a_folder_of_daily_zips_is_read_without_unpacking(tmp_path):
    """One file per day, each a zip holding one CSV (as vendors deliver daily files)."""
    import zipfile

    ours = synthetic.generate("index_levels", DAYS)
    folder = tmp_path / "index_levels"
    folder.mkdir()
    for day in DAYS:
        with zipfile.ZipFile(folder / f"index_levels_{day}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"index_levels_{day}.csv", ours[ours["date"] == pd.Timestamp(day)].to_csv(index=False))
    got = files.generate("index_levels", DAYS, tmp_path)
    pd.testing.assert_frame_equal(got.sort_values(["date", "index"]).reset_index(drop=True),
                                  files.generate("index_levels", DAYS, _as_csv(tmp_path / "csv", ours))
                                  .sort_values(["date", "index"]).reset_index(drop=True))
    assert sorted(p.name for p in folder.iterdir()) == [f"index_levels_{d}.zip" for d in DAYS]  # nothing unpacked
    with zipfile.ZipFile(folder / "two.zip", "w") as zf:
        zf.writestr("a.csv", "x")
        zf.writestr("b.csv", "y")
    with pytest.raises(files.FilesSourceError, match=r"two\.zip: a zip must hold exactly one \.csv file"):
        files.generate("index_levels", DAYS, tmp_path)


def _as_csv(folder, frame):
    folder.mkdir()
    frame.to_csv(folder / "index_levels.csv", index=False)
    return folder


# ---- option chains --------------------------------------------------------------------------------

def _gate_through(lake, table: str, frame: pd.DataFrame, peers: dict[str, pd.DataFrame]) -> None:
    """`frame` (and its peer tables) through raw -> suite and rules -> validated, as ingest does."""
    for t, f in {**peers, table: frame}.items():
        for day in DAYS:
            lake.write_partition("raw", t, day, f[f["date"] == pd.Timestamp(day)])
    gate = run_gate(lake, table, DAYS)
    assert gate.passed, gate.message()
    assert set(publish_validated(lake, table, DAYS)) == set(DAYS)


def _source(root) -> MarketSource:
    return MarketSource(kind="files", files_root=str(root), fallback="synthetic")


def _same_chain(got: pd.DataFrame, want: pd.DataFrame, derived: str) -> None:
    keys = ["date", "expiry", "strike", "option_type"]
    both = got.merge(want, on=keys, suffixes=("", "_ours"), validate="one_to_one")
    assert len(both) == len(want) == len(got)
    for c in ("bid", "ask", "bid_size", "ask_size"):
        assert (both[c] == both[f"{c}_ours"]).all(), c
    # what the vendor leaves out, completed: T-bill as a continuous rate, parity dividend / future
    assert both["rate"].to_numpy() == pytest.approx(both["rate_ours"].to_numpy(), abs=2e-3)
    if derived == "dividend_yield":
        assert both[derived].to_numpy() == pytest.approx(both[f"{derived}_ours"].to_numpy(), abs=2e-3)
    else:
        assert both[derived].to_numpy() == pytest.approx(both[f"{derived}_ours"].to_numpy(), rel=1e-3)


@pytest.mark.parametrize("calcs, delivery_code, zipped", [(True, False, True), (False, True, False)])
def test_a_datashop_file_feeds_both_option_tables_and_passes_the_gate(tmp_path, lake, calcs, delivery_code,
                                                                      zipped):
    spx, vix = synthetic.generate("spx_options", DAYS), synthetic.generate("vix_options", DAYS)
    assert set(vendor_samples._roots(spx, "spx_options")) == {"SPX", "SPXW"}  # weeklies next to the monthly
    frame = vendor_samples.datashop(spx, vix, calcs=calcs, delivery_code=delivery_code)
    assert set(frame["underlying_symbol"]) == {"^SPX", "^VIX"}
    assert ("delta_1545" in frame) == calcs
    for table in ("spx_options", "vix_options"):  # the same file in both tables' folders
        folder = tmp_path / "drop" / table
        folder.mkdir(parents=True)
        if zipped:
            vendor_samples.write_zip(frame, folder / "UnderlyingOptionsEODCalcs_2024-03.zip")
        else:
            frame.to_csv(folder / "UnderlyingOptionsEOD_2024-03.csv", index=False)
    src = _source(tmp_path / "drop")
    got_spx, got_vix = src.fetch("spx_options", DAYS), src.fetch("vix_options", DAYS)
    assert (got_spx["provenance"] == "real:cboe_datashop").all() and got_spx["model_iv"].isna().all()
    _same_chain(got_spx, spx, "dividend_yield")
    _same_chain(got_vix, vix, "future_price")
    peers = {"index_levels": synthetic.generate("index_levels", DAYS)}
    _gate_through(lake, "spx_options", got_spx, peers)
    _gate_through(lake, "vix_options", got_vix, {"vix_futures": synthetic.generate("vix_futures", DAYS)})


@pytest.mark.parametrize("us_dates", [False, True])
def test_orats_side_by_side_strikes_become_a_call_and_a_put_each(tmp_path, lake, us_dates):
    spx = synthetic.generate("spx_options", DAYS)
    folder = tmp_path / "spx_options"
    folder.mkdir()
    vendor_samples.orats(spx, us_dates=us_dates).to_csv(folder / "SPX_2024-03.csv", index=False)
    got = _source(tmp_path).fetch("spx_options", DAYS)
    assert (got["provenance"] == "real:orats").all()
    _same_chain(got, spx, "dividend_yield")
    _gate_through(lake, "spx_options", got, {"index_levels": synthetic.generate("index_levels", DAYS)})


@pytest.mark.parametrize("newer", [False, True])
def test_historical_option_data_rows_map_without_quote_sizes(tmp_path, lake, newer):
    spx = synthetic.generate("spx_options", DAYS)
    folder = tmp_path / "spx_options"
    folder.mkdir()
    vendor_samples.historical_option_data(spx, newer=newer).to_csv(folder / "options_2024-03.csv", index=False)
    got = _source(tmp_path).fetch("spx_options", DAYS)
    assert (got["provenance"] == "real:historical_option_data").all()
    assert (got["bid_size"] == 0).all() and (got["ask_size"] == 0).all()  # not delivered: 0, never invented
    _same_chain(got, spx.assign(bid_size=0, ask_size=0), "dividend_yield")
    _gate_through(lake, "spx_options", got, {"index_levels": synthetic.generate("index_levels", DAYS)})


def _datashop_rows() -> pd.DataFrame:
    return vendor_samples.datashop(synthetic.generate("spx_options", DAYS[:1]), None)


@pytest.mark.parametrize("column, value, why", [
    ("root", "SPXZ", "an unknown spx_options root"),
    ("underlying_symbol", "^NDX", "an underlying the Cboe DataShop mapping does not place"),
    ("expiration", "2024-03-09", "an expiry the exchange calendar does not list"),  # a Saturday
    ("strike", "5000000", "a strike in another unit"),  # thousandths of a point
    ("option_type", "X", "option type is neither call nor put"),
    ("bid_1545", "n/a?", "not a number"),
])
def test_a_row_the_mapping_cannot_place_is_refused_with_the_vendors_column_file_and_line(tmp_path, column, value,
                                                                                          why):
    rows = _datashop_rows()
    rows[column] = rows[column].astype(object)
    rows.loc[7, column] = value
    folder = tmp_path / "spx_options"
    folder.mkdir()
    rows.to_csv(folder / "UnderlyingOptionsEOD_2024-03-04.csv", index=False)
    with pytest.raises(files.FilesSourceError) as err:
        files.generate("spx_options", DAYS, tmp_path)
    text = str(err.value)
    assert "UnderlyingOptionsEOD_2024-03-04.csv" in text and f"column '{column}'" in text, text
    assert "row 8 (line 9)" in text and why in text, text


def test_a_monthly_root_on_a_weekly_expiry_is_refused(tmp_path):
    rows = _datashop_rows()
    weekly = rows["root"] == "SPXW"
    assert weekly.any()
    rows.loc[weekly, "root"] = "SPX"
    folder = tmp_path / "spx_options"
    folder.mkdir()
    rows.to_csv(folder / "eod.csv", index=False)
    with pytest.raises(files.FilesSourceError, match=r"column 'expiration' row \d+ .*standard-root expiry"):
        files.generate("spx_options", DAYS, tmp_path)


def test_pm_twins_quarterlies_same_day_expiries_and_unoffered_lines_are_set_aside_and_counted(tmp_path, caplog):
    rows = _datashop_rows()
    monthly = rows[rows["root"] == "SPX"].head(4)
    twin = monthly.assign(root="SPXW")  # a third-Friday PM-settled SPXW beside the AM monthly
    quarterly = monthly.assign(root="SPXQ", expiration="2024-03-28")
    expiring = monthly.assign(root="SPXW", expiration=monthly["quote_date"])  # the day's own expiry, settling
    no_offer = rows.index[-3:]  # far lines nobody offers: ask 0
    rows.loc[no_offer, ["bid_1545", "ask_1545"]] = 0.0
    folder = tmp_path / "spx_options"
    folder.mkdir()
    pd.concat([rows, twin, quarterly, expiring], ignore_index=True).to_csv(folder / "eod.csv", index=False)
    with caplog.at_level("WARNING"):
        got = files.generate("spx_options", DAYS, tmp_path)
    assert len(got) == len(rows) - 3 and (got["ask"] > 0).all()
    assert not got.duplicated(["date", "expiry", "strike", "option_type"]).any()
    assert "15 Cboe DataShop rows set aside (4 expiring on the quote date; 3 without an offer; roots ['SPXQ']" \
        in caplog.text
    assert "4 PM-settled twins" in caplog.text


def test_an_unknown_option_header_names_the_layouts_tried(tmp_path):
    rows = _datashop_rows().rename(columns={"bid_1545": "bid_1600"})
    folder = tmp_path / "spx_options"
    folder.mkdir()
    rows.to_csv(folder / "eod.csv", index=False)
    with pytest.raises(files.FilesSourceError) as err:
        files.generate("spx_options", DAYS, tmp_path)
    assert "tried: cboe_datashop, orats_smv_strikes, historical_option_data" in str(err.value)


def test_mixed_sources_take_each_table_from_the_folder_or_the_fallback_labelled(tmp_path):
    """Real SPX chains for two of three days, nothing else: the third day's chain and every other
    table come from the fallback source, and provenance says which rows are which."""
    spx = synthetic.generate("spx_options", DAYS)
    folder = tmp_path / "spx_options"
    folder.mkdir()
    vendor_samples.datashop(spx[spx["date"] < pd.Timestamp(DAYS[2])], None).to_csv(folder / "eod.csv", index=False)
    src = _source(tmp_path)
    got = src.fetch("spx_options", DAYS)
    by_day = got.groupby("date")["provenance"].unique().map(list).to_dict()
    assert by_day == {pd.Timestamp(DAYS[0]): ["real:cboe_datashop"], pd.Timestamp(DAYS[1]): ["real:cboe_datashop"],
                      pd.Timestamp(DAYS[2]): ["synthetic"]}
    futures = src.fetch("vix_futures", DAYS)  # not in the folder at all
    pd.testing.assert_frame_equal(futures, synthetic.generate("vix_futures", DAYS))
    assert not MarketSource(kind="files", files_root=str(tmp_path), fallback="synthetic",
                            files_tables="index_levels").from_folder("spx_options")
    with pytest.raises(files.FilesSourceError, match="no file for table 'vix_futures'"):
        MarketSource(kind="files", files_root=str(tmp_path)).fetch("vix_futures", DAYS)  # no fallback: as before
    with pytest.raises(ValueError, match="'spx_options' is not in files_tables"):
        MarketSource(kind="files", files_root=str(tmp_path), files_tables="rates").fetch("spx_options", DAYS)


# ---- CFE VX history and an equity basket ------------------------------------------------------------

CFE_DAYS = ["2007-03-22", "2007-03-23", "2007-03-26"]  # the old 10x multiplier ends on 2007-03-26


def _cfe_file(folder) -> None:
    """Rows of the CFE publication the replay ships, in CFE's own layout (its 10x prices, zero
    settles and final-settlement rows included)."""
    from alvh_pipeline.sources import real_data

    raw = real_data.load_cfe_raw()
    raw = raw[raw["trade_date"].isin(pd.to_datetime(CFE_DAYS))]
    out = pd.DataFrame({"Trade Date": raw["trade_date"].dt.strftime("%-m/%-d/%Y"), "Futures": raw["futures"],
                        "Open": raw["open"], "High": raw["high"], "Low": raw["low"], "Close": raw["close"],
                        "Settle": raw["settle"], "Change": 0, "Total Volume": raw["total_volume"], "EFP": 0,
                        "Open Interest": raw["open_interest"]})
    out.to_csv(folder / "vix_futures.csv", index=False)


def test_the_cfe_vx_history_maps_to_the_curve_the_replay_reads_and_passes_the_gate(tmp_path, lake):
    from alvh_pipeline.sources import real_data

    _cfe_file(tmp_path)
    src = MarketSource(kind="files", files_root=str(tmp_path), fallback="replay")
    got = src.fetch("vix_futures", CFE_DAYS)
    real = real_data.load_cfe_settlements()
    real = real[real["date"].isin(pd.to_datetime(CFE_DAYS))].groupby("date").head(8)
    both = got.merge(real, on=["date", "contract"], suffixes=("", "_cfe"), validate="one_to_one")
    assert len(both) == len(got) == len(real)
    assert both["settle"].tolist() == pytest.approx(both["settle_cfe"].tolist())  # 10x fixed before 2007-03-26
    assert (both["volume"] == both["volume_cfe"]).all()  # the file's own volume, not the model's
    assert (got["provenance"] == "real:cfe").all() and (got["bid"] < got["settle"]).all()
    assert (got["ask"] > got["settle"]).all() and (got["bid_size"] > 0).all()  # the quote model's
    assert got.groupby("date")["month_index"].apply(list).map(lambda m: m == list(range(1, len(m) + 1))).all()
    peers = {"index_levels": src.fetch("index_levels", CFE_DAYS)}
    for t, f in {**peers, "vix_futures": got}.items():
        for day in CFE_DAYS:
            lake.write_partition("raw", t, day, f[f["date"] == pd.Timestamp(day)])
    gate = run_gate(lake, "vix_futures", CFE_DAYS)
    assert gate.passed, gate.message()


def test_a_cfe_code_that_is_no_contract_is_refused_by_line(tmp_path):
    _cfe_file(tmp_path)
    rows = pd.read_csv(tmp_path / "vix_futures.csv", dtype=str)
    rows.loc[4, "Futures"] = "K (Jun 07)"  # letter and month disagree
    rows.to_csv(tmp_path / "vix_futures.csv", index=False)
    with pytest.raises(files.FilesSourceError, match=r"vix_futures\.csv: column 'Futures' row 5 \(line 6\)"):
        files.generate("vix_futures", CFE_DAYS, tmp_path)


@pytest.mark.parametrize("with_quotes", [False, True])
def test_an_equity_basket_csv_maps_to_equity_bars_with_the_quote_model(tmp_path, lake, with_quotes):
    ours = synthetic.generate("equity_bars", DAYS)
    cols = ["date", "symbol", "open", "high", "low", "close", "volume"]
    cols += ["sector", "bid", "ask"] if with_quotes else []
    ours[cols].to_csv(tmp_path / "equity_bars.csv", index=False)
    got = _source(tmp_path).fetch("equity_bars", DAYS)
    both = got.merge(ours, on=["date", "symbol"], suffixes=("", "_ours"), validate="one_to_one")
    assert len(both) == len(ours) and (got["provenance"] == "real:equity_file").all()
    assert (both["close"] == both["close_ours"]).all() and (both["volume"] == both["volume_ours"]).all()
    assert (got["bid"] < got["ask"]).all() and (got["bid_size"] > 0).all()
    if with_quotes:  # delivered quotes kept, sectors as delivered
        assert (both["bid"] == both["bid_ours"]).all() and (both["sector"] == both["sector_ours"]).all()
    else:
        assert set(got.loc[got["symbol"].isin(["SPY", "QQQ", "IWM"]), "sector"]) == {"ETF"}
        assert set(got.loc[~got["symbol"].isin(["SPY", "QQQ", "IWM"]), "sector"]) == {"Unassigned"}
    for day in DAYS:
        lake.write_partition("raw", "equity_bars", day, got[got["date"] == pd.Timestamp(day)])
    gate = run_gate(lake, "equity_bars", DAYS)
    assert gate.passed, gate.message()


def test_the_vendor_override_forces_a_layout_and_names_what_its_file_lacks(tmp_path):
    rows = _datashop_rows()
    folder = tmp_path / "spx_options"
    folder.mkdir()
    rows.assign(extra_vendor_column=1).to_csv(folder / "eod.csv", index=False)  # no longer detected
    with pytest.raises(files.FilesSourceError, match="tried: cboe_datashop"):
        files.generate("spx_options", DAYS, tmp_path)
    got = MarketSource(kind="files", files_root=str(tmp_path), fallback="synthetic", vendor="cboe_datashop").fetch(
        "spx_options", DAYS[:1])
    assert len(got) == len(rows) and (got["provenance"] == "real:cboe_datashop").all()
    with pytest.raises(files.FilesSourceError, match=r"not a orats_smv_strikes file .*missing columns"):
        files.generate("spx_options", DAYS, tmp_path, vendor="orats_smv_strikes")
    with pytest.raises(files.FilesSourceError, match="unknown vendor layout 'nope'"):
        files.generate("spx_options", DAYS, tmp_path, vendor="nope")


def test_a_datashop_day_linked_in_both_option_folders_is_read_once(tmp_path):
    from unittest import mock

    vendor_samples.write_datashop_days(tmp_path, DAYS[:1], synthetic.generate)
    name = next((tmp_path / "spx_options").iterdir()).name
    with mock.patch.object(files, "_read_csv_file", wraps=files._read_csv_file) as read:
        spx = files.read_file(tmp_path / "spx_options" / name, "spx_options")
        vix = files.read_file(tmp_path / "vix_options" / name, "vix_options")  # a hard link: the same file
    assert read.call_count == 1 and len(spx) and len(vix)
