"""The `files` source against bad drop files (issue 7): every class is refused (or converted) with a
`FilesSourceError` naming file, column and 1-based data row, never quoting file content beyond the
header names of a plausible table; each file is parsed once per version per process."""

import gzip
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alvh_pipeline.sources import files, synthetic

DAY = "2024-03-05"
PREV = "2024-03-04"
SECRET = "s3cr3t-T0KEN-do-not-log"


@pytest.fixture(autouse=True)
def _fresh_cache():
    files.clear_cache()
    yield
    files.clear_cache()


def drop(folder: Path, table: str, frame: pd.DataFrame, name: str | None = None) -> Path:
    path = folder / (name or f"{table}.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def refused(folder: Path, table: str, dates=(DAY,)) -> str:
    with pytest.raises(files.FilesSourceError) as err:
        files.generate(table, list(dates), folder)
    # nothing chained: Dagster would log a cause's or context's text too
    assert err.value.__cause__ is None and err.value.__context__ is None
    return str(err.value)


def with_value(table: str, column: str, row: int, value: str, days=(DAY, PREV)) -> pd.DataFrame:
    f = synthetic.generate(table, list(days))
    f[column] = f[column].astype(object)
    f.loc[row - 1, column] = value
    return f


class TestSilentTypeCoercion:
    """Class 1, silent type coercion: a fractional value in an integer column used to be truncated and
    a value beyond int64 wrapped to a negative number; both are refused, naming the value as delivered."""

    @pytest.mark.parametrize("value, why", [
        ("1500.7", "fractional value '1500.7' in an integer column"),
        ("-0.5", "fractional value '-0.5'"),
        ("1e-3", "fractional value '1e-3'"),
        ("18446744073709551615", "value '18446744073709551615' outside the int64 range"),
        ("9223372036854775808", "value '9223372036854775808' outside the int64 range"),
        ("-9223372036854775809", "value '-9223372036854775809' outside the int64 range"),
        ("123456789012345678901234567890", "outside the int64 range"),
        ("1e30", "value '1e30' outside the int64 range"),
    ])
    def test_csv_refused_naming_the_value(self, tmp_path, value, why):
        drop(tmp_path, "breadth", with_value("breadth", "advancers", 2, value))
        text = refused(tmp_path, "breadth")
        assert "breadth.csv: column 'advancers' row 2: " in text and why in text

    def test_parquet_fractional_and_uint64_overflow(self, tmp_path):
        f = synthetic.generate("breadth", [DAY])
        f["new_highs"] = f["new_highs"].astype("float64")
        f.loc[0, "new_highs"] = 12.25
        f.to_parquet(tmp_path / "breadth.parquet")
        assert "column 'new_highs' row 1: fractional value '12.25'" in refused(tmp_path, "breadth")
        files.clear_cache()
        g = synthetic.generate("breadth", [DAY])
        table = pa.Table.from_pandas(g, preserve_index=False)
        i = table.schema.get_field_index("up_volume")
        table = table.set_column(i, "up_volume", pa.array([2**64 - 1], pa.uint64()))
        pq.write_table(table, tmp_path / "breadth.parquet")
        text = refused(tmp_path, "breadth")
        assert "column 'up_volume' row 1: value '18446744073709551615' outside the int64 range" in text

    def test_exact_integers_still_read(self, tmp_path):
        f = with_value("breadth", "up_volume", 1, "9223372036854775807")  # int64 max: exact, not via float
        f["down_volume"] = f["down_volume"].astype(object)
        f.loc[0, "down_volume"] = "1200.0"  # an integral decimal (pandas writes ints with NaN so) is exact
        drop(tmp_path, "breadth", f)
        got = files.generate("breadth", [DAY, PREV], tmp_path)
        assert got["up_volume"].dtype == "int64" and got.loc[0, "up_volume"] == 2**63 - 1
        assert got.loc[0, "down_volume"] == 1200


class TestSilentDrops:
    """Class 2, silent drops: a row dated on a weekend or an exchange holiday matched no partition and
    vanished; it is refused naming file, column `date`, row and date, and why (not an NYSE session),
    as a blank date is."""

    @pytest.mark.parametrize("date, why", [
        ("2024-03-09", "a Saturday"),
        ("2024-03-10", "a Sunday"),
        ("2024-03-29", "an exchange holiday"),  # Good Friday
        ("2001-09-11", "an exchange holiday or closure"),
        ("2031-01-06", "outside the exchange calendar"),
    ])
    def test_non_session_row_refused(self, tmp_path, date, why):
        drop(tmp_path, "rates", with_value("rates", "date", 2, date))
        text = refused(tmp_path, "rates")
        assert f"rates.csv: column 'date' row 2: {date} is not an NYSE session ({why}" in text

    def test_blank_date_refused_too(self, tmp_path):
        drop(tmp_path, "rates", with_value("rates", "date", 2, ""))
        assert "rates.csv: column 'date' row 2: empty date" in refused(tmp_path, "rates")

    def test_names_the_file_of_a_table_folder_and_counts(self, tmp_path):
        drop(tmp_path, "rates", synthetic.generate("rates", [PREV]), "rates/a.csv")
        f = synthetic.generate("rates", ["2024-03-06", "2024-03-07", "2024-03-08"])
        f["date"] = ["2024-03-06", "2024-03-16", "2024-03-17"]
        drop(tmp_path, "rates", f, "rates/b.csv")
        text = refused(tmp_path, "rates", [PREV])  # refused even for a partition the bad rows are not in
        assert "rates/b.csv: column 'date' row 2: 2024-03-16" in text and "(2 such rows)" in text

    def test_other_date_columns_may_be_non_sessions(self, tmp_path):
        drop(tmp_path, "fundamentals", synthetic.generate("fundamentals", [DAY]))  # quarter ends on weekends
        assert len(files.generate("fundamentals", [DAY], tmp_path)) > 0


class TestTimezoneAwareDates:
    """Class 3, timezone-aware dates: they used to drop every row. Converted to the exchange date
    (America/New_York) when that is the date as written, else refused naming column and value; a
    column mixing aware and naive values is refused."""

    @pytest.mark.parametrize("stamp", ["2024-03-05T16:00:00-05:00", "2024-03-05T21:00:00Z",
                                       "2024-03-05 21:00:00+00:00", "2024-03-05T09:30-0500",
                                       "2024-03-05T22:00:00.250+01:00"])
    def test_converted_to_the_exchange_date(self, tmp_path, stamp):
        f = synthetic.generate("rates", [DAY]).assign(date=stamp)
        drop(tmp_path, "rates", f)
        got = files.generate("rates", [DAY], tmp_path)
        assert len(got) == 1 and got["date"].iloc[0] == pd.Timestamp(DAY)
        assert got["date"].dt.tz is None

    def test_mixed_offsets_across_dst_converted(self, tmp_path):
        f = synthetic.generate("rates", ["2024-03-08", "2024-03-11"])
        f["date"] = ["2024-03-08T16:00:00-05:00", "2024-03-11T20:00:00Z"]  # EST, then EDT (16:00 New York)
        drop(tmp_path, "rates", f)
        got = files.generate("rates", ["2024-03-08", "2024-03-11"], tmp_path)
        assert list(got["date"]) == [pd.Timestamp("2024-03-08"), pd.Timestamp("2024-03-11")]

    @pytest.mark.parametrize("stamp", ["2024-03-06T00:00:00Z", "2024-03-06T02:00:00+01:00",
                                       "2024-03-05T23:30:00-08:00"])  # 02:30 on the 6th in New York
    def test_ambiguous_refused_naming_column_and_value(self, tmp_path, stamp):
        f = synthetic.generate("rates", [DAY, PREV])
        f["date"] = [stamp, "2024-03-04T16:00:00-05:00"]
        drop(tmp_path, "rates", f)
        text = refused(tmp_path, "rates")
        assert f"rates.csv: column 'date' row 1: timezone-aware '{stamp}'" in text and "ambiguous" in text

    def test_mixed_aware_and_naive_refused(self, tmp_path):
        drop(tmp_path, "rates", with_value("rates", "date", 2, "2024-03-04T16:00:00-05:00"))
        text = refused(tmp_path, "rates")
        assert "rates.csv: column 'date' mixes timezone-aware and naive values" in text
        assert "row 2 '2024-03-04T16:00:00-05:00' is aware" in text and "row 1 '2024-03-05 00:00:00' is naive" in text

    def test_aware_non_date_column_converted(self, tmp_path):
        f = synthetic.generate("vix_futures", [DAY])
        f["expiry"] = pd.to_datetime(f["expiry"]).dt.strftime("%Y-%m-%dT16:15:00-04:00")
        drop(tmp_path, "vix_futures", f)
        got = files.generate("vix_futures", [DAY], tmp_path)
        assert (got["expiry"] == pd.to_datetime(synthetic.generate("vix_futures", [DAY])["expiry"])).all()

    def test_parquet_tz_aware_column(self, tmp_path):
        f = synthetic.generate("rates", [DAY])
        f["date"] = pd.Series([pd.Timestamp("2024-03-05 21:00", tz="UTC")])
        f.to_parquet(tmp_path / "rates.parquet")
        assert files.generate("rates", [DAY], tmp_path)["date"].iloc[0] == pd.Timestamp(DAY)
        f["date"] = pd.Series([pd.Timestamp("2024-03-06 00:00", tz="UTC")])  # a date label, or 19:00 the 5th?
        f.to_parquet(tmp_path / "rates.parquet")
        os.utime(tmp_path / "rates.parquet", ns=(1, 1))
        assert "column 'date' row 1: timezone-aware" in refused(tmp_path, "rates")


class TestCrashesWithoutUsefulMessage:
    """Class 4, crashes without a useful message: empty CSVs, Latin-1 / UTF-16 / gzip under a .csv
    name, inf / -inf / nan in an integer column and corrupt Parquet each become `FilesSourceError`
    naming the file (and column / row where there is one). UTF-16 with a BOM is decoded; `.csv.gz`
    is read."""

    def test_zero_bytes(self, tmp_path):
        (tmp_path / "rates.csv").write_bytes(b"")
        assert "rates.csv: empty file (0 bytes)" in refused(tmp_path, "rates")

    def test_blank_lines_only(self, tmp_path):
        (tmp_path / "rates.csv").write_text("\n\n")
        assert "rates.csv: empty file: no header row" in refused(tmp_path, "rates")

    def test_header_only(self, tmp_path):
        drop(tmp_path, "rates", synthetic.generate("rates", [DAY]).iloc[:0])
        assert "rates.csv: header row but no data rows" in refused(tmp_path, "rates")

    def test_latin1_names_column_and_row(self, tmp_path):
        f = synthetic.generate("equity_bars", [DAY])
        f.loc[3, "sector"] = "Société Générale"
        f.to_csv(tmp_path / "equity_bars.csv", index=False, encoding="latin-1")
        text = refused(tmp_path, "equity_bars")
        assert "equity_bars.csv: column 'sector' row 4 (line 5): not valid UTF-8" in text
        assert "Soci" not in text

    def test_latin1_in_header(self, tmp_path):
        (tmp_path / "rates.csv").write_bytes("date,tbill_3m,réer\n".encode("latin-1"))
        assert "rates.csv: header row: not valid UTF-8" in refused(tmp_path, "rates")

    def test_utf16_with_bom_decoded(self, tmp_path):
        f = synthetic.generate("rates", [DAY, PREV])
        f.to_csv(tmp_path / "rates.csv", index=False, encoding="utf-16")
        assert len(files.generate("rates", [DAY], tmp_path)) == 1

    def test_utf16_without_bom_refused(self, tmp_path):
        text = synthetic.generate("rates", [DAY]).to_csv(index=False)
        (tmp_path / "rates.csv").write_bytes(text.encode("utf-16-le"))
        assert "rates.csv: binary content or UTF-16 without a byte-order mark" in refused(tmp_path, "rates")

    def test_gzip_under_csv_name_refused_and_csv_gz_read(self, tmp_path):
        data = gzip.compress(synthetic.generate("rates", [DAY]).to_csv(index=False).encode())
        (tmp_path / "rates.csv").write_bytes(data)
        assert "rates.csv: gzip-compressed, rename to .csv.gz" in refused(tmp_path, "rates")
        (tmp_path / "rates.csv").rename(tmp_path / "rates.csv.gz")
        assert len(files.generate("rates", [DAY], tmp_path)) == 1
        (tmp_path / "rates.csv.gz").write_bytes(b"date\n")
        assert "rates.csv.gz: not gzip-compressed, rename to .csv" in refused(tmp_path, "rates")

    @pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "Infinity", "NA"])
    def test_non_finite_in_integer_column(self, tmp_path, value):
        drop(tmp_path, "vix_futures", with_value("vix_futures", "volume", 3, value))
        text = refused(tmp_path, "vix_futures")
        assert f"vix_futures.csv: column 'volume' row 3: non-finite value '{value}' in an integer column" in text

    def test_blank_and_unreadable_integer(self, tmp_path):
        drop(tmp_path, "vix_futures", with_value("vix_futures", "open_interest", 4, ""))
        assert "column 'open_interest' row 4: empty value in an integer column" in refused(tmp_path, "vix_futures")
        drop(tmp_path, "vix_futures", with_value("vix_futures", "open_interest", 4, "12k"))
        os.utime(tmp_path / "vix_futures.csv", ns=(1, 1))
        assert "column 'open_interest' row 4: cannot read '12k' as int" in refused(tmp_path, "vix_futures")

    @pytest.mark.parametrize("cut", [0, 40, -20])
    def test_corrupt_parquet(self, tmp_path, cut):
        path = tmp_path / "index_levels.parquet"
        synthetic.generate("index_levels", [DAY]).to_parquet(path)
        data = path.read_bytes()
        path.write_bytes(data[:cut] if cut >= 0 else data[:cut] + b"\x00" * 20)
        text = refused(tmp_path, "index_levels")
        assert "index_levels.parquet: " in text and ("not a readable Parquet file" in text or "empty file" in text)

    def test_parquet_without_rows(self, tmp_path):
        synthetic.generate("rates", [DAY]).iloc[:0].to_parquet(tmp_path / "rates.parquet")
        assert "rates.parquet: Parquet file without rows" in refused(tmp_path, "rates")

    def test_wrong_field_count_and_unclosed_quote(self, tmp_path):
        body = synthetic.generate("rates", [DAY, PREV]).to_csv(index=False)
        (tmp_path / "rates.csv").write_text(body + "2024-03-06,0.05,1,2,real,extra\n")
        assert "rates.csv: line 4: 6 fields where the header has 5" in refused(tmp_path, "rates")
        (tmp_path / "rates.csv").write_text(body + '2024-03-06,"0.05,1,2,real\n')
        os.utime(tmp_path / "rates.csv", ns=(1, 1))
        assert "rates.csv: malformed CSV" in refused(tmp_path, "rates")


class TestSafety:
    """Class 5, safety: links (file or directory) resolving outside the drop folder are refused naming
    the link, and no message quotes file content beyond the header names of a plausible table."""

    @pytest.fixture
    def secret(self, tmp_path) -> Path:
        path = tmp_path / "outside" / "id_token"
        path.parent.mkdir()
        path.write_text(f"{SECRET}\nsecond line\n")
        return path

    def test_file_link_outside_refused(self, tmp_path, secret):
        root = tmp_path / "drop"
        root.mkdir()
        (root / "rates.csv").symlink_to(secret)
        text = refused(root, "rates")
        assert f"{root / 'rates.csv'}: symbolic link resolving outside the drop folder" in text
        assert SECRET not in text

    def test_directory_link_outside_refused(self, tmp_path, secret):
        root = tmp_path / "drop"
        root.mkdir()
        (root / "rates").symlink_to(secret.parent, target_is_directory=True)
        secret.rename(secret.parent / "x.csv")
        text = refused(root, "rates")
        assert f"{root / 'rates'}: symbolic link resolving outside" in text and SECRET not in text

    def test_link_inside_table_folder_pointing_outside_refused(self, tmp_path, secret):
        root = tmp_path / "drop"
        (root / "rates").mkdir(parents=True)
        drop(root, "rates", synthetic.generate("rates", [DAY]), "rates/a.csv")
        (root / "rates" / "b.csv").symlink_to(secret)
        assert "rates/b.csv: symbolic link resolving outside" in refused(root, "rates")

    def test_links_inside_the_folder_and_broken_links(self, tmp_path):
        root = tmp_path / "drop"
        drop(root, "rates", synthetic.generate("rates", [DAY]), "archive/rates-2024.csv")
        (root / "rates.csv").symlink_to(root / "archive" / "rates-2024.csv")
        assert len(files.generate("rates", [DAY], root)) == 1
        (root / "breadth.csv").symlink_to(root / "missing.csv")
        assert "breadth.csv: broken symbolic link" in refused(root, "breadth")

    def test_non_table_file_header_never_shown(self, tmp_path):
        (tmp_path / "rates.csv").write_text(f"{SECRET},x\n1,2\n")
        text = refused(tmp_path, "rates")
        assert "header not shown" in text and SECRET not in text and "expected columns" in text

    def test_plausible_table_shows_header_names_only(self, tmp_path):
        f = synthetic.generate("rates", [DAY]).rename(columns={"tbill_3m": "tbill"})
        drop(tmp_path, "rates", f)
        text = refused(tmp_path, "rates")
        assert "missing ['tbill_3m'], unexpected ['tbill']" in text and "0.0" not in text

    def test_parser_errors_do_not_quote_lines(self, tmp_path):
        body = synthetic.generate("rates", [DAY]).to_csv(index=False)
        (tmp_path / "rates.csv").write_text(body + f'2024-03-06,"{SECRET},1,2,real\n{SECRET}\n')
        assert SECRET not in refused(tmp_path, "rates")
        (tmp_path / "rates.csv").write_text(body + f"2024-03-06,{SECRET},1,2,real,{SECRET}\n")
        os.utime(tmp_path / "rates.csv", ns=(1, 1))
        assert SECRET not in refused(tmp_path, "rates")

    def test_long_values_are_cut(self, tmp_path):
        drop(tmp_path, "breadth", with_value("breadth", "advancers", 1, "9" * 500 + ".5"))
        text = refused(tmp_path, "breadth")
        assert "'99999" in text and "9" * 60 not in text


class TestCost:
    """Class 6, cost: each drop file is parsed once per process per (path, size, mtime), not once per
    partition; a changed file is read again."""

    @pytest.fixture
    def reads(self, monkeypatch) -> list[Path]:
        seen: list[Path] = []
        for name in ("_read_csv", "_read_parquet"):
            real = getattr(files, name)

            def counting(path, *args, _real=real):
                seen.append(path)
                return _real(path, *args)

            monkeypatch.setattr(files, name, counting)
        return seen

    def test_five_partitions_one_read(self, tmp_path, reads):
        days = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08"]
        drop(tmp_path, "vix_futures", synthetic.generate("vix_futures", days))
        got = [files.generate("vix_futures", [d], tmp_path) for d in days]
        assert len(reads) == 1
        assert [len(g) for g in got] == [8] * 5 and [g["date"].iloc[0] for g in got] == list(pd.to_datetime(days))

    def test_changed_file_read_again(self, tmp_path, reads):
        path = drop(tmp_path, "rates", synthetic.generate("rates", [DAY]))
        first = files.generate("rates", [DAY], tmp_path)
        drop(tmp_path, "rates", synthetic.generate("rates", [DAY]).assign(tbill_3m=0.0123))
        os.utime(path, ns=(1, 1))  # a different mtime even on a coarse clock
        second = files.generate("rates", [DAY], tmp_path)
        assert len(reads) == 2 and second["tbill_3m"].iloc[0] == 0.0123 != first["tbill_3m"].iloc[0]
        files.generate("rates", [PREV], tmp_path)
        assert len(reads) == 2

    def test_folder_of_files_and_parquet_each_read_once(self, tmp_path, reads):
        drop(tmp_path, "rates", synthetic.generate("rates", [PREV]), "rates/a.csv")
        synthetic.generate("rates", [DAY]).to_parquet(tmp_path / "rates" / "b.parquet")
        for d in [PREV, DAY, PREV, DAY]:
            assert len(files.generate("rates", [d], tmp_path)) == 1
        assert sorted(p.name for p in reads) == ["a.csv", "b.parquet"]

    def test_bad_file_is_not_cached(self, tmp_path, reads):
        drop(tmp_path, "rates", with_value("rates", "date", 1, "2024-03-09"))
        refused(tmp_path, "rates")
        refused(tmp_path, "rates")
        assert len(reads) == 2

    def test_callers_cannot_alter_the_cached_frame(self, tmp_path):
        drop(tmp_path, "rates", synthetic.generate("rates", [DAY]))
        got = files.generate("rates", [DAY], tmp_path)
        got.loc[0, "tbill_3m"] = -1.0
        assert files.generate("rates", [DAY], tmp_path)["tbill_3m"].iloc[0] != -1.0


def test_a_table_delivered_twice_names_both_files(tmp_path):
    """Issue 21.3: `rates.csv` and `rates/part1.csv` holding the same day are refused naming both
    files (before: the gate's "duplicated key" named neither); a day split across files by key is fine."""
    rates = synthetic.generate("rates", [PREV, DAY])
    first, second = drop(tmp_path, "rates", rates), drop(tmp_path, "rates", rates.iloc[1:], "rates/part1.csv")
    message = refused(tmp_path, "rates", [DAY])
    assert str(first) in message and str(second) in message and DAY in message, message
    assert files.generate("rates", [PREV], tmp_path)["date"].tolist() == [pd.Timestamp(PREV)]  # one file holds it

    bars = synthetic.generate("equity_bars", [DAY])
    split = tmp_path / "split"
    drop(split, "equity_bars", bars.iloc[:10], "equity_bars/a.csv")
    drop(split, "equity_bars", bars.iloc[10:], "equity_bars/b.csv")
    assert len(files.generate("equity_bars", [DAY], split)) == len(bars)
