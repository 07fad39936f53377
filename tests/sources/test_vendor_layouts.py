"""Vendor layouts in the `files` source (issue 19), recognised by their header: Cboe's index
histories (`VIX_History.csv`; the older `vixcurrent.csv` with its disclaimer line) map to
`index_levels` and pass the same gate as our own files, beside a contract-format file of the same
table; a value the mapping cannot place is refused naming the file, the column and the row; a
header that is no known layout is refused naming the layouts tried."""

import pandas as pd
import pytest

from alvh_pipeline.quality.gate import publish_validated, run_gate
from alvh_pipeline.sources import files, synthetic, vendors

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
    assert len(vix) == 3 and (vix["provenance"] == "real").all()
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
